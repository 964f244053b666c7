"""``models shadow-report``: how @challenger would have routed live traffic, beside the
@champion that did. The truth, where there is one: the desk of the latest correction when a desk
corrected the inquiry; the desk it was resolved in, when it was resolved where the champion put
it. A model is right on an inquiry when it sent it, without a person, to that desk."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from ..store import InquiryStore, ShadowPair


@dataclass(frozen=True)
class ShadowFigures:
    champion: str
    challenger: str
    n: int
    same_desk: float  # both sent it to the same desk (triage included)
    same_intent: float
    judged: int  # inquiries with a truth: resolved in place, or corrected
    corrected: int
    champion_right: float
    challenger_right: float
    champion_triage: float
    challenger_triage: float


def _sent(decision: dict[str, object]) -> str:
    return str(decision.get("desk") or "")


def _truth(pair: ShadowPair) -> str | None:
    if pair.corrected_desk is not None:
        return pair.corrected_desk
    if pair.status == "resolved" and pair.desk == _sent(pair.decision):
        return pair.desk
    return None


def summarize(pairs: list[ShadowPair]) -> list[ShadowFigures]:
    """Figures per (champion version, challenger version) pair, most recent last."""
    groups: dict[tuple[str, str], list[ShadowPair]] = defaultdict(list)
    for pair in pairs:
        key = (str(pair.decision.get("model_version")), str(pair.shadow.get("model_version")))
        groups[key].append(pair)
    figures = []
    for (champion, challenger), group in groups.items():
        judged = [(p, truth) for p in group if (truth := _truth(p)) is not None]

        def right(decisions: list[tuple[dict[str, object], str]]) -> float:
            if not decisions:
                return 0.0
            return sum(
                bool(d.get("auto_routed")) and _sent(d) == truth for d, truth in decisions
            ) / len(decisions)

        def share(values: list[bool]) -> float:
            return sum(values) / len(values) if values else 0.0

        figures.append(
            ShadowFigures(
                champion=champion,
                challenger=challenger,
                n=len(group),
                same_desk=share([_sent(p.decision) == _sent(p.shadow) for p in group]),
                same_intent=share(
                    [p.decision.get("intent") == p.shadow.get("intent") for p in group]
                ),
                judged=len(judged),
                corrected=sum(p.corrected_desk is not None for p in group),
                champion_right=right([(p.decision, t) for p, t in judged]),
                challenger_right=right([(p.shadow, t) for p, t in judged]),
                champion_triage=share([not p.decision.get("auto_routed") for p in group]),
                challenger_triage=share([not p.shadow.get("auto_routed") for p in group]),
            )
        )
    return figures


def shadow_report(database_url: str, since: datetime | None = None) -> list[ShadowFigures]:
    store = InquiryStore(database_url)
    try:
        return summarize(store.shadow_pairs(since))
    finally:
        store.close()
