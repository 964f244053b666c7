"""The Pipeline: one batch of inquiries through detect → translate → classify → route.

The same object serves the worker, the synchronous classify endpoint and the CLI's batch
classification: there is one way to turn text into a routing decision. `evaluate` reads its
data through the same first three steps (``read``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .classifier import TextClassifier
from .classifier.evaluation import DEFAULT_THRESHOLD
from .classifier.stage import predictions_from_proba
from .config import Settings
from .domain import ENGLISH, UNDETERMINED, Decision, InquiryText, LanguageGuess, Translation
from .language import LanguageDetector, make_backend
from .routing import DeskMap, Router
from .translation import Translator, build_translator


def read_as(guess: LanguageGuess, native_languages: Sequence[str] = (ENGLISH,)) -> str:
    """The language text most likely is: undetermined text is mostly short ("Change currency",
    "Wecker stellen"), in the language most of the model's training text was in (English,
    unless the model was trained on another). Training counts its languages this way; the
    router reads such text both ways (``reads_as_written``)."""
    return native_languages[0] if guess.language == UNDETERMINED else guess.language


def reads_as_written(
    language: str, translated: bool, native_languages: Sequence[str] = (ENGLISH,)
) -> bool | None:
    """How the classifier reads a text: True, as written in a language the model was trained
    on, by every member; False, as foreign text (or a translation), by the multilingual
    members, held to the foreign-text threshold; None, in an undetermined language, both ways
    and held to the foreign-text threshold, the stricter one: a third of xSID's Danish and a
    tenth of its Dutch is too short or too close to a neighbour to tell, and read as English
    it lost accuracy."""
    if translated:
        return False
    if language == UNDETERMINED:
        return None
    return language in native_languages


def held_as_foreign(native: Sequence[bool | None]) -> list[bool]:
    """Which texts the foreign-text threshold applies to: all but those read as native,
    undetermined text included (``reads_as_written``)."""
    return [n is not True for n in native]


def model_thresholds(
    native: Sequence[bool | None], threshold: float, foreign_threshold: float | None
) -> np.ndarray:
    """Each text's threshold from the model alone, before any desk's own: the foreign-text
    one for the texts ``held_as_foreign``, where the model has one, else ``threshold``."""
    bar = threshold if foreign_threshold is None else foreign_threshold
    return np.where(held_as_foreign(native), bar, threshold)


@dataclass(frozen=True)
class Reading:
    """What the classifier made of a batch of inquiries, before any routing."""

    guesses: list[LanguageGuess]
    translations: list[Translation]
    # Written in a language the model was trained on (English unless it records others), and
    # read as written by every member; False: foreign text; None: undetermined, read both ways
    # (``reads_as_written``).
    native: list[bool | None]
    probabilities: np.ndarray  # one row an inquiry, one column a class


def read(
    detector: LanguageDetector,
    translator: Translator,
    classifier: TextClassifier,
    inquiries: Sequence[InquiryText],
) -> Reading:
    """Detect, translate, classify: how the router reads inquiries, and how `evaluate` does."""
    texts = [inquiry.text for inquiry in inquiries]
    guesses = detector.detect_batch(texts, [inquiry.locale for inquiry in inquiries])
    languages = classifier.native_languages
    translations = translator.translate_batch(texts, [g.language for g in guesses], languages)
    native = [
        reads_as_written(g.language, t.translated, languages)
        for g, t in zip(guesses, translations, strict=True)
    ]
    unsure = f"language undetermined: read both as {languages[0]} and as foreign text"
    translations = [
        replace(t, note=unsure) if n is None else t
        for t, n in zip(translations, native, strict=True)
    ]
    # A translation is read beside what was written: each loses something the other keeps.
    probabilities = classifier.probabilities(
        [t.english_text for t in translations],
        native,
        [text if t.translated else None for text, t in zip(texts, translations, strict=True)],
    )
    return Reading(guesses, translations, native, probabilities)


@dataclass
class Pipeline:
    detector: LanguageDetector
    translator: Translator
    classifier: TextClassifier
    router: Router

    def run(self, inquiries: Sequence[InquiryText]) -> list[Decision]:
        if not inquiries:
            return []
        reading = read(self.detector, self.translator, self.classifier, inquiries)
        predictions = predictions_from_proba(reading.probabilities, self.classifier.classes)
        routed = self.router.route_batch(predictions, held_as_foreign(reading.native))
        return [
            Decision.assemble(guess, translation, prediction, routing, self.classifier.ref)
            for guess, translation, (prediction, routing) in zip(
                reading.guesses, reading.translations, routed, strict=True
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


def triage_threshold(settings: Settings, classifier: TextClassifier) -> float:
    """The configured threshold, else the one chosen on validation data when the model was
    trained (to meet the target precision), else a conservative default."""
    if settings.triage_threshold is not None:
        return settings.triage_threshold
    chosen = getattr(classifier.model, "triage_threshold_", None)
    return float(chosen) if chosen is not None else DEFAULT_THRESHOLD


def foreign_threshold(settings: Settings, classifier: TextClassifier) -> float | None:
    """The threshold for text not written in English, chosen on translated validation when the
    model was trained; None (the English one applies) when configured or not chosen."""
    if settings.triage_threshold is not None:
        return None
    chosen = getattr(classifier.model, "foreign_threshold_", None)
    return float(chosen) if chosen is not None else None


def build_pipeline(settings: Settings, model_uri: str | None = None) -> Pipeline:
    """Load the model (the champion unless told otherwise) and the stages around it.

    Fails with a message naming the problem when desks.yaml is invalid or does not cover every
    intent the model predicts.
    """
    from .registry import ModelRegistry  # MLflow is slow to import; only loading needs it

    desk_map = DeskMap.from_yaml(settings.desks_path)
    classifier = ModelRegistry(settings).load(model_uri)
    desk_map.check_covers(classifier.classes)
    return Pipeline(
        detector=build_detector(settings),
        translator=build_translator(settings),
        classifier=classifier,
        router=Router(
            desk_map,
            triage_threshold(settings, classifier),
            foreign_threshold(settings, classifier),
        ),
    )
