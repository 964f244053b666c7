"""The route stage: a prediction becomes a desk, or the human triage desk when unsure.

The gate is on the desk's probability (the sum over the intents it handles), not on the single
intent's: most confusions are between sibling intents of one desk, and those still reach the right
desk. Each routing says why, with the numbers behind it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .domain import DeskScore, Prediction, Reading, Routing

_DESK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DESK_KEYS = {"description", "intents", "threshold"}


PER_INTENT = "one desk per intent"


class DeskMapError(ValueError):
    """desks.yaml is invalid; the message names every bad entry."""


@dataclass(frozen=True)
class Desk:
    name: str
    description: str = ""
    intents: tuple[str, ...] = ()
    threshold: float | None = None


@dataclass(frozen=True)
class DeskMap:
    desks: dict[str, Desk]
    triage_desk: str
    source: str = "<memory>"
    _desk_of: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for desk in self.desks.values():
            for intent in desk.intents:
                self._desk_of[intent] = desk.name

    @classmethod
    def from_yaml(cls, path: Path) -> DeskMap:
        """The desks file, read and checked once per process (again only if it changes)."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise DeskMapError(f"{path}: no such file") from None
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        with _loaded_lock:
            if key not in _loaded:
                try:
                    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
                except yaml.YAMLError as error:
                    raise DeskMapError(f"{path}: not valid YAML: {error}") from None
                _loaded[key] = cls.from_dict(raw, source=str(path))
            return _loaded[key]

    @classmethod
    def one_per_intent(cls, intents: Iterable[str], triage_desk: str = "triage") -> DeskMap:
        """Every intent its own desk: how a model whose intents no desks file covers is
        evaluated (routing quality is then judged per intent)."""
        desks = {triage_desk: Desk(triage_desk, "the unsure")}
        desks.update({i: Desk(i, intents=(i,)) for i in intents if i != triage_desk})
        return cls(desks=desks, triage_desk=triage_desk, source=PER_INTENT)

    @property
    def is_per_intent(self) -> bool:
        return self.source == PER_INTENT

    def covers(self, intents: Iterable[str]) -> bool:
        return set(intents) <= self._desk_of.keys()

    @property
    def desk_of(self) -> dict[str, str]:
        """Intent → desk, for every intent a desk handles."""
        return dict(self._desk_of)

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<memory>") -> DeskMap:
        errors: list[str] = []
        if not isinstance(raw, dict):
            raise DeskMapError(f"{source}: expected a mapping with 'desks' and 'triage_desk'")
        unknown_top = set(raw) - {"desks", "triage_desk"}
        if unknown_top:
            errors.append(f"unknown top-level key(s): {', '.join(sorted(map(str, unknown_top)))}")
        triage = raw.get("triage_desk", "triage")
        raw_desks = raw.get("desks")
        if not isinstance(raw_desks, dict) or not raw_desks:
            raise DeskMapError(f"{source}: 'desks' must be a non-empty mapping of desk name → desk")

        desks: dict[str, Desk] = {}
        owner: dict[str, str] = {}
        for name, body in raw_desks.items():
            name = str(name)
            if not _DESK_NAME.match(name):
                errors.append(
                    f"desk {name!r}: names use lowercase letters, digits, '-' and '_' only"
                )
            body = body or {}
            if not isinstance(body, dict):
                errors.append(f"desk {name!r}: expected a mapping, got {type(body).__name__}")
                continue
            unknown = set(body) - _DESK_KEYS
            if unknown:
                errors.append(
                    f"desk {name!r}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                    f"(allowed: {', '.join(sorted(_DESK_KEYS))})"
                )
            intents = body.get("intents") or []
            if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
                errors.append(f"desk {name!r}: 'intents' must be a list of intent names")
                intents = []
            for intent in intents:
                if intent in owner:
                    errors.append(
                        f"intent {intent!r} is mapped to both {owner[intent]!r} and {name!r}"
                    )
                owner[intent] = name
            threshold = body.get("threshold")
            if threshold is not None and (
                not isinstance(threshold, int | float) or not 0.0 <= float(threshold) <= 1.0
            ):
                errors.append(f"desk {name!r}: threshold {threshold!r} is not between 0 and 1")
                threshold = None
            desks[name] = Desk(
                name=name,
                description=str(body.get("description", "")),
                intents=tuple(intents),
                threshold=None if threshold is None else float(threshold),
            )

        if triage not in desks:
            errors.append(f"triage_desk {triage!r} is not defined (defined: {', '.join(desks)})")
        elif desks[triage].intents:
            errors.append(f"triage desk {triage!r} must not take intents; it receives the unsure")
        if errors:
            raise DeskMapError(f"{source}: " + "; ".join(errors))
        return cls(desks=desks, triage_desk=str(triage), source=source)

    @property
    def names(self) -> list[str]:
        return list(self.desks)

    def desk_for(self, intent: str) -> str | None:
        return self._desk_of.get(intent)

    def check_covers(self, intents: Iterable[str]) -> None:
        """Every intent a model can predict must have a desk; say which do not."""
        missing = sorted(set(intents) - self._desk_of.keys())
        if missing:
            shown = ", ".join(missing[:10]) + (
                f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            )
            raise DeskMapError(
                f"{self.source}: the model predicts intent(s) no desk handles: {shown}. "
                "Add each to one desk's 'intents'."
            )


