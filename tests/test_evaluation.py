from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inquiry_router.classifier import predictions_from_proba
from inquiry_router.classifier.calibration import (
    CROSS_VALIDATE_BELOW,
    RoutingScores,
    calibration_folds,
    choose_gate,
    choose_threshold,
    expect,
    fit_temperature,
    routing_scores,
    scale,
    validation_split,
)
from inquiry_router.domain import Reading
from inquiry_router.lifecycle.evaluation import (
    coverage_precision,
    evaluate,
    expected_calibration_error,
    record_out_of_scope,
    write_report,
)
from inquiry_router.routing import DeskMap, Router

DESKS = DeskMap.from_dict(
    {"desks": {"triage": {}, "cards": {"intents": ["a", "b"]}, "cash": {"intents": ["c"]}}}
)


def test_threshold_is_the_lowest_that_meets_the_target_precision() -> None:
    scores = RoutingScores(
        confidence=np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5]),
        correct=np.array([True, True, True, False, True, False]),
    )
    assert choose_threshold(scores, 1.0) == 0.8
    assert choose_threshold(scores, 0.8) == 0.6
    coverage, precision = coverage_precision(
        scores.confidence, scores.correct, scores.confidence >= 0.6
    )
    assert coverage == pytest.approx(5 / 6)
    assert precision == pytest.approx(0.8)
    assert choose_threshold(RoutingScores(np.array([0.9]), np.array([False])), 0.97) == 1.0


