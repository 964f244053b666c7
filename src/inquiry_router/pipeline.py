"""The Pipeline: one batch of inquiries through detect → translate → classify → route.

The same object serves the worker, the synchronous classify endpoint, the CLI's batch
classification, the evaluation and the benchmarks: there is one way to turn text into a
routing decision. ``read`` does the first three steps, ``route`` the last, ``run`` both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .classifier import TextClassifier, predictions_from_proba
from .config import Settings
from .domain import (
    Decision,
    InquiryText,
    LanguageGuess,
    Prediction,
    Reading,
    Routing,
    Translation,
    reading_for,
)
from .language import LanguageDetector, make_backend
from .routing import DeskMap, Router
from .translation import Translator, build_translator


@dataclass(frozen=True)
class Read:
    """What the classifier made of a batch of inquiries, before any routing."""

    guesses: list[LanguageGuess]
    translations: list[Translation]
    readings: list[Reading]
    probabilities: np.ndarray  # one row an inquiry, one column a class
    off_topic: np.ndarray | None = None  # how off-topic each looks; None: no detector


@dataclass
class Pipeline:
    detector: LanguageDetector
    translator: Translator
    classifier: TextClassifier
    router: Router

    def read(self, inquiries: Sequence[InquiryText]) -> Read:
        """Detect, decide how each text is read, translate, classify."""
        texts = [inquiry.text for inquiry in inquiries]
        guesses = self.detector.detect_batch(texts, [inquiry.locale for inquiry in inquiries])
        languages = self.classifier.native_languages
        readings = [reading_for(g.language, languages) for g in guesses]
        translations = self.translator.translate_batch(
            texts, [g.language for g in guesses], readings
        )
        both_note = f"language undetermined: read both as {languages[0]} and as foreign text"
        translations = [
            replace(t, note=both_note) if r is Reading.BOTH else t
            for t, r in zip(translations, readings, strict=True)
        ]
        # A translation is read beside what was written: each loses something the other keeps.
        read = [t.english_text for t in translations]
        originals = [
            text if t.translated else None for text, t in zip(texts, translations, strict=True)
        ]
        probabilities = self.classifier.probabilities(read, readings, originals)
        return Read(
            guesses,
            translations,
            readings,
            probabilities,
            self.classifier.off_topic(read, originals),
        )

    def route(
        self,
        probabilities: np.ndarray,
        readings: Sequence[Reading],
        off_topic: np.ndarray | None = None,
    ) -> list[tuple[Prediction, Routing]]:
        """Each text's desk, or triage, by its reading's thresholds (or its desk's own);
        ``off_topic``: the texts' off-topic scores (``Read.off_topic``)."""
        predictions = predictions_from_proba(probabilities, self.classifier.classes)
        scores = None if off_topic is None else [float(score) for score in off_topic]
        return self.router.route_batch(predictions, readings, scores)

    def route_read(self, done: Read) -> list[tuple[Prediction, Routing]]:
        """The routing of what ``read`` made of a batch."""
        return self.route(done.probabilities, done.readings, done.off_topic)

    def run(self, inquiries: Sequence[InquiryText]) -> list[Decision]:
        if not inquiries:
            return []
        done = self.read(inquiries)
        routed = self.route_read(done)
        return [
            Decision.assemble(guess, translation, prediction, routing, self.classifier.ref)
            for guess, translation, (prediction, routing) in zip(
                done.guesses, done.translations, routed, strict=True
            )
        ]

    def run_one(self, inquiry: InquiryText) -> Decision:
        return self.run([inquiry])[0]


def warm_up(pipeline: Pipeline) -> None:
    """The first inference pays for lazy initialisation (kernels, caches, the encoder that
    reads foreign text): pay it on one English and one German inquiry before serving."""
    pipeline.run([InquiryText("Where is my card?"), InquiryText("Wo ist meine Karte?")])


def build_detector(settings: Settings) -> LanguageDetector:
    return LanguageDetector(
        make_backend(settings.language_backend, settings.expected_languages),
        confidence_floor=settings.language_confidence_floor,
        short_text_chars=settings.short_text_chars,
    )


def build_router(settings: Settings, classifier: TextClassifier, desk_map: DeskMap) -> Router:
    """The model's own thresholds, unless ``triage_threshold`` is configured (then for every
    language)."""
    gates = (classifier.off_topic_threshold, classifier.foreign_off_topic_threshold)
    if settings.triage_threshold is not None:
        return Router(desk_map, settings.triage_threshold, None, *gates)
    return Router(desk_map, classifier.threshold, classifier.foreign_threshold, *gates)


def assemble(
    settings: Settings, classifier: TextClassifier, desk_map: DeskMap | None = None
) -> Pipeline:
    """The stages around a classifier. ``desk_map``: default desks.yaml, which must cover
    every intent the model predicts (the message names those it does not)."""
    if desk_map is None:
        desk_map = DeskMap.from_yaml(settings.desks_path)
        desk_map.check_covers(classifier.classes)
    return Pipeline(
        detector=build_detector(settings),
        translator=build_translator(settings),
        classifier=classifier,
        router=build_router(settings, classifier, desk_map),
    )


def build_pipeline(settings: Settings, model_uri: str | None = None) -> Pipeline:
    """Load the model (the champion unless told otherwise) and the stages around it.

    Fails with a message naming the problem when desks.yaml is invalid or does not cover every
    intent the model predicts.
    """
    from .registry import ModelRegistry  # MLflow is slow to import; only loading needs it

    desk_map = DeskMap.from_yaml(settings.desks_path)  # a bad file fails before the slow load
    classifier = ModelRegistry(settings).load(model_uri)
    desk_map.check_covers(classifier.classes)
    return assemble(settings, classifier, desk_map)
