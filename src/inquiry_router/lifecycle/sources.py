"""Training data from its sources: training and evaluation frames, the same for a training
run and for a later comparison that rebuilds them from the run's recorded sources and seed."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from ..datasets import LabeledData
from .corrections import SOURCE as CORRECTIONS

HOLDOUT_FRACTION = 0.2


class TrainingError(Exception):
    """The request cannot be trained as given; the message says why."""


@dataclass(frozen=True)
class Assembled:
    """What a training learns from (``train``) and is judged on (``test``); ``carved``: the
    part of ``test`` held out of a source's own training data (not an official test split nor
    the corrections' held-out share), which the final model may learn from once its figures are
    taken."""

    train: pd.DataFrame
    test: pd.DataFrame
    described: str
    carved: pd.DataFrame


def assemble_data(sources: Sequence[LabeledData], seed: int) -> Assembled:
    """Training and evaluation frames: official test splits where a source has one, a stratified
    hold-out of its training data where it does not."""
    train_parts, test_parts, described, carved = [], [], [], []
    for source in sources:
        if source.test is not None:
            train_parts.append(source.train)
            test_parts.append(source.test)
            split = "held-out-1-in-5-by-inquiry" if source.name == CORRECTIONS else "official-test"
            described.append(f"{source.name}:{split}")
            continue
        counts = source.train["label"].value_counts()
        too_few = sorted(counts[counts < 2].index.astype(str))
        if too_few:
            raise TrainingError(
                f"{source.name}: every label needs at least 2 examples to hold one out for "
                f"evaluation; too few for: {', '.join(too_few[:10])}"
            )
        # As scikit-learn counts a fraction, but one example of each label at least: a
        # stratified split cannot hold out fewer.
        held = max(math.ceil(HOLDOUT_FRACTION * len(source.train)), len(counts))
        train, test = train_test_split(
            source.train,
            test_size=held,
            random_state=seed,
            stratify=source.train["label"],
        )
        train_parts.append(train)
        test_parts.append(test)
        carved.append(test)
        described.append(f"{source.name}:holdout-{HOLDOUT_FRACTION}-seed-{seed}")
    train_frame = pd.concat(train_parts, ignore_index=True)
    test_frame = pd.concat(test_parts, ignore_index=True)
    if train_frame["label"].nunique() < 2:
        raise TrainingError("training data must contain at least two different labels")
    carved_frame = pd.concat(carved, ignore_index=True) if carved else test_frame.iloc[0:0].copy()
    return Assembled(train_frame, test_frame, ",".join(described), carved_frame)


def text_digests(texts: Iterable[str]) -> set[str]:
    """Short digests (BLAKE2b, 64 bits) of texts, to tell later which texts a model learned
    from without keeping the texts themselves (they may hold personal data)."""
    return {text_digest(text) for text in texts}


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.strip().encode(), digest_size=8).hexdigest()
