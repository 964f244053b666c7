"""A running service follows @champion: a promoted model is picked up without a restart, and a
rollback is too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inquiry_router.lifecycle.training import train
from inquiry_router.registry import ModelRegistry
from inquiry_router.runtime import PipelineHolder

from .conftest import settings_for


@pytest.mark.slow
def test_the_service_swaps_models_when_champion_moves(
    trained_home: Path, encoders_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "models").mkdir()
    shutil.copy(trained_home / "models" / "mlflow.db", tmp_path / "models" / "mlflow.db")
    settings = settings_for(tmp_path, encoders_dir=encoders_dir, model_refresh_interval_s=0.01)
    holder = PipelineHolder(settings)
    holder.load()
    assert holder.current().classifier.ref.version == "1"
    assert holder.refresh_if_due() is False  # nothing moved

    report = train(settings, ["banking77"], kind="tfidf", limit_per_class=5, promote="always")
    assert report.registered.version == "2"
    assert holder.refresh_if_due() is True
    assert holder.current().classifier.ref.version == "2"

    assert ModelRegistry(settings).rollback(settings.model_name) == "1"
    assert holder.refresh_if_due() is True
    assert holder.current().classifier.ref.version == "1"


def test_settings_reach_a_worker_process_as_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` hands its settings to the worker processes it starts as variables."""
    import os

    from inquiry_router.config import Settings

    settings = settings_for(tmp_path, worker_batch_size=64, shadow=True, bf16=False)
    for name in [key for key in os.environ if key.startswith("INQUIRY_ROUTER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("INQUIRY_ROUTER_TRIAGE_THRESHOLD", "0.5")  # unset by the settings
    for name, value in settings.environment().items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert Settings().model_dump() == settings.model_dump()
