"""Held-out evaluation: the figures and plots logged with every training run and by
``inquiry-router evaluate``.

Routing quality is judged at the desk, as the service routes: the desk's probability is the sum
of its intents' probabilities, and an inquiry is auto-routed when that reaches the threshold.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
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

from ..routing import DeskMap

DEFAULT_THRESHOLD = 0.55  # when there is no held-out data to choose one from


@dataclass(frozen=True)
class RoutingScores:
    """Per example: the routed group (desk, or intent without a desk map), its probability,
    and whether it is the right one."""

    confidence: np.ndarray
    correct: np.ndarray
    weight: np.ndarray | None = None  # how much each example counts; None: equally
    routed: np.ndarray | None = None  # the group each example goes to, when known


def routing_scores(
    probabilities: np.ndarray,
    classes: Sequence[str],
    gold: Sequence[str] | None,
    desk_map: DeskMap | None,
) -> RoutingScores:
    """``gold=None`` scores out-of-scope messages: whatever they are routed to is wrong."""
    classes = list(classes)
    group_of: Callable[[str], str | None]
    if desk_map is None or not all(desk_map.desk_for(c) for c in classes):
        groups, group_of = classes, lambda label: label
        group_probabilities = probabilities
    else:
        group_of = desk_map.desk_for
        groups = sorted({desk_map.desk_for(c) or "" for c in classes})
        membership = np.zeros((len(classes), len(groups)))
        for i, label in enumerate(classes):
            membership[i, groups.index(desk_map.desk_for(label) or "")] = 1.0
        group_probabilities = probabilities @ membership
    confidence = group_probabilities.max(1)
    best = group_probabilities.argmax(1)
    routed = np.asarray(groups, dtype=object)[best]
    if gold is None:
        return RoutingScores(confidence, np.zeros(len(confidence), dtype=bool), routed=routed)
    return RoutingScores(
        confidence,
        np.array([groups[b] == group_of(g) for b, g in zip(best, gold, strict=True)]),
        routed=routed,
    )


def record_out_of_scope(
    evaluation: Evaluation,
    probabilities: np.ndarray,
    classes: Sequence[str],
    desk_map: DeskMap | None,
    thresholds: np.ndarray | None = None,
) -> None:
    """Add the share of out-of-scope messages the threshold sends to triage (``thresholds``:
    each message's own, where foreign text or a desk has another)."""
    confidence = routing_scores(probabilities, classes, None, desk_map).confidence
    bar = evaluation.threshold if thresholds is None else thresholds
    evaluation.extra["oos_recall"] = float((confidence < bar).mean())
    evaluation.extra["in_scope_accuracy"] = evaluation.accuracy


def choose_threshold(scores: RoutingScores, target_precision: float) -> float:
    """The lowest threshold at which the auto-routed share is at least ``target_precision``
    right: the most automation the target allows."""
    order = np.argsort(-scores.confidence)
    confidence, correct = scores.confidence[order], scores.correct[order]
    weight = np.ones(len(order)) if scores.weight is None else scores.weight[order]
    precision = np.cumsum(weight * correct) / np.cumsum(weight)
    meeting = np.nonzero(precision >= target_precision)[0]
    if len(meeting) == 0:
        return 1.0
    return float(confidence[meeting[-1]])


def coverage_precision(scores: RoutingScores, threshold: float | np.ndarray) -> tuple[float, float]:
    routed = scores.confidence >= threshold
    coverage = float(routed.mean()) if len(routed) else 0.0
    precision = float(scores.correct[routed].mean()) if routed.any() else 1.0
    return coverage, precision


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


def evaluate_probabilities(
    probabilities: np.ndarray,
    classes: Sequence[str],
    gold: Sequence[str],
    desk_map: DeskMap | None,
    threshold: float,
    row_thresholds: np.ndarray | None = None,
) -> Evaluation:
    """``row_thresholds``: each row's own threshold where they differ (foreign text and desks
    with their own have theirs); coverage and precision are then as the router would route. The
    curve sweeps one threshold over every row."""
    classes = list(classes)
    predicted = [classes[i] for i in probabilities.argmax(1)]
    desk_accuracy = None
    if desk_map is not None and all(desk_map.desk_for(label) for label in {*gold, *classes}):
        desk_accuracy = float(
            np.mean(
                [
                    desk_map.desk_for(p) == desk_map.desk_for(g)
                    for p, g in zip(predicted, gold, strict=True)
                ]
            )
        )
    scores = routing_scores(probabilities, classes, gold, desk_map)
    coverage, precision = coverage_precision(
        scores, threshold if row_thresholds is None else row_thresholds
    )
    top = probabilities.max(1)
    intent_correct = np.array([p == g for p, g in zip(predicted, gold, strict=True)])
    labels = sorted(set(gold) | set(predicted))
    p, r, f, support = precision_recall_fscore_support(
        gold, predicted, labels=labels, zero_division=0
    )
    curve = [(float(t), *coverage_precision(scores, float(t))) for t in np.linspace(0.0, 0.99, 34)]
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
