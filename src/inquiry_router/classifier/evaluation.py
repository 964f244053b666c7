"""Held-out evaluation of a classifier: the figures logged with every training run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from ..routing import DeskMap


@dataclass(frozen=True)
class Evaluation:
    n: int
    accuracy: float
    macro_f1: float
    desk_accuracy: float | None  # None when the desk map does not cover the labels

    def as_metrics(self) -> dict[str, float]:
        metrics = {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "eval_n": float(self.n)}
        if self.desk_accuracy is not None:
            metrics["desk_accuracy"] = self.desk_accuracy
        return metrics


def evaluate_predictions(
    gold: Sequence[str], predicted: Sequence[str], desk_map: DeskMap | None = None
) -> Evaluation:
    gold_array, predicted_array = np.asarray(gold), np.asarray(predicted)
    desk_accuracy = None
    if desk_map is not None and all(desk_map.desk_for(label) for label in set(gold)):
        gold_desks = [desk_map.desk_for(label) for label in gold_array]
        predicted_desks = [desk_map.desk_for(label) for label in predicted_array]
        desk_accuracy = float(
            np.mean([g == p for g, p in zip(gold_desks, predicted_desks, strict=True)])
        )
    return Evaluation(
        n=len(gold_array),
        accuracy=float(accuracy_score(gold_array, predicted_array)),
        macro_f1=float(f1_score(gold_array, predicted_array, average="macro", zero_division=0)),
        desk_accuracy=desk_accuracy,
    )
