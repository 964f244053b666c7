"""The fine-tuned encoder kinds train, are registered, and load back from MLflow (tiny runs:
a few examples per intent, one epoch; their quality is measured by `train`, not here)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from inquiry_router.classifier.encoders import shared_encoder
from inquiry_router.classifier.finetune import MAX_STEPS, FineTunedEncoderClassifier, planned_steps
from inquiry_router.domain import InquiryText
from inquiry_router.lifecycle.training import train
from inquiry_router.pipeline import build_pipeline
from inquiry_router.registry import ModelRegistry

from .conftest import banking77_sample, settings_for

TEXTS = [
    "I lost my card",
    "my card was stolen yesterday",
    "where is my new card",
    "the card has not arrived",
    "how do I top up",
    "top-up failed again",
    "what is the exchange rate",
    "rate for euros to dollars",
]
LABELS = ["lost", "lost", "delivery", "delivery", "top_up", "top_up", "rate", "rate"]


@pytest.mark.slow
def test_the_default_model_trains_registers_and_serves(encoders_dir: Path, tmp_path: Path) -> None:
    """The one real training of the default kind (`make run` trains it on all of Banking77):
    the fine-tuned ensemble over multilingual-e5-small, here on 10 examples an intent and one
    epoch; its quality is measured by `bench classify` (docs/benchmarks.md), not here.
    Without background off-topic queries: reading CLINC150's 1,200 through the fine-tuned
    member is a quarter of this training, and the shared model's tests cover the gate."""
    settings = settings_for(tmp_path, background_out_of_scope="none")
    data = banking77_sample(tmp_path, per_class=10)
    report = train(settings, [str(data)], epochs=1)
    assert report.registered.version == "1" and report.registered.is_champion
    # The run says how far fine-tuning went: here the one epoch asked for, under the step cap.
    assert report.registered.metrics["fine_tuning_epochs"] == 1.0
    assert report.evaluation.accuracy > 0.5  # 77 intents from 8 examples each
    assert report.encoder == "multilingual-e5-small"
    params = ModelRegistry(settings).versions(settings.model_name)[0]
    assert params["kind"] == "ensemble-finetune"

    pipeline = build_pipeline(settings)
    member = pipeline.classifier.model.members_[1]
    assert isinstance(member, FineTunedEncoderClassifier)
    # Only the four trained layers and the head are stored; the rest is the base encoder.
    assert {key.split(".")[0] for key in member.state_} == {"0", "1", "2", "3"}
    decisions = pipeline.run(
        [InquiryText("I lost my card"), InquiryText("Ich habe meine Karte verloren")]
    )
    assert [d.model_version for d in decisions] == ["1", "1"]
    assert decisions[0].intent == "lost_or_stolen_card"
    probabilities = pipeline.classifier.model.predict_proba(["I lost my card"])
    assert probabilities.shape == (1, 77) and np.allclose(probabilities.sum(axis=1), 1.0)


def test_finetuned_layers_learn_and_survive_a_reload(e5_folder: Path) -> None:
    # e5_folder: converted into the session's encoders folder, which the model resolves.
    model = FineTunedEncoderClassifier(trainable_layers=2, epochs=8, batch_size=4).fit(
        TEXTS, LABELS
    )
    fitted = model.predict_proba(TEXTS)
    assert list(model.classes_[fitted.argmax(1)]) == LABELS  # it learned its training data

    reloaded = pickle.loads(pickle.dumps(model))
    assert not hasattr(reloaded, "_network")
    assert np.allclose(reloaded.predict_proba(TEXTS), fitted, atol=1e-3)
    # The base encoder's own layers are untouched by the training.
    base = shared_encoder("multilingual-e5-small").model.encoder.layer[-1]
    trained = model._live()[0][-1]
    assert not np.allclose(
        base.output.dense.weight.detach().float().numpy(),
        trained.output.dense.weight.detach().float().numpy(),
    )


def test_a_model_from_the_all_layers_version_asks_to_be_retrained() -> None:
    old = FineTunedEncoderClassifier()
    old.classes_ = np.array(LABELS)
    del old.trainable_layers  # as a model pickled before the parameter existed loads
    with pytest.raises(ValueError, match="retrain it"):
        old.predict_proba(["I lost my card"])


def test_fine_tuning_stops_at_its_step_budget_however_large_the_data() -> None:
    # Banking77's 10,003 examples keep their four epochs; a set half again as large does not
    # take half again as long, and no example goes unseen.
    assert planned_steps(10_003, 32, 4, MAX_STEPS) == 1_252
    assert planned_steps(15_000, 32, 4, MAX_STEPS) == MAX_STEPS
    assert planned_steps(100_000, 32, 4, MAX_STEPS) == 3_125  # one pass
    assert planned_steps(100_000, 32, 4, None) == 12_500


def test_a_capped_fit_takes_only_its_steps(e5_folder: Path) -> None:
    model = FineTunedEncoderClassifier(trainable_layers=1, epochs=8, batch_size=4, max_steps=5)
    model.fit(TEXTS, LABELS)
    assert model.epochs_ == 2.5  # 5 steps of 2 per epoch, not 8 epochs
    # Models saved before the cap load with every epoch run, as they were trained.
    state = pickle.loads(pickle.dumps(model)).__dict__
    state.pop("max_steps")
    old = FineTunedEncoderClassifier.__new__(FineTunedEncoderClassifier)
    old.__setstate__(state)
    assert old.get_params()["max_steps"] is None


def test_a_training_runs_the_frozen_layers_once_per_text(e5_folder: Path) -> None:
    encoder = shared_encoder("multilingual-e5-small")
    passes: list[int] = []
    original = encoder._encode

    def counted(texts, *args, **kwargs):  # type: ignore[no-untyped-def]
        passes.append(len(texts))
        return original(texts, *args, **kwargs)

    encoder._encode = counted
    try:
        with encoder.keeping_token_states():
            first = encoder.token_states(TEXTS[:6], 8)
            again = encoder.token_states(TEXTS, 8)  # six known, two new
        assert passes == [6, 2]
        assert all(a is b for a, b in zip(first, again[:6], strict=True))
        encoder.token_states(TEXTS, 8)  # closed: nothing kept for a serving process
        assert passes == [6, 2, 8] and encoder._states is None
    finally:
        del encoder._encode
