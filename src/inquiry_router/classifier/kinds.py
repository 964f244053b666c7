"""The model kinds `train --kind` knows, in a module light enough for the command line to read."""

from enum import StrEnum


class ModelKind(StrEnum):
    TFIDF = "tfidf"
    E5 = "e5"
    USE = "use"
    ENSEMBLE = "ensemble"
    FINETUNE = "finetune"
    ENSEMBLE_FINETUNE = "ensemble-finetune"


MODEL_KINDS = tuple(kind.value for kind in ModelKind)
# Chosen by measurement on Banking77, 2 cores: ensemble-finetune 94.2 % in 9.4 minutes,
# ensemble 93.8 % in 2 minutes, e5 92.3 %, tfidf 91.5 % (docs/model.md).
DEFAULT_KIND = ModelKind.ENSEMBLE_FINETUNE


def needs_e5(kind: str) -> bool:
    """Whether a kind reads the transformer encoder (multilingual-e5-small unless
    `INQUIRY_ROUTER_ENCODER` names another); the others need no encoder folder."""
    return kind not in (ModelKind.TFIDF, ModelKind.USE)


def reads_tfidf(kind: str) -> bool:
    """Whether a kind has the TF-IDF member (its parameters then go into the MLflow run)."""
    return kind in (ModelKind.TFIDF, ModelKind.ENSEMBLE, ModelKind.ENSEMBLE_FINETUNE)


def fine_tunes(kind: str) -> bool:
    """Whether a kind fine-tunes the encoder's top layers (the slow part of its training)."""
    return kind in (ModelKind.FINETUNE, ModelKind.ENSEMBLE_FINETUNE)
