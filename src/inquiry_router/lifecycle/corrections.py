"""Corrections as training data: what desks said the model should have decided.

A correction's label is the intent the desk gave; one that named only a desk gives that desk's
intent when the desk has exactly one, and is left out otherwise (counted). The same text
corrected twice keeps its latest label. One correction in five, chosen by its inquiry's id, is
never trained on: it is held out so that two models can be compared on corrections neither saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from ..datasets import LabeledData
from ..routing import DeskMap
from ..store import Correction, InquiryStore

SOURCE = "corrections"
HOLDOUT_EVERY = 5


def held_out(inquiry_id: str) -> bool:
    """Whether an inquiry's corrections are kept out of training (one in HOLDOUT_EVERY)."""
    return int(hashlib.sha256(inquiry_id.encode()).hexdigest()[:8], 16) % HOLDOUT_EVERY == 0


def training_text(correction: Correction) -> str:
    """What the classifier read: the English text when there was one, else subject and message."""
    if correction.english_text:
        return correction.english_text
    if correction.subject and correction.subject.strip():
        return f"{correction.subject.strip()}\n{correction.message}"
    return correction.message


@dataclass
class CorrectionData:
    """Corrections turned into labelled rows, and what was left out and why."""

    rows: pd.DataFrame  # text, label, desk, held_out, id, created_at
    n: int  # corrections read
    without_intent: int = 0  # named a desk with several intents and no intent
    conflicts: int = 0  # earlier corrections of the same text to another label, dropped
    until: datetime | None = None
    unmapped: dict[str, int] = field(default_factory=dict)  # labels no desk handles: count

    @property
    def train(self) -> pd.DataFrame:
        return self.rows.loc[~self.rows["held_out"], ["text", "label"]].reset_index(drop=True)

    @property
    def test(self) -> pd.DataFrame:
        return self.rows.loc[self.rows["held_out"], ["text", "label"]].reset_index(drop=True)

    def summary(self) -> str:
        parts = [
            f"{self.n} corrections: {len(self.train)} to train on, {len(self.test)} held out "
            "to compare models"
        ]
        if self.conflicts:
            parts.append(f"{self.conflicts} older conflicting corrections of the same text dropped")
        if self.without_intent:
            parts.append(f"{self.without_intent} without an intent (their desk has several)")
        return "; ".join(parts)

    def as_source(self) -> LabeledData:
        last = int(self.rows["id"].max()) if len(self.rows) else 0
        return LabeledData(
            name=SOURCE,
            train=self.train,
            test=self.test,
            lineage={
                "corrections.n": str(self.n),
                "corrections.used": str(len(self.train)),
                "corrections.held_out": str(len(self.test)),
                "corrections.conflicts_dropped": str(self.conflicts),
                "corrections.without_intent": str(self.without_intent),
                "corrections.last_id": str(last),
                "corrections.until": self.until.isoformat() if self.until else "none",
            },
        )


def label_of(correction: Correction, desk_map: DeskMap | None) -> str | None:
    """The intent a correction teaches: the desk's, or its desk's only intent; else None."""
    if correction.corrected_intent is not None:
        return correction.corrected_intent
    desk = desk_map.desks.get(correction.corrected_desk) if desk_map is not None else None
    return desk.intents[0] if desk is not None and len(desk.intents) == 1 else None


def from_corrections(corrections: Sequence[Correction], desk_map: DeskMap) -> CorrectionData:
    rows = []
    without_intent = 0
    for correction in corrections:
        label = label_of(correction, desk_map)
        if label is None:
            without_intent += 1
            continue
        rows.append(
            {
                "id": correction.id,
                "created_at": correction.created_at,
                "text": training_text(correction),
                "label": label,
                "desk": correction.corrected_desk,
                "held_out": held_out(correction.inquiry_id),
            }
        )
    frame = pd.DataFrame(
        rows, columns=["id", "created_at", "text", "label", "desk", "held_out"]
    ).sort_values("id")
    latest = frame.drop_duplicates("text", keep="last")
    dropped = frame.loc[~frame.index.isin(latest.index)]
    kept_label = dict(zip(latest["text"], latest["label"], strict=True))
    conflicts = int(
        sum(
            label != kept_label[text]
            for text, label in zip(dropped["text"], dropped["label"], strict=True)
        )
    )
    handled = set(desk_map.desk_of)
    unmapped = latest.loc[~latest["label"].isin(handled), "label"].value_counts()
    return CorrectionData(
        rows=latest.reset_index(drop=True),
        n=len(corrections),
        without_intent=without_intent,
        conflicts=conflicts,
        until=max((c.created_at for c in corrections), default=None),
        unmapped={str(label): int(count) for label, count in unmapped.items()},
    )


def load_corrections(
    database_url: str, desk_map: DeskMap, since: datetime | None = None
) -> CorrectionData:
    store = InquiryStore(database_url)
    try:
        return from_corrections(store.corrections(limit=None, since=since), desk_map)
    finally:
        store.close()
