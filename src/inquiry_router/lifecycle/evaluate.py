"""``inquiry-router evaluate``: a registered model on a dataset's held-out split, read as the
router reads it (language detected, translated where an engine can, each language held to its
threshold; accuracy per language when not all of it is in the languages the model was trained
on), with out-of-scope detection: on the data's own out-of-scope rows (CLINC150's, or a file's
`oos` rows), or else on the background ones training uses
(INQUIRY_ROUTER_BACKGROUND_OUT_OF_SCOPE)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import Settings
from ..datasets import (
    TRAINABLE,
    DatasetError,
    DatasetStore,
    load_clinc150_out_of_scope,
    load_source,
    read_labeled_file,
    split_out_of_scope,
)
from ..domain import InquiryText, Reading
from ..pipeline import Read, assemble
from ..registry import ModelRegistry
from ..routing import DeskMap, DeskMapError
from .evaluation import Evaluation, evaluate, record_out_of_scope, write_report
from .sources import text_digest


def _record_languages(
    evaluation: Evaluation, done: Read, classes: list[str], gold: list[str], foreign_bar: float
) -> None:
    """With text not read as native among the data: accuracy and count per detected language
    (``und`` for undetermined text, which the router reads both ways) and the foreign-text
    threshold that applied."""
    if all(reading is Reading.NATIVE for reading in done.readings):
        return
    predicted = np.asarray(classes)[done.probabilities.argmax(1)]
    right = predicted == np.asarray(gold)
    languages = np.asarray([g.language for g in done.guesses])
    for language in sorted(set(languages)):
        rows = languages == language
        evaluation.extra[f"accuracy.{language}"] = float(right[rows].mean())
        evaluation.extra[f"examples.{language}"] = float(rows.sum())
    evaluation.extra["foreign_threshold"] = foreign_bar


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
    test = load_source(data, store).test if data in TRAINABLE else read_labeled_file(Path(data))
    assert test is not None
    test, out_of_scope = split_out_of_scope(test)
    if not out_of_scope and settings.background_out_of_scope == "clinc150":
        try:
            out_of_scope = load_clinc150_out_of_scope(store).test
        except DatasetError as error:
            step(f"warning: no out-of-scope queries to test with ({error})")
    try:
        desk_map = DeskMap.from_yaml(settings.desks_path)
    except DeskMapError:
        desk_map = None
    if desk_map is None or not desk_map.covers(classifier.classes):
        desk_map = DeskMap.one_per_intent(classifier.classes)  # judged at the intent level
    pipeline = assemble(settings, classifier, desk_map)

    step(f"classifying {len(test):,} held-out examples")
    texts, gold = test["text"].tolist(), test["label"].tolist()
    unknown = sorted(set(gold) - set(classifier.classes))
    if unknown:
        raise DatasetError(
            f"{data} has label(s) the model never learned: {', '.join(unknown[:10])}"
        )
    learned = registry.trained_on(classifier.ref.name, classifier.ref.version) or set()
    n_learned = sum(text_digest(text) in learned for text in texts)
    if n_learned:
        step(
            f"warning: {n_learned:,} of the {len(texts):,} examples are texts version "
            f"{classifier.ref.version} learned in training: its figures on them flatter it. "
            "Evaluate on examples it never saw (a new file, or an official test split)"
        )
    # Read as the router reads: foreign text (not in a language the model was trained on) is
    # translated where an engine can, read by the multilingual members, and held to the
    # foreign-text threshold.
    done = pipeline.read([InquiryText(text) for text in texts])
    threshold = pipeline.router.threshold
    evaluation = evaluate(
        done.probabilities,
        classifier.classes,
        gold,
        pipeline.route_read(done),
        threshold,
        desk_map,
    )
    _record_languages(evaluation, done, classifier.classes, gold, pipeline.router.foreign_threshold)
    if n_learned:
        evaluation.extra["learned_examples"] = float(n_learned)
    if out_of_scope:
        step(f"scoring {len(out_of_scope):,} out-of-scope queries")
        outside = pipeline.read([InquiryText(t) for t in out_of_scope])
        record_out_of_scope(evaluation, pipeline.route_read(outside))
    with tempfile.TemporaryDirectory() as scratch:
        files = write_report(
            evaluation, done.probabilities, classifier.classes, gold, Path(scratch)
        )
        run_id = registry.log_evaluation(classifier.ref, data, evaluation.as_metrics(), files)
    return EvaluationReport(
        model=f"{classifier.ref.name} v{classifier.ref.version}",
        data=data,
        evaluation=evaluation,
        run_id=run_id,
    )
