"""The fine-tuned encoder kinds train, are registered, and load back from MLflow (tiny runs:
a few examples per intent, one epoch; their quality is measured by `train`, not here)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from inquiry_router.classifier.finetune import FineTunedEncoderClassifier
from inquiry_router.classifier.models import set_encoder_resolver, shared_encoder
from inquiry_router.classifier.training import train
from inquiry_router.registry import ModelRegistry

from .conftest import settings_for

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


def test_finetune_trains_registers_and_reloads(encoders_dir: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, encoders_dir=encoders_dir)
    report = train(settings, ["banking77"], kind="finetune", limit_per_class=2, epochs=1)
    assert report.registered.version == "1"
    assert 0.0 < report.evaluation.accuracy < 1.0

    loaded = ModelRegistry(settings).load()
    member = loaded.model.estimator.members[0]
    # Only the four trained layers and the head are stored; the rest is the base encoder.
    assert {key.split(".")[0] for key in member.state_} == {"0", "1", "2", "3"}
    assert not hasattr(member, "_network")  # rebuilt on first use, from the base encoder
    probabilities = loaded.model.predict_proba(["I lost my card", "Ich habe meine Karte verloren"])
    assert probabilities.shape == (2, 77)
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_finetuned_layers_learn_and_survive_a_reload(e5_folder: Path) -> None:
    set_encoder_resolver(lambda _name: e5_folder)
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
