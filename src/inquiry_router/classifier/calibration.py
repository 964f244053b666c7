"""The arithmetic of calibration: combining members, temperatures, the threshold that meets a
target precision, and the split calibration is fitted on. Plain functions over arrays, used by
the calibrated ensemble's ``fit`` and by the evaluation that reports on it."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.stats import binomtest
from sklearn.model_selection import StratifiedKFold, train_test_split

DEFAULT_THRESHOLD = 0.55  # when there is no held-out data to choose one from
VALIDATION_FRACTION = 0.15
MIN_TO_VALIDATE = 4  # examples a label needs before any are held out for calibration
FOLDS = 5
# Below this many examples calibration is fitted on out-of-fold predictions over all of them:
# a 15 % split of fewer leaves under 150 points to choose a 97 % threshold on (xSID, 240
# sentences: 36, and foreign text routed 30 % instead of 45 %). Above it, five folds cost five
# fits of every member (Banking77, 16 a label, `ensemble`: 53 s against 12 s) for a gain the
# intervals show to be small.
CROSS_VALIDATE_BELOW = 1_000
# The threshold's precision is the lower end of a Wilson interval of this many standard errors.
PRECISION_BOUND_Z = 0.0


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


def choose_threshold(scores: RoutingScores, target_precision: float, z: float = 0.0) -> float:
    """The lowest threshold at which the auto-routed share is at least ``target_precision``
    right: the most automation the target allows. With ``z`` > 0, right by the lower bound of
    a Wilson interval of ``z`` standard errors (0.84: one-sided 80 %), so a threshold resting on
    few points does not take a lucky run of them for precision."""
    order = np.argsort(-scores.confidence)
    confidence, correct = scores.confidence[order], scores.correct[order]
    weight = np.ones(len(order)) if scores.weight is None else scores.weight[order]
    routed = np.cumsum(weight)
    precision = np.cumsum(weight * correct) / routed
    if z > 0:
        precision = wilson_lower_bound(precision, routed, z)
    meeting = np.nonzero(precision >= target_precision)[0]
    if len(meeting) == 0:
        return 1.0
    return float(confidence[meeting[-1]])


def wilson_lower_bound(share: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """The lower end of the Wilson score interval of ``share`` of ``n`` trials."""
    z2 = z * z
    centre = share + z2 / (2 * n)
    spread = z * np.sqrt(share * (1 - share) / n + z2 / (4 * n * n))
    bound: np.ndarray = (centre - spread) / (1 + z2 / n)
    return bound


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


def calibration_folds(
    labels: Sequence[str], seed: int, cv: int | str, fraction: float = VALIDATION_FRACTION
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Row indices to fit on and to calibrate on, once per fold. ``cv``: a number of folds
    (every row calibrated on once, by members that did not learn from it, as
    ``cross_val_predict`` does); "split": one stratified split of ``fraction``; "auto": folds
    below ``CROSS_VALIDATE_BELOW`` examples, else one split. A label with fewer than
    ``MIN_TO_VALIDATE`` examples is always fitted on, never held out. Empty when too little
    can be held out."""
    if cv == "auto":
        cv = FOLDS if len(labels) < CROSS_VALIDATE_BELOW else "split"
    if cv == "split":
        split = validation_split(labels, seed, fraction)
        return [] if split is None else [split]
    if not isinstance(cv, int) or cv < 2:
        raise ValueError(f"cv must be 'auto', 'split' or a number of folds >= 2, not {cv!r}")
    values = np.asarray([str(label) for label in labels], dtype=object)
    names, counts = np.unique(values.astype(str), return_counts=True)
    common_labels = set(names[counts >= MIN_TO_VALIDATE])
    common = np.array([label in common_labels for label in values], dtype=bool)
    pool, rare = np.flatnonzero(common), np.flatnonzero(~common)
    if len(common_labels) < 2:
        return []
    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # A label with fewer examples than folds is held out in some folds only: intended.
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        return [
            (np.concatenate([pool[fit], rare]), pool[held])
            for fit, held in folds.split(pool, values[pool])
        ]


@dataclass(frozen=True)
class Expectation:
    """What calibration expects of routing, on examples the fitted members did not learn
    from: the share routed automatically and the share of those that reach the right desk,
    each with a 95 % Wilson interval."""

    n: int
    routed: int
    right: int

    @property
    def routed_share(self) -> float:
        return self.routed / self.n if self.n else 0.0

    @property
    def precision(self) -> float | None:
        return self.right / self.routed if self.routed else None

    @property
    def routed_interval(self) -> tuple[float, float]:
        return _wilson(self.routed, self.n)

    @property
    def precision_interval(self) -> tuple[float, float] | None:
        return _wilson(self.right, self.routed) if self.routed else None

    def describe(self) -> str:
        low, high = self.routed_interval
        routed = f"{self.routed_share:.0%} routed (95 % interval {low:.0%} to {high:.0%})"
        if self.precision is None or self.precision_interval is None:
            return f"{routed} of {self.n:,}"
        p_low, p_high = self.precision_interval
        return (
            f"{routed}, {self.precision:.1%} of them right ({p_low:.1%} to {p_high:.1%}), "
            f"on {self.n:,} examples"
        )

    def as_metrics(self, prefix: str) -> dict[str, float]:
        low, high = self.routed_interval
        metrics = {
            f"{prefix}.n": float(self.n),
            f"{prefix}.routed_share": self.routed_share,
            f"{prefix}.routed_share_low": low,
            f"{prefix}.routed_share_high": high,
        }
        if self.precision is not None and self.precision_interval is not None:
            p_low, p_high = self.precision_interval
            metrics |= {
                f"{prefix}.precision": self.precision,
                f"{prefix}.precision_low": p_low,
                f"{prefix}.precision_high": p_high,
            }
        return metrics


def expect(scores: RoutingScores, threshold: float) -> Expectation:
    """Routing at ``threshold`` over in-scope ``scores`` (weights ignored: counts)."""
    routed = scores.confidence >= threshold
    return Expectation(len(routed), int(routed.sum()), int((routed & scores.correct).sum()))


def _wilson(successes: int, trials: int) -> tuple[float, float]:
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)
