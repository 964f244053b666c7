"""Challenger against champion, on the same data: the held-out split of the challenger's
training sources (rebuilt from the seed it recorded) plus the held-out share of the corrections
desks made, less any text either model learned from (a model trained on all of its data once
its figures were taken learned its own held-out split). The rule that promotes is in
``Settings`` and is printed with every result."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..classifier import TextClassifier
from ..config import Settings
from ..datasets import (
    DatasetError,
    DatasetStore,
    load_clinc150_out_of_scope,
    load_source,
    split_out_of_scope,
)
from ..domain import InquiryText
from ..pipeline import assemble
from ..registry import ModelRegistry, RegistryError
from ..routing import DeskMap, DeskMapError
from .corrections import SOURCE as CORRECTIONS
from .corrections import load_corrections
from .sources import TrainingError, assemble_data, text_digest


class PromotionError(Exception):
    """There is nothing to compare, or the data cannot be rebuilt; the message says why."""


class NothingLeftToCompare(PromotionError):
    """Every held-out text was learned by one of the two versions."""


@dataclass(frozen=True)
class DeskFigures:
    n: int  # held-out texts whose right desk is this one
    accuracy: float  # of those, the share whose best desk is this one
    routed_share: float  # of those, the share routed without a person
    routed_precision: float  # of what the model routed to this desk, the share that belonged
    triage_rate: float  # of those, the share sent to triage


@dataclass(frozen=True)
class ModelFigures:
    version: str
    n: int
    accuracy: float
    desk_accuracy: float
    routed_share: float
    routed_precision: float
    triage_rate: float
    off_topic_to_triage: float | None
    per_desk: dict[str, DeskFigures] = field(default_factory=dict)

    def as_metrics(self, prefix: str) -> dict[str, float]:
        metrics = {
            f"{prefix}.accuracy": self.accuracy,
            f"{prefix}.desk_accuracy": self.desk_accuracy,
            f"{prefix}.routed_share": self.routed_share,
            f"{prefix}.routed_precision": self.routed_precision,
            f"{prefix}.triage_rate": self.triage_rate,
        }
        if self.off_topic_to_triage is not None:
            metrics[f"{prefix}.off_topic_to_triage"] = self.off_topic_to_triage
        return metrics


@dataclass(frozen=True)
class Comparison:
    name: str
    data: str
    n: int
    champion: ModelFigures
    challenger: ModelFigures
    promote: bool
    reasons: list[str]
    rule: str
    left_out: int = 0  # held-out texts left out: one of the two versions learned from them


def rule_text(settings: Settings) -> str:
    return (
        f"promote when the challenger's routed precision is at least "
        f"{settings.target_precision:.3f}, its desk accuracy is no more than "
        f"{settings.promotion_tolerance:.3f} below the champion's, and its routed share or its "
        "desk accuracy is higher"
    )


def decide(settings: Settings, old: ModelFigures, new: ModelFigures) -> tuple[bool, list[str]]:
    reasons = []
    precise = new.routed_precision >= settings.target_precision
    reasons.append(
        f"routed precision {new.routed_precision:.4f} "
        f"{'>=' if precise else '<'} {settings.target_precision:.3f}"
    )
    kept = new.desk_accuracy >= old.desk_accuracy - settings.promotion_tolerance
    reasons.append(
        f"desk accuracy {new.desk_accuracy:.4f} vs {old.desk_accuracy:.4f} "
        f"({'within' if kept else 'beyond'} the {settings.promotion_tolerance:.3f} tolerance)"
    )
    improved = [
        what
        for what, gained in (
            ("routed share", new.routed_share > old.routed_share),
            ("desk accuracy", new.desk_accuracy > old.desk_accuracy),
        )
        if gained
    ]
    better = bool(improved)
    reasons.append(
        f"routed share {new.routed_share:.4f} vs {old.routed_share:.4f}; "
        + (
            f"improves: {' and '.join(improved)}"
            if better
            else "neither it nor desk accuracy improves"
        )
    )
    return precise and kept and better, reasons


def _figures(
    settings: Settings,
    classifier: TextClassifier,
    desk_map: DeskMap,
    texts: Sequence[str],
    gold: Sequence[str],
    off_topic: Sequence[str],
) -> ModelFigures:
    """One model on the comparison data, read and routed as the service reads and routes."""
    pipeline = assemble(settings, classifier, desk_map)
    done = pipeline.read([InquiryText(text) for text in texts])
    routed = pipeline.route_read(done)
    triage = desk_map.triage_desk
    gold_desks = np.array([desk_map.desk_for(g) or triage for g in gold])
    best = np.array([desk_map.desk_for(p.intent) or triage for p, _ in routed])
    sent = np.array([r.desk for _, r in routed])
    auto = np.array([r.auto_routed for _, r in routed], dtype=bool)
    intents = np.array([p.intent for p, _ in routed])
    per_desk = {}
    for desk in sorted(set(gold_desks) | set(sent[auto])):
        mine = gold_desks == desk
        to_desk = auto & (sent == desk)
        per_desk[desk] = DeskFigures(
            n=int(mine.sum()),
            accuracy=float((best[mine] == desk).mean()) if mine.any() else 0.0,
            routed_share=float(auto[mine].mean()) if mine.any() else 0.0,
            routed_precision=float((gold_desks[to_desk] == desk).mean()) if to_desk.any() else 1.0,
            triage_rate=float((~auto[mine]).mean()) if mine.any() else 0.0,
        )
    off = None
    if off_topic:
        outside = pipeline.read([InquiryText(text) for text in off_topic])
        routed_off = pipeline.route_read(outside)
        off = float(np.mean([not r.auto_routed for _, r in routed_off]))
    return ModelFigures(
        version=classifier.ref.version,
        n=len(texts),
        accuracy=float((intents == np.array(gold)).mean()),
        desk_accuracy=float((best == gold_desks).mean()),
        routed_share=float(auto.mean()),
        routed_precision=float((sent[auto] == gold_desks[auto]).mean()) if auto.any() else 1.0,
        triage_rate=float((~auto).mean()),
        off_topic_to_triage=off,
        per_desk=per_desk,
    )


def _desks(settings: Settings) -> DeskMap | None:
    try:
        return DeskMap.from_yaml(settings.desks_path)
    except (DeskMapError, OSError):
        return None


def comparison_data(
    settings: Settings, params: dict[str, str], step: Callable[[str], None]
) -> tuple[list[str], list[str], list[str], str]:
    """The texts, gold intents and off-topic texts two models are compared on: the held-out
    split of the recorded sources (rebuilt with the recorded seed) and the held-out corrections."""
    sources = [s for s in (params.get("sources") or "").split(",") if s]
    if not sources:
        raise PromotionError("the challenger's run recorded no sources to compare on")
    seed = int(params.get("seed", "0"))
    store = DatasetStore(settings, log=step)
    desk_map = _desks(settings)
    loaded = []
    for source in sources:
        if source == CORRECTIONS:
            if desk_map is None:
                raise PromotionError("corrections are read through desks.yaml, which is missing")
            loaded.append(load_corrections(settings.resolved_database_url, desk_map).as_source())
            continue
        try:
            loaded.append(load_source(source, store))
        except DatasetError as error:
            raise PromotionError(f"cannot rebuild the comparison data: {error}") from None
    if desk_map is not None and not any(source.name == CORRECTIONS for source in loaded):
        held = load_corrections(settings.resolved_database_url, desk_map).as_source()
        if held.test is not None and len(held.test):
            loaded.append(held)
    try:
        assembled = assemble_data(
            [s for s in loaded if len(s.train) or (s.test is not None and len(s.test))], seed
        )
    except TrainingError as error:
        raise PromotionError(f"cannot rebuild the comparison data: {error}") from None
    test, own_off_topic = split_out_of_scope(assembled.test)
    described = assembled.described
    off_topic = own_off_topic
    if not off_topic and settings.background_out_of_scope == "clinc150":
        try:
            off_topic = load_clinc150_out_of_scope(store).test
        except DatasetError:
            off_topic = []
    return test["text"].tolist(), test["label"].tolist(), off_topic, described


def _unseen(
    texts: Sequence[str], learned: Sequence[tuple[str, set[str] | None]]
) -> tuple[list[int], list[str]]:
    """The positions of the texts no version learned from (``learned``: each version's name
    and the digests of its training texts, None when it did not record them), and what was left
    out, per version."""
    digests = [text_digest(text) for text in texts]
    keep = [i for i, d in enumerate(digests) if not any(seen and d in seen for _, seen in learned)]
    said = [
        f"{n:,} learned by {name}"
        for name, seen in learned
        if seen and (n := sum(d in seen for d in digests))
    ]
    return keep, said


def compare(
    settings: Settings,
    champion: str | None = None,
    challenger: str | None = None,
    step: Callable[[str], None] = lambda _message: None,
    *,
    challenger_model: TextClassifier | None = None,
    challenger_trained_on: set[str] | None = None,
) -> Comparison:
    """Two versions (default: @champion and @challenger) on the same data, per desk, and
    whether the rule would promote the second; logged to MLflow as a run of its own.

    Held-out texts either model learned from are left out, and the comparison says how many.
    ``challenger_model``: the challenger as it was before its refit on all of its data, in its
    place, with the digests of what it learned from (``challenger_trained_on``): it had not
    learned its own held-out split, so that split can judge it where the champion did not
    learn it either (new examples in a file)."""
    registry = ModelRegistry(settings)
    name = settings.model_name
    champion = champion or registry.champion(name)
    challenger = challenger or registry.challenger(name)
    if champion is None or challenger is None:
        raise PromotionError(
            f"{name} needs a @champion and a @challenger (or two versions named) to compare; "
            "train a new version first"
        )
    texts, gold, off_topic, described = comparison_data(
        settings, registry.run_params(name, challenger), step
    )
    try:
        learned = [
            (f"v{champion}", registry.trained_on(name, champion)),
            (
                f"v{challenger}",
                challenger_trained_on
                if challenger_model is not None
                else registry.trained_on(name, challenger),
            ),
        ]
    except RegistryError as error:
        raise PromotionError(str(error)) from None
    n_held = len(texts)
    keep, left_out = _unseen(texts, learned)
    texts, gold = [texts[i] for i in keep], [gold[i] for i in keep]
    off_keep, _ = _unseen(off_topic, learned)
    off_topic = [off_topic[i] for i in off_keep]
    if left_out:
        described += f" less {' and '.join(left_out)}"
        step(
            f"left out of the comparison: {' and '.join(left_out)} of the {n_held:,} held-out "
            f"texts (a version learned them in training); {len(texts):,} remain"
        )
    if not texts:
        raise NothingLeftToCompare(
            f"nothing left to compare on: of the {n_held:,} held-out texts, "
            f"{' and '.join(left_out) or 'none'} (a version trained on all of its data learned "
            "its held-out split). Corrections give new evidence (desks' "
            "held-out share is never learned from), as do new examples in the data; or "
            "judge by `inquiry-router evaluate --data FILE` and promote by hand "
            "(`inquiry-router models promote VERSION`)"
        )
    classifiers = []
    for version in (champion, challenger):
        try:
            if version == challenger and challenger_model is not None:
                classifiers.append(challenger_model)
            else:
                classifiers.append(registry.load(f"models:/{name}/{version}"))
        except RegistryError as error:
            raise PromotionError(str(error)) from None
    intents = {*gold, *classifiers[0].classes, *classifiers[1].classes}
    desk_map = _desks(settings)
    if desk_map is None or not desk_map.covers(intents):
        desk_map = DeskMap.one_per_intent(intents)  # judged per intent, as training does
    figures = []
    for classifier in classifiers:
        step(f"scoring version {classifier.ref.version} on {len(texts):,} texts ({described})")
        figures.append(_figures(settings, classifier, desk_map, texts, gold, off_topic))
    promote, reasons = decide(settings, figures[0], figures[1])
    comparison = Comparison(
        name,
        described,
        len(texts),
        figures[0],
        figures[1],
        promote,
        reasons,
        rule_text(settings),
        left_out=n_held - len(texts),
    )
    registry.log_comparison(
        name,
        champion,
        challenger,
        {**figures[0].as_metrics("champion"), **figures[1].as_metrics("challenger")},
        {
            "comparison.data": described,
            "comparison.rule": comparison.rule,
            "comparison.promote": str(promote),
            "comparison.reasons": "; ".join(reasons),
        },
        _per_desk_table(comparison),
    )
    return comparison


def _per_desk_table(comparison: Comparison) -> dict[str, Any]:
    rows = {}
    for label, figures in (
        ("champion", comparison.champion),
        ("challenger", comparison.challenger),
    ):
        for desk, desk_figures in figures.per_desk.items():
            rows[f"{label}.{desk}"] = desk_figures.__dict__
    return rows


def promote_if_better(
    settings: Settings,
    step: Callable[[str], None] = lambda _message: None,
    *,
    challenger_model: TextClassifier | None = None,
    challenger_trained_on: set[str] | None = None,
) -> Comparison:
    """Compare @challenger with @champion and promote it when the rule says so
    (``challenger_model``, ``challenger_trained_on``: as for ``compare``)."""
    comparison = compare(
        settings,
        step=step,
        challenger_model=challenger_model,
        challenger_trained_on=challenger_trained_on,
    )
    step(f"rule: {comparison.rule}")
    step(
        f"decision: {'promote' if comparison.promote else 'keep the champion'} "
        f"({'; '.join(comparison.reasons)})"
    )
    if comparison.promote:
        ModelRegistry(settings).set_champion(
            comparison.name,
            comparison.challenger.version,
            by=_who(),
            reason="; ".join(comparison.reasons),
        )
    return comparison


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