_loaded: dict[tuple[str, int, int], DeskMap] = {}
_loaded_lock = threading.Lock()


class Router:
    """Route stage: prediction → desk; below the threshold → the triage desk."""

    def __init__(
        self,
        desk_map: DeskMap,
        threshold: float,
        foreign_threshold: float | None = None,
        off_topic_threshold: float | None = None,
        foreign_off_topic_threshold: float | None = None,
    ) -> None:
        self.desk_map = desk_map
        self.threshold = threshold
        # For foreign text, which the model read without the members that know only its training
        # languages (English, usually): chosen on translated validation, never below the
        # native one. None: the same.
        self.foreign_threshold = threshold if foreign_threshold is None else foreign_threshold
        # Above it, a text is unlike every intent: triage, however sure the classifier is of
        # the intent it is most like. None: no gate.
        self.off_topic_threshold = off_topic_threshold
        self.foreign_off_topic_threshold = (
            off_topic_threshold
            if foreign_off_topic_threshold is None
            else foreign_off_topic_threshold
        )

    def threshold_for(self, desk: str, foreign: bool = False) -> float:
        """A desk's own threshold (desks.yaml) when it sets one, else the model's: for text not
        written in a language the model was trained on, or in an undetermined one, the
        foreign-text one."""
        override = self.desk_map.desks[desk].threshold if desk in self.desk_map.desks else None
        if override is not None:
            return override
        return self.foreign_threshold if foreign else self.threshold

    def route(
        self,
        prediction: Prediction,
        reading: Reading = Reading.NATIVE,
        off_topic: float | None = None,
    ) -> tuple[Prediction, Routing]:
        """The routing, and the prediction restated so its intent belongs to the chosen desk.
        Text not read as native (foreign, or in an undetermined language) is held to the
        foreign-text thresholds. ``off_topic``: the text's off-topic score, when the model
        gives one."""
        foreign = reading is not Reading.NATIVE
        desk_probability: dict[str, float] = {}
        for intent, probability in prediction.probabilities.items():
            desk = self.desk_map.desk_for(intent) or self.desk_map.triage_desk
            desk_probability[desk] = desk_probability.get(desk, 0.0) + probability
        if not desk_probability:
            desk_probability = {
                self.desk_map.desk_for(prediction.intent) or self.desk_map.triage_desk: (
                    prediction.confidence
                )
            }
        best_desk = max(desk_probability, key=lambda desk: desk_probability[desk])
        desk_confidence = desk_probability[best_desk]
        prediction = self._best_intent_in(best_desk, prediction)
        ranked = sorted(desk_probability.items(), key=lambda item: -item[1])
        candidates = tuple(
            DeskScore(desk, p) for desk, p in ranked if desk != self.desk_map.triage_desk
        )[:3]

        if best_desk == self.desk_map.triage_desk:
            return prediction, Routing(
                desk=best_desk,
                desk_confidence=desk_confidence,
                auto_routed=False,
                reason=f"intent {prediction.intent!r} has no desk in {self.desk_map.source}",
                candidates=candidates,
            )
        detail = f"best desk {best_desk}, intent {prediction.intent} {prediction.confidence:.2f}"
        gate = self.foreign_off_topic_threshold if foreign else self.off_topic_threshold

        def to_triage(reason: str) -> tuple[Prediction, Routing]:
            triage = self.desk_map.triage_desk
            return prediction, Routing(triage, desk_confidence, False, reason, candidates)

        if off_topic is not None and gate is not None and off_topic > gate:
            return to_triage(
                f"looks off-topic: unlike the examples of every intent (off-topic score "
                f"{off_topic:.3f} > {gate:.3f}; {detail})"
            )
        threshold = self.threshold_for(best_desk, foreign)
        which = (
            "foreign-text threshold"
            if foreign and threshold == self.foreign_threshold != self.threshold
            else "threshold"
        )
        if desk_confidence < threshold:
            return to_triage(
                f"desk confidence {desk_confidence:.2f} < triage {which} {threshold:.2f} ({detail})"
            )
        return prediction, Routing(
            desk=best_desk,
            desk_confidence=desk_confidence,
            auto_routed=True,
            reason=f"desk confidence {desk_confidence:.2f} >= {which} {threshold:.2f} ({detail})",
            candidates=candidates,
        )

    def route_batch(
        self,
        predictions: Sequence[Prediction],
        readings: Sequence[Reading],
        off_topic: Sequence[float] | None = None,
    ) -> list[tuple[Prediction, Routing]]:
        scores = [None] * len(predictions) if off_topic is None else [float(s) for s in off_topic]
        return [self.route(p, r, s) for p, r, s in zip(predictions, readings, scores, strict=True)]

    def _best_intent_in(self, desk: str, prediction: Prediction) -> Prediction:
        in_desk = [
            (intent, p)
            for intent, p in prediction.probabilities.items()
            if (self.desk_map.desk_for(intent) or self.desk_map.triage_desk) == desk
        ]
        if not in_desk:
            return prediction
        intent, confidence = max(in_desk, key=lambda item: item[1])
        if intent == prediction.intent:
            return prediction
        others = sorted(
            ((i, p) for i, p in prediction.probabilities.items() if i != intent),
            key=lambda item: -item[1],
        )
        runner_up, runner_up_p = others[0] if others else (None, None)
        return Prediction(intent, confidence, runner_up, runner_up_p, prediction.probabilities)
