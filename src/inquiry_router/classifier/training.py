"""Training: sources → fitted model → held-out evaluation → MLflow run and registered version.

Reproducible: the seed, every parameter, each source's checksum and the code version are logged,
so the same command on the same data gives the same model.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from .. import __version__
from ..config import SOURCE_ROOT, Settings
from ..datasets import DatasetError, DatasetStore, LabeledData, load_source
from ..registry import ModelRegistry, RegisteredVersion
from ..routing import DeskMap, DeskMapError
from .evaluation import Evaluation, evaluate_predictions
from .tfidf import DEFAULT_PARAMS, build_tfidf_model

MODEL_KINDS = ("tfidf",)
HOLDOUT_FRACTION = 0.2


class TrainingError(Exception):
    """The request cannot be trained as given; the message says why."""


@dataclass(frozen=True)
class TrainingReport:
    registered: RegisteredVersion
    evaluation: Evaluation
    n_train: int
    n_classes: int
    train_seconds: float
    sources: list[str]


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=SOURCE_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() or "unknown"


def _subsample(frame: pd.DataFrame, per_class: int, seed: int) -> pd.DataFrame:
    shuffled = frame.sample(frac=1.0, random_state=seed)
    return shuffled.groupby("label", sort=False).head(per_class).reset_index(drop=True)


def assemble_data(
    sources: Sequence[LabeledData], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Training and evaluation frames: official test splits where a source has one, a stratified
    hold-out of its training data where it does not."""
    train_parts, test_parts, described = [], [], []
    for source in sources:
        if source.test is not None:
            train_parts.append(source.train)
            test_parts.append(source.test)
            described.append(f"{source.name}:official-test")
            continue
        counts = source.train["label"].value_counts()
        too_few = sorted(counts[counts < 2].index.astype(str))
        if too_few:
            raise TrainingError(
                f"{source.name}: every label needs at least 2 examples to hold one out for "
                f"evaluation; too few for: {', '.join(too_few[:10])}"
            )
        train, test = train_test_split(
            source.train,
            test_size=HOLDOUT_FRACTION,
            random_state=seed,
            stratify=source.train["label"],
        )
        train_parts.append(train)
        test_parts.append(test)
        described.append(f"{source.name}:holdout-{HOLDOUT_FRACTION}-seed-{seed}")
    train_frame = pd.concat(train_parts, ignore_index=True)
    test_frame = pd.concat(test_parts, ignore_index=True)
    if train_frame["label"].nunique() < 2:
        raise TrainingError("training data must contain at least two different labels")
    return train_frame, test_frame, ",".join(described)


def train(
    settings: Settings,
    sources: Sequence[str],
    *,
    model_name: str | None = None,
    kind: str = "tfidf",
    seed: int = 0,
    limit_per_class: int | None = None,
    promote: str = "auto",
    step: Callable[[str], None] = lambda _message: None,
) -> TrainingReport:
    if kind not in MODEL_KINDS:
        raise TrainingError(f"unknown model kind {kind!r} (known: {', '.join(MODEL_KINDS)})")
    if not sources:
        raise TrainingError("give at least one --data source")
    model_name = model_name or settings.model_name

    step(f"loading {', '.join(sources)}")
    store = DatasetStore(settings, log=step)
    try:
        loaded = [load_source(source, store) for source in sources]
    except DatasetError as error:
        raise TrainingError(str(error)) from error
    train_frame, test_frame, eval_description = assemble_data(loaded, seed)
    if limit_per_class:
        train_frame = _subsample(train_frame, limit_per_class, seed)
        eval_description += f",train-limit-{limit_per_class}"

    try:
        desk_map: DeskMap | None = DeskMap.from_yaml(settings.desks_path)
    except DeskMapError:
        desk_map = None

    step(
        f"fitting {kind} on {len(train_frame):,} examples, {train_frame['label'].nunique()} intents"
    )
    started = time.perf_counter()
    estimator = build_tfidf_model(random_state=seed)
    estimator.fit(train_frame["text"].tolist(), train_frame["label"].tolist())
    train_seconds = time.perf_counter() - started

    step(f"evaluating on {len(test_frame):,} held-out examples")
    predicted = estimator.predict(test_frame["text"].tolist())
    evaluation = evaluate_predictions(test_frame["label"].tolist(), list(predicted), desk_map)

    step("logging the run and registering the model in MLflow")
    lineage: dict[str, str] = {}
    for source in loaded:
        lineage.update(source.lineage)
    params: dict[str, Any] = {
        "kind": kind,
        "seed": seed,
        "sources": ",".join(sources),
        "limit_per_class": limit_per_class or "none",
        "n_train": len(train_frame),
        "n_eval": len(test_frame),
        "n_classes": int(train_frame["label"].nunique()),
        **{f"tfidf.{key}": value for key, value in DEFAULT_PARAMS.items()},
    }
    tags = {
        "eval_data": eval_description,
        "training.name": "+".join(source.name for source in loaded),
        "evaluation.name": eval_description,
        "code_version": __version__,
        "git_commit": _git_commit(),
        **lineage,
    }
    registry = ModelRegistry(settings)
    registered = registry.log_trained_model(
        estimator=estimator,
        model_name=model_name,
        params=params,
        metrics={**evaluation.as_metrics(), "train_seconds": train_seconds},
        tags=tags,
        datasets={"training": train_frame, "evaluation": test_frame},
        artifacts={},
        sample_texts=test_frame["text"].head(5).tolist(),
        promote=promote,
    )
    return TrainingReport(
        registered=registered,
        evaluation=evaluation,
        n_train=len(train_frame),
        n_classes=int(train_frame["label"].nunique()),
        train_seconds=train_seconds,
        sources=list(sources),
    )
