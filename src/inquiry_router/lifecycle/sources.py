"""Training data from its sources: training and evaluation frames, the same for a training
run and for a later comparison that rebuilds them from the run's recorded sources and seed."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sklearn.model_selection import train_test_split

from ..datasets import LabeledData
from .corrections import SOURCE as CORRECTIONS

HOLDOUT_FRACTION = 0.2


class TrainingError(Exception):
    """The request cannot be trained as given; the message says why."""


def assemble_data(
    sources: Sequence[LabeledData], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Training and evaluation frames: official test splits where a source has one, a stratified
    hold-out of its training data where it does not."""
    train_parts, test_parts, described = [], [], []
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
        train, test = train_test_split(
            source.train,
            test_size=HOLDOUT_FRACTION,
            random_state=seed,
            stratify=source.train["label"],
        )
        train_parts.append(train)
        test_parts.append(test)
        described.append(f"{source.name}:holdout-{HOLDOUT_FRACTION}-seed-{seed}")
    train_frame = pd.concat(train_parts, ignore_index=True)
    test_frame = pd.concat(test_parts, ignore_index=True)
    if train_frame["label"].nunique() < 2:
        raise TrainingError("training data must contain at least two different labels")
    return train_frame, test_frame, ",".join(described)
