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
# The precision a threshold is chosen by is the lower end of a Wilson interval of this many
# standard errors (one-sided 90 %). Measured on xSID (`bench translation --kind ensemble`,
# with the off-topic gate), English routed / its precision: z = 0: 97.7 % / 95.6 % (below the
# 97 % target); 0.84: 95.0 / 97.2; 1.28: 92.7 / 98.2, and every other language >= 97.5 %;
# 1.64: 90.7 / 98.5. On BANKING77-OOS (884 held-out points, labels corrected) z = 0 gave
# 96.7 % on the unseen validation questions, 1.28 98.4 % (85.9 % routed).
PRECISION_BOUND_Z = 1.28


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


# The in-scope shares an off-topic gate may let through, tried in turn (1.0: no gate).
PASS_RATES = (1.0, 0.995, 0.99, 0.98, 0.97, 0.95, 0.93, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5)


@dataclass(frozen=True)
class Gate:
    """An off-topic gate and the intent threshold chosen with it: a text is routed when its
    off-topic score is at most ``off_topic`` (None: no gate) and its desk confidence at least
    ``threshold``; ``pass_rate``: the share of in-scope text the gate lets through."""

    off_topic: float | None
    threshold: float
    pass_rate: float


def choose_gate(
    in_scope: RoutingScores,
    in_scope_gate: np.ndarray | None,
    outside: RoutingScores | None,
    outside_gate: np.ndarray | None,
    target_precision: float,
    z: float = 0.0,
) -> Gate:
    """The off-topic gate and intent threshold that route the most in-scope text while what is
    routed, off-topic messages included at their weight, stays ``target_precision`` right.
    Gates are tried at the in-scope pass rates of ``PASS_RATES``; of equal coverage, the
    stricter gate (it holds back more off-topic text). Without off-topic messages or scores,
    no gate: the threshold alone."""

    def threshold_for(keep_in: np.ndarray, keep_out: np.ndarray | None) -> float:
        parts = [_subset(in_scope, keep_in)]
        if outside is not None and keep_out is not None:
            parts.append(_subset(outside, keep_out))
        return choose_threshold(_concatenate(parts), target_precision, z)

    everything = np.ones(len(in_scope.confidence), dtype=bool)
    outside_all = None if outside is None else np.ones(len(outside.confidence), dtype=bool)
    if in_scope_gate is None or outside is None or outside_gate is None:
        return Gate(None, threshold_for(everything, outside_all), 1.0)
    best: tuple[float, Gate] | None = None
    for rate in PASS_RATES:
        gate = None if rate == 1.0 else float(np.quantile(in_scope_gate, rate))
        keep_in = everything if gate is None else in_scope_gate <= gate
        keep_out = outside_all if gate is None else outside_gate <= gate
        threshold = threshold_for(keep_in, keep_out)
        coverage = float(np.mean(keep_in & (in_scope.confidence >= threshold)))
        if best is None or coverage >= best[0]:
            best = (coverage, Gate(gate, threshold, rate))
    assert best is not None
    return best[1]


def _subset(scores: RoutingScores, keep: np.ndarray) -> RoutingScores:
    weight = None if scores.weight is None else scores.weight[keep]
    return RoutingScores(scores.confidence[keep], scores.correct[keep], weight)


def _concatenate(parts: Sequence[RoutingScores]) -> RoutingScores:
    if len(parts) == 1:
        return parts[0]
    return RoutingScores(
        np.concatenate([p.confidence for p in parts]),
        np.concatenate([p.correct for p in parts]),
        np.concatenate(
            [np.ones(len(p.confidence)) if p.weight is None else p.weight for p in parts]
        ),
    )


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


def expect(
    scores: RoutingScores, threshold: float, passing: np.ndarray | None = None
) -> Expectation:
    """Routing at ``threshold`` over in-scope ``scores`` (weights ignored: counts), of the
    texts ``passing`` the off-topic gate (None: all)."""
    routed = scores.confidence >= threshold
    if passing is not None:
        routed &= passing
    return Expectation(len(routed), int(routed.sum()), int((routed & scores.correct).sum()))


def _wilson(successes: int, trials: int) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0  # nothing to go on
    interval = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return float(interval.low), float(interval.high)
