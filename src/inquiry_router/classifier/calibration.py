"""The arithmetic of calibration: combining members, temperatures, the threshold that meets a
target precision, and the split calibration is fitted on. Plain functions over arrays, used by
the calibrated ensemble's ``fit`` and by the evaluation that reports on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.model_selection import train_test_split

DEFAULT_THRESHOLD = 0.55  # when there is no held-out data to choose one from
VALIDATION_FRACTION = 0.15
MIN_TO_VALIDATE = 4  # examples a label needs before any are held out for calibration


def geometric_mean(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """Members' class probabilities combined by geometric mean, renormalized."""
    logs = [np.log(np.clip(p, 1e-12, 1.0)) for p in probabilities]
    mean = np.exp(np.mean(logs, axis=0))
    combined: np.ndarray = mean / mean.sum(axis=1, keepdims=True)
    return combined


def scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    scaled: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return scaled


def negative_log_likelihood(probabilities: np.ndarray, gold_index: np.ndarray) -> float:
    picked = probabilities[np.arange(len(gold_index)), gold_index]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, gold_index: np.ndarray) -> float:
    """The temperature minimizing held-out negative log-likelihood."""
    result = minimize_scalar(
        lambda t: negative_log_likelihood(scale(probabilities, t), gold_index),
        bounds=(0.05, 5.0),
        method="bounded",
    )
    return float(result.x)


@dataclass(frozen=True)
class RoutingScores:
    """Per example: the probability of the group it would be routed to (desk, or intent
    without desks), and whether that group is the right one."""

    confidence: np.ndarray
    correct: np.ndarray
    weight: np.ndarray | None = None  # how much each example counts; None: equally


def routing_scores(
    probabilities: np.ndarray,
    classes: Sequence[str],
    gold: Sequence[str] | None,
    desk_of: Mapping[str, str] | None,
) -> RoutingScores:
    """A group's probability is the sum of its intents' (``desk_of``: intent → desk; None, or
    a map that misses an intent: each intent is its own group). ``gold=None`` scores
    out-of-scope messages: whatever they are routed to is wrong."""
    classes = list(classes)
    if desk_of is None or not all(c in desk_of for c in classes):
        desk_of = {c: c for c in classes}
    groups = sorted(set(desk_of[c] for c in classes))
    membership = np.zeros((len(classes), len(groups)))
    for i, label in enumerate(classes):
        membership[i, groups.index(desk_of[label])] = 1.0
    group_probabilities = probabilities @ membership
    confidence = group_probabilities.max(1)
    routed = np.asarray(groups, dtype=object)[group_probabilities.argmax(1)]
    if gold is None:
        return RoutingScores(confidence, np.zeros(len(confidence), dtype=bool))
    right = np.array([r == desk_of.get(g, g) for r, g in zip(routed, gold, strict=True)])
    return RoutingScores(confidence, right)


def choose_threshold(scores: RoutingScores, target_precision: float) -> float:
    """The lowest threshold at which the auto-routed share is at least ``target_precision``
    right: the most automation the target allows."""
    order = np.argsort(-scores.confidence)
    confidence, correct = scores.confidence[order], scores.correct[order]
    weight = np.ones(len(order)) if scores.weight is None else scores.weight[order]
    precision = np.cumsum(weight * correct) / np.cumsum(weight)
    meeting = np.nonzero(precision >= target_precision)[0]
    if len(meeting) == 0:
        return 1.0
    return float(confidence[meeting[-1]])


def validation_split(
    labels: Sequence[str], seed: int, fraction: float = VALIDATION_FRACTION
) -> tuple[np.ndarray, np.ndarray] | None:
    """Row indices to fit on and to calibrate on: ``fraction`` of the rows, stratified. A label
    with fewer than ``MIN_TO_VALIDATE`` examples keeps them all for fitting rather than stop
    the others being calibrated (xSID has intents with 1 and 2 examples among 240). None when
    fewer than two labels could be held out, or too little would be left to learn from."""
    values = np.asarray(labels, dtype=object)
    names, counts = np.unique(values.astype(str), return_counts=True)
    common_labels = set(names[counts >= MIN_TO_VALIDATE])
    common = np.array([str(label) in common_labels for label in values], dtype=bool)
    pool = np.flatnonzero(common)
    n_labels = len(common_labels)
    # A stratified split needs a validation row per label and rows left to learn from.
    size = max(round(len(pool) * fraction), n_labels)
    if n_labels < 2 or len(pool) - size < n_labels:
        return None
    fit, validation = train_test_split(
        pool, test_size=size, random_state=seed, stratify=values[pool].astype(str)
    )
    # In the order the split made (as earlier versions trained), the rare labels last.
    return np.concatenate([fit, np.flatnonzero(~common)]), np.asarray(validation)
