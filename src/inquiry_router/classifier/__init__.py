"""The classify stage: English (or untranslated) text → intent with a calibrated probability.

Model kinds (``kinds``), their encoders (``encoders``), the calibrated estimator (``models``)
and the arithmetic it is fitted with (``calibration``). Nothing here knows about desks files,
translation engines, MLflow or the database."""

from .kinds import DEFAULT_KIND, MODEL_KINDS, ModelKind
from .stage import CalibratedModel, TextClassifier, predictions_from_proba

__all__ = [
    "DEFAULT_KIND",
    "MODEL_KINDS",
    "CalibratedModel",
    "ModelKind",
    "TextClassifier",
    "predictions_from_proba",
]
