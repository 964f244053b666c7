"""The classify stage: a calibrated model and the registry version it came from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..domain import ModelRef, Prediction, Reading


class CalibratedModel(Protocol):
    """What the stage needs of a model: ``CalibratedEnsemble`` is one."""

    classes_: Any
    native_languages_: list[str]
    threshold_: float
    foreign_threshold_: float | None
    off_topic_threshold_: float | None
    foreign_off_topic_threshold_: float | None

    def off_topic_scores(
        self, texts: Sequence[str], originals: Sequence[str | None] | None = None
    ) -> np.ndarray | None: ...

    def predict_proba_by_language(
        self,
        texts: Sequence[str],
        readings: Sequence[Reading],
        originals: Sequence[str | None] | None = None,
    ) -> np.ndarray: ...


def predictions_from_proba(proba: np.ndarray, classes: Sequence[str]) -> list[Prediction]:
    predictions: list[Prediction] = []
    order = np.argsort(-proba, axis=1)
    for row, ranking in zip(proba, order, strict=True):
        best = int(ranking[0])
        second = int(ranking[1]) if len(ranking) > 1 else None
        predictions.append(
            Prediction(
                intent=str(classes[best]),
                confidence=float(row[best]),
                runner_up=None if second is None else str(classes[second]),
                runner_up_confidence=None if second is None else float(row[second]),
                probabilities={str(c): float(p) for c, p in zip(classes, row, strict=True)},
            )
        )
    return predictions


class TextClassifier:
    """A trained model, the registry version it came from, and what it learned about routing:
    its languages and its thresholds."""

    def __init__(self, model: CalibratedModel, ref: ModelRef) -> None:
        self.model = model
        self.ref = ref

    @property
    def classes(self) -> list[str]:
        return [str(label) for label in self.model.classes_]

    @property
    def native_languages(self) -> tuple[str, ...]:
        """The languages the model was trained on, which it reads as written."""
        return tuple(self.model.native_languages_)

    @property
    def threshold(self) -> float:
        """The desk confidence at which training found routing meets the target precision."""
        return float(self.model.threshold_)

    @property
    def foreign_threshold(self) -> float:
        """The same for foreign text, chosen on translated validation; never lower."""
        chosen = self.model.foreign_threshold_
        return self.threshold if chosen is None else float(chosen)

    @property
    def off_topic_threshold(self) -> float | None:
        """The off-topic score above which a text goes to triage (None: no gate)."""
        chosen = self.model.off_topic_threshold_
        return None if chosen is None else float(chosen)

    @property
    def foreign_off_topic_threshold(self) -> float | None:
        """The same for foreign text, which lies further from the training examples."""
        chosen = self.model.foreign_off_topic_threshold_
        return self.off_topic_threshold if chosen is None else float(chosen)

    def off_topic(
        self, texts: Sequence[str], originals: Sequence[str | None] | None = None
    ) -> np.ndarray | None:
        """How off-topic each text looks, None when the model has no detector."""
        if self.off_topic_threshold is None:
            return None
        return self.model.off_topic_scores(texts, originals)

    def probabilities(
        self,
        texts: Sequence[str],
        readings: Sequence[Reading],
        originals: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Class probabilities, one row a text, each read as its ``Reading`` says;
        ``originals``: for machine-translated texts, what was written."""
        return np.asarray(self.model.predict_proba_by_language(texts, readings, originals))
