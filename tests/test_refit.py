"""A model trained from a file learns all of it once its figures are taken, and is never judged
on what it learned."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from inquiry_router.config import Settings
from inquiry_router.datasets import DatasetStore, load_banking77, load_source
from inquiry_router.lifecycle.sources import assemble_data, text_digests
from inquiry_router.lifecycle.training import train
from inquiry_router.registry import ModelRegistry

from .conftest import run_cli, settings_for


def _file(folder: Path, name: str, rows: slice) -> Path:
    """A support lead's file: Banking77 training examples ``rows`` of each intent."""
    frame = load_banking77(DatasetStore(settings_for(folder))).train
    position = frame.groupby("label").cumcount()
    sample = frame[(position >= rows.start) & (position < rows.stop)]
    path = folder / name
    sample[["text", "label"]].to_csv(path, index=False)
    return path


def _held_out(settings: Settings, data: Path, seed: int = 0) -> pd.DataFrame:
    """What a training on ``data`` with ``seed`` holds out to take its figures."""
    return assemble_data([load_source(str(data), DatasetStore(settings))], seed).test


def test_the_registered_model_learns_what_was_held_out_for_its_figures(tmp_path: Path) -> None:
    data = _file(tmp_path, "mine.csv", slice(0, 10))
    settings = settings_for(tmp_path / "home", background_out_of_scope="none")
    said: list[str] = []
    report = train(settings, [str(data)], kind="tfidf", step=said.append)
    held = _held_out(settings, data)
    assert report.evaluation.n == len(held) > 100
    assert report.n_final == report.n_train + len(held) == len(pd.read_csv(data))
    assert any(f"refitting on all {report.n_final:,} examples" in line for line in said)

    registry = ModelRegistry(settings)
    model = registry.load("models:/inquiry-router/1").model
    # It knows the held-out examples now, as it knows the rest; the figures are those of the
    # model before, which had not seen them, and its thresholds are the calibrated ones.
    refit_accuracy = float(np.mean(model.predict(held["text"].tolist()) == held["label"]))
    assert refit_accuracy >= 0.95 > report.evaluation.accuracy
    assert model.threshold_ == report.evaluation.threshold
    params = (
        mlflow.MlflowClient(settings.resolved_tracking_uri)
        .get_run(report.registered.run_id)
        .data.params
    )
    assert params["refit_on_all"].startswith("yes") and params["n_final"] == str(report.n_final)
    learned = registry.trained_on("inquiry-router", "1")
    assert learned is not None and text_digests(held["text"]) <= learned
    assert not any(text in "\n".join(sorted(learned)) for text in held["text"].head(20))

    # Evaluated on its own file, it is told that it learned those examples.
    own = run_cli(
        tmp_path / "home",
        "evaluate",
        "--data",
        str(data),
        env={"INQUIRY_ROUTER_BACKGROUND_OUT_OF_SCOPE": "none"},
    )
    assert f"{len(pd.read_csv(data)):,} of the {len(pd.read_csv(data)):,} examples" in own.said
    assert "its figures on them flatter it" in own.said

    # Asked not to, it registers the model its figures are of.
    kept = train(
        settings_for(tmp_path / "kept", background_out_of_scope="none"),
        [str(data)],
        kind="tfidf",
        refit=False,
    )
    assert kept.n_final == kept.n_train and kept.refit == "no: --no-refit"
    assert kept.evaluation.n == report.evaluation.n
    # Its figures are those of the calibration split's members, the model before the refit.
    assert report.refit.endswith(f"which learned {report.n_train - 92:,}")


def test_no_comparison_judges_a_version_on_what_it_learned(tmp_path: Path) -> None:
    first = _file(tmp_path, "mine.csv", slice(0, 10))
    settings = settings_for(tmp_path, background_out_of_scope="none")
    train(settings, [str(first)], kind="tfidf")  # v1, @champion, learned all of mine.csv

    # The same file again: every held-out text is one the champion learned. Nothing is left
    # to judge the two on, and the training says so rather than compare on the champion's own
    # training data.
    said: list[str] = []
    again = train(settings, [str(first)], kind="tfidf", seed=1, step=said.append)
    assert again.registered.is_challenger and again.comparison is None
    refused = next(line for line in said if line.startswith("not compared"))
    assert "nothing left to compare on" in refused and "learned by v1" in refused
    assert "it stays @challenger" in refused

    # New examples are new evidence: the comparison rests on them alone, the challenger as it
    # was before its refit (it had not learned its held-out split). Four of each of 77 labels:
    # a fifth would hold out 62, fewer than the labels; one of each is held out.
    more = _file(tmp_path, "more.csv", slice(10, 14))
    said.clear()
    grown = train(settings, [str(first), str(more)], kind="tfidf", step=said.append)
    comparison = grown.comparison
    assert comparison is not None
    new_held = assemble_data(
        [load_source(str(path), DatasetStore(settings)) for path in (first, more)], 0
    ).test
    unseen = new_held[~new_held["text"].isin(pd.read_csv(first)["text"])]
    assert comparison.n == len(unseen) > 50
    assert comparison.left_out == len(new_held) - len(unseen) > 0
    assert any("left out of the comparison" in line for line in said)

    # By hand, the registered versions: v3 learned both files, v1 the first; nothing is left.
    by_hand = run_cli(tmp_path, "models", "compare", "1", "3", check=False)
    assert by_hand.exit_code != 0 and "nothing left to compare on" in by_hand.said