def test_weighted_examples_count_as_their_share() -> None:
    # Two wrong off-topic messages above everything else: counted once each they cap
    # precision; weighted to a tenth of the four in-scope ones they barely matter.
    confidence = np.array([0.99, 0.98, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([False, False, True, True, True, True])
    assert choose_threshold(RoutingScores(confidence, correct), 0.9) == 1.0
    weighted = RoutingScores(confidence, correct, np.array([0.05, 0.05, 1, 1, 1, 1]))
    assert choose_threshold(weighted, 0.95) == 0.6  # 4 / (4 + 0.1) = 0.976
    assert choose_threshold(weighted, 0.98) == 1.0  # no threshold meets it: route nothing


def test_a_threshold_resting_on_few_points_needs_their_lower_bound_to_meet_the_target() -> None:
    # Ten right answers in a row look like 100 % precision; ten points cannot show 97 %.
    confidence = np.linspace(0.99, 0.9, 10)
    few = RoutingScores(confidence, np.ones(10, dtype=bool))
    assert choose_threshold(few, 0.97) == pytest.approx(0.9)
    assert choose_threshold(few, 0.97, z=0.84) == 1.0
    # Three hundred of them, one wrong, do show it.
    many = RoutingScores(np.linspace(0.99, 0.6, 300), np.arange(300) != 5)
    assert choose_threshold(many, 0.97, z=0.84) == pytest.approx(0.6)


def test_an_off_topic_gate_is_chosen_when_it_lets_the_threshold_fall() -> None:
    rng = np.random.default_rng(0)
    # 400 in-scope texts, 5 % wrong, and off-topic ones the classifier is just as sure of but
    # whose off-topic score is high: one threshold could only hold them back by holding
    # back everything.
    inside = RoutingScores(rng.uniform(0.5, 1.0, 400), rng.uniform(size=400) > 0.05)
    inside_gate = rng.normal(0.0, 1.0, 400)
    outside = RoutingScores(
        rng.uniform(0.5, 1.0, 100), np.zeros(100, dtype=bool), np.full(100, 0.4)
    )
    outside_gate = rng.normal(3.0, 1.0, 100)
    alone = choose_gate(inside, None, outside, None, 0.9)
    gated = choose_gate(inside, inside_gate, outside, outside_gate, 0.9)
    assert alone.off_topic is None and alone.pass_rate == 1.0
    assert gated.off_topic is not None and gated.pass_rate < 1.0
    assert gated.threshold < alone.threshold

    def routed(gate: float | None, threshold: float) -> float:
        passing = np.ones(400, dtype=bool) if gate is None else inside_gate <= gate
        return float(np.mean(passing & (inside.confidence >= threshold)))

    assert routed(gated.off_topic, gated.threshold) > routed(None, alone.threshold) + 0.2
    # What it routes, off-topic texts counted at their weight, still meets the target; most
    # off-topic texts are held back by the gate or the threshold.
    leaked = (outside_gate <= gated.off_topic) & (outside.confidence >= gated.threshold)
    passing = (inside_gate <= gated.off_topic) & (inside.confidence >= gated.threshold)
    right = inside.correct[passing].sum()
    assert right / (passing.sum() + 0.4 * leaked.sum()) >= 0.9
    assert leaked.mean() < 0.5


def test_small_data_is_calibrated_on_every_example_by_folds_that_did_not_learn_it() -> None:
    labels = ["weather"] * 120 + ["alarm"] * 117 + ["snooze"] * 2 + ["modify"]
    folds = calibration_folds(labels, seed=0, cv="auto")
    assert len(folds) == 5
    held = [i for _, rows in folds for i in rows]
    # Every common example is calibrated on exactly once; the rare ones are always learned.
    assert sorted(held) == list(range(237))
    for fit, rows in folds:
        assert not set(fit) & set(rows)
        assert {"snooze", "modify"} <= {labels[i] for i in fit}
    # Above the size where one split leaves enough points, one split.
    large = ["a", "b"] * (CROSS_VALIDATE_BELOW // 2)
    (split,) = calibration_folds(large, seed=0, cv="auto")
    assert len(split[1]) == round(len(large) * 0.15)
    with pytest.raises(ValueError, match="number of folds"):
        calibration_folds(labels, seed=0, cv=1)


def test_the_expected_routing_comes_with_intervals_around_it() -> None:
    scores = RoutingScores(np.linspace(0.99, 0.5, 200), np.arange(200) % 25 != 0)
    expected = expect(scores, 0.7)
    assert expected.n == 200 and expected.routed == int((scores.confidence >= 0.7).sum())
    low, high = expected.routed_interval
    assert low < expected.routed_share < high
    interval = expected.precision_interval
    assert interval is not None and interval[0] < (expected.precision or 0) < interval[1]
    assert "routed (95 % interval" in expected.describe()
    metrics = expected.as_metrics("expected.native")
    assert metrics["expected.native.precision_low"] == pytest.approx(interval[0])


def test_routing_scores_sum_a_desks_intents() -> None:
    probabilities = np.array([[0.3, 0.3, 0.4], [0.1, 0.1, 0.8]])
    scores = routing_scores(probabilities, ["a", "b", "c"], ["b", "a"], DESKS.desk_of)
    assert scores.confidence.tolist() == pytest.approx([0.6, 0.8])
    assert scores.correct.tolist() == [True, False]


def test_temperature_scaling_fixes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    n, k = 2000, 5
    gold = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), gold] += 1.0
    overconfident = scale(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 0.3)
    temperature = fit_temperature(overconfident, gold)
    assert temperature > 1.5  # it learns to soften
    correct = overconfident.argmax(1) == gold
    before = expected_calibration_error(overconfident.max(1), correct)
    after = expected_calibration_error(scale(overconfident, temperature).max(1), correct)
    assert after < before / 2


def _routed(probabilities: np.ndarray, threshold: float, readings: list[Reading] | None = None):  # type: ignore[no-untyped-def]
    router = Router(DESKS, threshold, foreign_threshold=0.95)
    predictions = predictions_from_proba(probabilities, ["a", "b", "c"])
    return router.route_batch(predictions, readings or [Reading.NATIVE] * len(predictions))


def test_report_has_figures_and_plots(tmp_path: Path) -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    gold = ["a", "c", "b"]
    evaluation = evaluate(
        probabilities, ["a", "b", "c"], gold, _routed(probabilities, 0.5), 0.5, DESKS
    )
    assert evaluation.accuracy == pytest.approx(2 / 3)
    assert evaluation.desk_accuracy == 1.0
    assert evaluation.per_class["b"]["recall"] == 0.0
    # All three reach a desk with at least 0.5, each the right one.
    assert (evaluation.coverage, evaluation.auto_precision) == (1.0, 1.0)
    files = write_report(evaluation, probabilities, ["a", "b", "c"], gold, tmp_path)
    assert {f.name for f in files} == {
        "evaluation.json",
        "coverage_precision.png",
        "reliability.png",
        "confusion_matrix.png",
    }
    assert all(f.stat().st_size > 100 for f in files)


def test_coverage_and_precision_are_as_the_router_routes_each_text() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    gold = ["a", "c", "a"]
    # Native text at 0.5; the foreign one (0.8 < 0.95) goes to triage.
    routed = _routed(probabilities, 0.5, [Reading.NATIVE, Reading.FOREIGN, Reading.NATIVE])
    evaluation = evaluate(probabilities, ["a", "b", "c"], gold, routed, 0.5, DESKS)
    assert evaluation.coverage == pytest.approx(2 / 3)
    assert evaluation.auto_precision == pytest.approx(1 / 2)  # the third went to cash
    # Judged per intent when no desks file covers the model's intents.
    per_intent = DeskMap.one_per_intent(["a", "b", "c"])
    predictions = predictions_from_proba(probabilities, ["a", "b", "c"])
    routed = Router(per_intent, 0.75).route_batch(predictions, [Reading.NATIVE] * 3)
    judged = evaluate(probabilities, ["a", "b", "c"], gold, routed, 0.75, per_intent)
    assert judged.desk_accuracy is None
    assert judged.coverage == pytest.approx(2 / 3) and judged.auto_precision == 0.5


def test_out_of_scope_messages_count_as_wrong_wherever_they_go() -> None:
    probabilities = np.array([[0.3, 0.3, 0.4], [0.1, 0.1, 0.8]])
    scores = routing_scores(probabilities, ["a", "b", "c"], None, DESKS.desk_of)
    assert scores.confidence.tolist() == pytest.approx([0.6, 0.8])
    assert scores.correct.tolist() == [False, False]
    evaluation = evaluate(
        probabilities, ["a", "b", "c"], ["a", "c"], _routed(probabilities, 0.7), 0.7, DESKS
    )
    record_out_of_scope(evaluation, _routed(probabilities, 0.7))
    assert evaluation.extra["oos_recall"] == 0.5  # 0.6 goes to triage, 0.8 is routed


def test_a_rare_label_does_not_stop_the_others_being_calibrated() -> None:
    # As in xSID: 240 sentences, one intent seen once and another twice.
    labels = ["weather"] * 120 + ["alarm"] * 117 + ["snooze"] * 2 + ["modify"]
    split = validation_split(labels, seed=0)
    assert split is not None
    fit, validation = split
    assert {labels[i] for i in validation} == {"weather", "alarm"}
    assert {"snooze", "modify"} <= {labels[i] for i in fit}  # the model still learns them
    assert sorted([*fit, *validation]) == list(range(240))
    # With a single label common enough to hold out there is nothing to calibrate on.
    assert validation_split([label for label in labels if label != "alarm"], seed=0) is None
