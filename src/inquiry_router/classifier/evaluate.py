"""``inquiry-router evaluate``: a registered model on a dataset's held-out split, with
out-of-scope detection: on the data's own out-of-scope rows (CLINC150's, or a file's `oos`
rows), or else on the background ones training uses (INQUIRY_ROUTER_BACKGROUND_OUT_OF_SCOPE)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Settings
from ..datasets import (
    DatasetError,
    DatasetStore,
    load_banking77,
    load_clinc150,
    load_clinc150_out_of_scope,
    read_labeled_file,
    split_out_of_scope,
)
from ..pipeline import triage_threshold
from ..registry import ModelRegistry
from ..routing import DeskMap, DeskMapError
from .evaluation import Evaluation, evaluate_probabilities, record_out_of_scope, write_report


@dataclass(frozen=True)
class EvaluationReport:
    model: str
    data: str
    evaluation: Evaluation
    run_id: str


def evaluate_model(
    settings: Settings,
    data: str,
    model_uri: str | None = None,
    step: Callable[[str], None] = lambda _message: None,
) -> EvaluationReport:
    registry = ModelRegistry(settings)
    step(f"loading {model_uri or 'the @champion model'}")
    classifier = registry.load(model_uri)
    store = DatasetStore(settings, log=step)
    if data == "banking77":
        test = load_banking77(store).test
    elif data == "clinc150":
        test = load_clinc150(store, include_oos=True).test
    else:
        test = read_labeled_file(Path(data))
    assert test is not None
    test, out_of_scope = split_out_of_scope(test)
    if not out_of_scope and settings.background_out_of_scope == "clinc150":
        try:
            out_of_scope = load_clinc150_out_of_scope(store).test
        except DatasetError as error:
            step(f"warning: no out-of-scope queries to test with ({error})")
    desk_map: DeskMap | None = None
    try:
        candidate = DeskMap.from_yaml(settings.desks_path)
        candidate.check_covers(classifier.classes)
        desk_map = candidate
    except DeskMapError:
        pass  # intents without desks: judged at the intent level
    threshold = triage_threshold(settings, classifier)

    step(f"classifying {len(test):,} held-out examples")
    texts, gold = test["text"].tolist(), test["label"].tolist()
    unknown = sorted(set(gold) - set(classifier.classes))
    if unknown:
        raise DatasetError(
            f"{data} has label(s) the model never learned: {', '.join(unknown[:10])}"
        )
    probabilities = np.asarray(classifier.model.predict_proba(texts))
    evaluation = evaluate_probabilities(
        probabilities, classifier.classes, gold, desk_map, threshold
    )
    if out_of_scope:
        step(f"scoring {len(out_of_scope):,} out-of-scope queries")
        record_out_of_scope(
            evaluation,
            np.asarray(classifier.model.predict_proba(out_of_scope)),
            classifier.classes,
            desk_map,
        )
    with tempfile.TemporaryDirectory() as scratch:
        files = write_report(evaluation, probabilities, classifier.classes, gold, Path(scratch))
        run_id = registry.log_evaluation(classifier.ref, data, evaluation.as_metrics(), files)
    return EvaluationReport(
        model=f"{classifier.ref.name} v{classifier.ref.version}",
        data=data,
        evaluation=evaluation,
        run_id=run_id,
    )
