"""The fine-tuned encoder kind trains, is registered, and loads back from MLflow (a tiny run:
two examples per intent, one epoch; its quality is measured by `train`, not here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inquiry_router.classifier.training import train
from inquiry_router.registry import ModelRegistry

from .conftest import settings_for


def test_finetune_trains_registers_and_reloads(encoders_dir: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, encoders_dir=encoders_dir)
    report = train(settings, ["banking77"], kind="finetune", limit_per_class=2, epochs=1)
    assert report.registered.version == "1"
    assert 0.0 < report.evaluation.accuracy < 1.0

    loaded = ModelRegistry(settings).load()
    model = loaded.model.estimator
    member = model.members[0]
    assert "embeddings.word_embeddings.weight" not in member.state_  # frozen, not stored
    assert not hasattr(member, "_network")  # rebuilt on first use, from the base encoder
    probabilities = loaded.model.predict_proba(["I lost my card", "Ich habe meine Karte verloren"])
    assert probabilities.shape == (2, 77)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
