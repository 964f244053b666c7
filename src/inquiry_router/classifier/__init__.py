"""The classify stage: English (or untranslated) text → intent with a calibrated probability."""

from .stage import ProbabilisticModel, TextClassifier, predictions_from_proba

__all__ = ["ProbabilisticModel", "TextClassifier", "predictions_from_proba"]
