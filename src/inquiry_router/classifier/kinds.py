"""The model kinds `train --model` knows, in a module light enough for the command line to read."""

MODEL_KINDS = ("tfidf", "e5", "use", "ensemble", "finetune", "ensemble-finetune")
# Chosen by measurement on Banking77, 2 cores: ensemble-finetune 94.2 % in 9.4 minutes,
# ensemble 93.8 % in 2 minutes, e5 92.3 %, tfidf 91.5 %.
DEFAULT_KIND = "ensemble-finetune"


def needs_e5(kind: str) -> bool:
    """Whether a kind reads the transformer encoder (multilingual-e5-small unless
    `INQUIRY_ROUTER_ENCODER` names another); the others need no encoder folder."""
    return kind not in ("tfidf", "use")


def reads_tfidf(kind: str) -> bool:
    """Whether a kind has the TF-IDF member (its parameters then go into the MLflow run)."""
    return kind in ("tfidf", "ensemble", "ensemble-finetune")
