"""The nouns every stage shares. Plain dataclasses: no I/O, no framework imports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

UNDETERMINED = "und"
ENGLISH = "en"  # what the router translates into, and what models learn from unless told


class Reading(StrEnum):
    """How the classifier reads a text, decided once per text by the pipeline
    (``pipeline.reading_for``) and handed to the translator, the classifier and the router."""

    NATIVE = "native"  # written in a language the model was trained on: every member reads it
    FOREIGN = "foreign"  # any other language: translated where an engine can, read by the
    # multilingual members (beside what was written), held to the foreign-text threshold
    BOTH = "both"  # language undetermined (short text): read both ways, the foreign-text
    # threshold applies


def reading_for(language: str, native_languages: Sequence[str] = (ENGLISH,)) -> Reading:
    """The one rule for how a text is read, by the language detected in it: as written by
    every member when it is one the model was trained on; as foreign text otherwise; both ways
    when undetermined (a third of xSID's Danish and a tenth of its Dutch is too short or too
    close to a neighbour to tell, and read as English it lost accuracy)."""
    if language == UNDETERMINED:
        return Reading.BOTH
    return Reading.NATIVE if language in native_languages else Reading.FOREIGN


class Status(StrEnum):
    RECEIVED = "received"  # stored, waiting for a worker
    PROCESSING = "processing"  # leased by a worker; the lease expiring returns it to the pool
    ROUTED = "routed"  # in a desk's queue
    CLAIMED = "claimed"  # an agent or system is working on it
    RESOLVED = "resolved"


@dataclass(frozen=True)
class InquiryText:
    """What the pipeline needs of an inquiry."""

    message: str
    subject: str | None = None
    locale: str | None = None

    @property
    def text(self) -> str:
        # The subject often names the problem ("Card not arrived"); keep it with the body.
        if self.subject and self.subject.strip():
            return f"{self.subject.strip()}\n{self.message}"
        return self.message


@dataclass(frozen=True)
class LanguageGuess:
    language: str  # ISO 639-1 code, or "und"
    confidence: float
    source: str  # "text", "locale" (the form's declared locale decided) or "none"
    runner_up: str | None = None
    runner_up_confidence: float | None = None


@dataclass(frozen=True)
class Translation:
    english_text: str
    translated: bool
    engine: str | None  # "passthrough" (English, or read as written), an engine's name, or None
    engine_version: str | None = None
    note: str | None = None  # why it was not translated, or the engine's error


@dataclass(frozen=True)
class Prediction:
    intent: str
    confidence: float
    runner_up: str | None
    runner_up_confidence: float | None
    # Every class's probability, for desk-level aggregation; not stored.
    probabilities: dict[str, float] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class DeskScore:
    desk: str
    confidence: float  # the sum of its intents' probabilities


@dataclass(frozen=True)
class Routing:
    desk: str
    desk_confidence: float
    auto_routed: bool
    reason: str
    # The most likely desks (triage aside), best first: the triage desk's suggestions.
    candidates: tuple[DeskScore, ...] = ()


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    uri: str


@dataclass(frozen=True)
class Decision:
    """Everything the pipeline decided about one inquiry, in the shape the API returns."""

    language: str
    language_confidence: float
    language_source: str
    english_text: str
    translated: bool
    translation_engine: str | None
    translation_engine_version: str | None
    translation_note: str | None
    intent: str
    confidence: float
    runner_up: str | None
    runner_up_confidence: float | None
    desk: str
    desk_confidence: float
    auto_routed: bool
    reason: str
    model_name: str
    model_version: str
    desk_candidates: tuple[DeskScore, ...] = ()

    @classmethod
    def assemble(
        cls,
        guess: LanguageGuess,
        translation: Translation,
        prediction: Prediction,
        routing: Routing,
        model: ModelRef,
    ) -> Decision:
        return cls(
            language=guess.language,
            language_confidence=round(guess.confidence, 4),
            language_source=guess.source,
            english_text=translation.english_text,
            translated=translation.translated,
            translation_engine=translation.engine,
            translation_engine_version=translation.engine_version,
            translation_note=translation.note,
            intent=prediction.intent,
            confidence=round(prediction.confidence, 4),
            runner_up=prediction.runner_up,
            runner_up_confidence=(
                None
                if prediction.runner_up_confidence is None
                else round(prediction.runner_up_confidence, 4)
            ),
            desk=routing.desk,
            desk_confidence=round(routing.desk_confidence, 4),
            auto_routed=routing.auto_routed,
            reason=routing.reason,
            model_name=model.name,
            model_version=model.version,
            desk_candidates=tuple(
                DeskScore(c.desk, round(c.confidence, 4)) for c in routing.candidates
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
