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
    DatasetError,
    DatasetStore,
    load_banking77,
    load_clinc150,
    load_clinc150_out_of_scope,
    read_labeled_file,
    split_out_of_scope,
)
from ..domain import InquiryText
from ..pipeline import (
    Reading,
    build_detector,
    foreign_threshold,
    held_as_foreign,
    model_thresholds,
    read,
    triage_threshold,
)
from ..registry import ModelRegistry
from ..routing import DeskMap, DeskMapError, Router
from ..translation import build_translator
from .evaluation import (
    Evaluation,
    evaluate_probabilities,
    record_out_of_scope,
    routing_scores,
    write_report,
)


def _row_thresholds(
    reading: Reading,
    classes: list[str],
    desk_map: DeskMap | None,
    threshold: float,
    foreign_bar: float | None,
) -> np.ndarray | None:
    """Each row's threshold as the router applies it: the best desk's own (desks.yaml) where it
    sets one, else the model's, the foreign-text one for foreign text (in a language the model
    was not trained on). None where one threshold serves every row."""
    foreign = np.asarray(held_as_foreign(reading.native), dtype=bool)
    if desk_map is None:  # intents without desks: no desk thresholds either
        if foreign_bar is None or not foreign.any():
            return None
        return model_thresholds(reading.native, threshold, foreign_bar)
    router = Router(desk_map, threshold, foreign_bar)
    desks = routing_scores(reading.probabilities, classes, None, desk_map).routed
    assert desks is not None
    return np.array(
        [router.threshold_for(str(desk), bool(f)) for desk, f in zip(desks, foreign, strict=True)]
    )


def _record_languages(
    evaluation: Evaluation,
    reading: Reading,
    classes: list[str],
    gold: list[str],
    threshold: float,
    foreign_bar: float | None,
) -> None:
    """With text not read as native among the data: accuracy and count per detected language
    (``und`` for undetermined text, which the router reads both ways) and the foreign-text
    threshold that applied."""
    if all(native is True for native in reading.native):
        return
    predicted = np.asarray(classes)[reading.probabilities.argmax(1)]
    right = predicted == np.asarray(gold)
    languages = np.asarray([g.language for g in reading.guesses])
    for language in sorted(set(languages)):
        rows = languages == language
        evaluation.extra[f"accuracy.{language}"] = float(right[rows].mean())
        evaluation.extra[f"examples.{language}"] = float(rows.sum())
    evaluation.extra["foreign_threshold"] = threshold if foreign_bar is None else foreign_bar


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
    # Read as the router reads: foreign text (not in a language the model was trained on) is
    # translated where an engine can, read by the multilingual members, and held to the
    # foreign-text threshold.
    detector, translator = build_detector(settings), build_translator(settings)
    foreign_bar = foreign_threshold(settings, classifier)
    reading = read(detector, translator, classifier, [InquiryText(text) for text in texts])
    probabilities = reading.probabilities
    evaluation = evaluate_probabilities(
        probabilities,
        classifier.classes,
        gold,
        desk_map,
        threshold,
        _row_thresholds(reading, classifier.classes, desk_map, threshold, foreign_bar),
    )
    _record_languages(evaluation, reading, classifier.classes, gold, threshold, foreign_bar)
    if out_of_scope:
        step(f"scoring {len(out_of_scope):,} out-of-scope queries")
        outside = read(detector, translator, classifier, [InquiryText(t) for t in out_of_scope])
        record_out_of_scope(
            evaluation,
            outside.probabilities,
            classifier.classes,
            desk_map,
            _row_thresholds(outside, classifier.classes, desk_map, threshold, foreign_bar),
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
