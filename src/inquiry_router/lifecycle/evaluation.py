"""Held-out evaluation: the figures and plots logged with every training run and by
``inquiry-router evaluate``.

Routing quality is judged as the service routes: the texts go through the pipeline's router
(``Pipeline.route``), which gates each desk's probability (the sum of its intents') on its
threshold; a routed inquiry is right when its desk handles the gold intent.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from ..domain import Prediction, Routing
from ..routing import DeskMap

Routed = Sequence[tuple[Prediction, Routing]]


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> float:
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def coverage_precision(
    confidence: np.ndarray, correct: np.ndarray, routed: np.ndarray
) -> tuple[float, float]:
    """The share routed, and the share of those that reached the right desk."""
    coverage = float(routed.mean()) if len(routed) else 0.0
    precision = float(correct[routed].mean()) if routed.any() else 1.0
    return coverage, precision


@dataclass
class Evaluation:
    n: int
    accuracy: float
    macro_f1: float
    desk_accuracy: float | None
    threshold: float
    coverage: float
    auto_precision: float
    calibration_error: float
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    curve: list[tuple[float, float, float]] = field(default_factory=list)  # (t, coverage, prec.)
    extra: dict[str, float] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, float]:
        metrics = {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "eval_n": float(self.n),
            "triage_threshold": self.threshold,
            "auto_routed_coverage": self.coverage,
            "auto_routed_precision": self.auto_precision,
            "calibration_error": self.calibration_error,
            **self.extra,
        }
        if self.desk_accuracy is not None:
            metrics["desk_accuracy"] = self.desk_accuracy
        return metrics


def evaluate(
    probabilities: np.ndarray,
    classes: Sequence[str],
    gold: Sequence[str],
    routed: Routed,
    threshold: float,
    desk_map: DeskMap,
) -> Evaluation:
    """Figures for texts the pipeline read (``probabilities``) and routed (``routed``, from
    ``Pipeline.route``), against their ``gold`` intents. ``threshold``: the model's, which the
    coverage-precision curve sweeps over every text; coverage and precision are as routed,
    each text by its own threshold (foreign text's, or its desk's)."""
    classes = list(classes)
    predicted = [classes[i] for i in probabilities.argmax(1)]
    desk_accuracy = None
    if not desk_map.is_per_intent and desk_map.covers({*gold, *classes}):
        desk_accuracy = float(
            np.mean(
                [
                    desk_map.desk_for(p) == desk_map.desk_for(g)
                    for p, g in zip(predicted, gold, strict=True)
                ]
            )
        )
    # The desk each text would go to, were its confidence enough; and whether it is the right.
    best = [desk_map.desk_for(prediction.intent) for prediction, _ in routed]
    correct = np.array([b == desk_map.desk_for(g) for b, g in zip(best, gold, strict=True)])
    confidence = np.array([routing.desk_confidence for _, routing in routed])
    auto = np.array([routing.auto_routed for _, routing in routed], dtype=bool)
    coverage, precision = coverage_precision(confidence, correct, auto)
    top = probabilities.max(1)
    intent_correct = np.array([p == g for p, g in zip(predicted, gold, strict=True)])
    labels = sorted(set(gold) | set(predicted))
    p, r, f, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, zero_division=0
    )
    curve = [
        (float(t), *coverage_precision(confidence, correct, confidence >= t))
        for t in np.linspace(0.0, 0.99, 34)
    ]
    return Evaluation(
        n=len(gold),
        accuracy=float(accuracy_score(gold, predicted)),
        macro_f1=float(f1_score(gold, predicted, average="macro", zero_division=0)),
        desk_accuracy=desk_accuracy,
        threshold=threshold,
        coverage=coverage,
        auto_precision=precision,
        calibration_error=expected_calibration_error(top, intent_correct),
        per_class={
            label: {
                "precision": float(pi),
                "recall": float(ri),
                "f1": float(fi),
                "support": int(si),
            }
            for label, pi, ri, fi, si in zip(labels, p, r, f, support, strict=True)
        },
        curve=curve,
    )


def record_out_of_scope(evaluation: Evaluation, routed: Routed) -> None:
    """Add the share of out-of-scope messages the router sends to triage."""
    evaluation.extra["oos_recall"] = float(
        np.mean([not routing.auto_routed for _, routing in routed])
    )
    evaluation.extra["in_scope_accuracy"] = evaluation.accuracy


def write_report(
    evaluation: Evaluation,
    probabilities: np.ndarray,
    classes: Sequence[str],
    gold: Sequence[str],
    folder: Path,
) -> list[Path]:
    """JSON figures and PNG plots: coverage-precision curve, reliability, confusion matrix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    report = folder / "evaluation.json"
    report.write_text(
        json.dumps(
            {
                "metrics": evaluation.as_metrics(),
                "per_class": evaluation.per_class,
                "coverage_precision_curve": evaluation.curve,
            },
            indent=2,
        )
    )
    paths.append(report)

    figure, axis = plt.subplots(figsize=(5, 4))
    _, coverage, precision = zip(*evaluation.curve, strict=True)
    axis.plot(coverage, precision, marker=".")
    axis.axvline(evaluation.coverage, color="grey", linestyle="--")
    axis.set_xlabel("auto-routed share (coverage)")
    axis.set_ylabel("precision of auto-routed")
    axis.set_title(f"threshold {evaluation.threshold:.2f}: {evaluation.coverage:.1%} routed")
    paths.append(_save(figure, folder / "coverage_precision.png"))

    classes = list(classes)
    top = probabilities.max(1)
    correct = np.array(
        [classes[i] == g for i, g in zip(probabilities.argmax(1), gold, strict=True)]
    )
    edges = np.linspace(0, 1, 11)
    centres, accuracy = [], []
    for low, high in itertools.pairwise(edges):
        in_bin = (top > low) & (top <= high)
        if in_bin.any():
            centres.append(float(top[in_bin].mean()))
            accuracy.append(float(correct[in_bin].mean()))
    figure, axis = plt.subplots(figsize=(4, 4))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--")
    axis.plot(centres, accuracy, marker="o")
    axis.set_xlabel("confidence")
    axis.set_ylabel("accuracy")
    axis.set_title(f"calibration error {evaluation.calibration_error:.3f}")
    paths.append(_save(figure, folder / "reliability.png"))

    labels = sorted(set(gold))
    predicted = [classes[i] for i in probabilities.argmax(1)]
    matrix = confusion_matrix(gold, predicted, labels=labels)
    figure, axis = plt.subplots(figsize=(12, 12))
    axis.imshow(np.log1p(matrix), cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=90, fontsize=5)
    axis.set_yticks(range(len(labels)), labels, fontsize=5)
    axis.set_xlabel("predicted")
    axis.set_ylabel("gold")
    paths.append(_save(figure, folder / "confusion_matrix.png"))
    return paths


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
