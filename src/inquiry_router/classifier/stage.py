"""The classify stage over any model with ``predict_proba`` and ``classes_``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..domain import ENGLISH, ModelRef, Prediction


class ProbabilisticModel(Protocol):
    classes_: Any

    def predict_proba(self, texts: Sequence[str]) -> Any: ...


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
    """Wraps a trained model and the registry version it came from."""

    def __init__(self, model: ProbabilisticModel, ref: ModelRef) -> None:
        self.model = model
        self.ref = ref

    @property
    def classes(self) -> list[str]:
        return [str(label) for label in self.model.classes_]

    @property
    def native_languages(self) -> tuple[str, ...]:
        """The languages the model was trained on, which it reads as written with all of its
        parts; English for models that predate the record."""
        recorded = getattr(self.model, "native_languages_", None)
        return tuple(recorded) if recorded else (ENGLISH,)

    def probabilities(
        self,
        texts: Sequence[str],
        native: Sequence[bool | None] | None = None,
        originals: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        """Class probabilities, one row a text. ``native`` marks texts written in one of the
        ``native_languages`` (not translated): models with parts that know only those read the
        others with their multilingual parts alone; None, text in an undetermined language,
        both ways. ``originals``: for machine-translated texts, what was written; those parts
        read it too."""
        by_language = getattr(self.model, "predict_proba_by_language", None)
        if native is not None and by_language is not None:
            written = None if originals is None else list(originals)
            return np.asarray(by_language(list(texts), list(native), written))
        return np.asarray(self.model.predict_proba(list(texts)))
