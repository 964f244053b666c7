from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inquiry_router.classifier.evaluation import (
    RoutingScores,
    choose_threshold,
    coverage_precision,
    evaluate_probabilities,
    expected_calibration_error,
    record_out_of_scope,
    routing_scores,
    write_report,
)
from inquiry_router.classifier.models import fit_temperature, scale
from inquiry_router.routing import DeskMap

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
    coverage, precision = coverage_precision(scores, 0.6)
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


def test_routing_scores_sum_a_desks_intents() -> None:
    probabilities = np.array([[0.3, 0.3, 0.4], [0.1, 0.1, 0.8]])
    scores = routing_scores(probabilities, ["a", "b", "c"], ["b", "a"], DESKS)
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


def test_report_has_figures_and_plots(tmp_path: Path) -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    evaluation = evaluate_probabilities(probabilities, ["a", "b", "c"], ["a", "c", "b"], DESKS, 0.5)
    assert evaluation.accuracy == pytest.approx(2 / 3)
    assert evaluation.desk_accuracy == 1.0
    assert evaluation.per_class["b"]["recall"] == 0.0
    files = write_report(evaluation, probabilities, ["a", "b", "c"], ["a", "c", "b"], tmp_path)
    assert {f.name for f in files} == {
        "evaluation.json",
        "coverage_precision.png",
        "reliability.png",
        "confusion_matrix.png",
    }
    assert all(f.stat().st_size > 100 for f in files)


def test_out_of_scope_messages_count_as_wrong_wherever_they_go() -> None:
    probabilities = np.array([[0.3, 0.3, 0.4], [0.1, 0.1, 0.8]])
    scores = routing_scores(probabilities, ["a", "b", "c"], None, DESKS)
    assert scores.confidence.tolist() == pytest.approx([0.6, 0.8])
    assert scores.correct.tolist() == [False, False]
    evaluation = evaluate_probabilities(probabilities, ["a", "b", "c"], ["a", "c"], DESKS, 0.7)
    record_out_of_scope(evaluation, probabilities, ["a", "b", "c"], DESKS)
    assert evaluation.extra["oos_recall"] == 0.5  # 0.6 goes to triage, 0.8 is routed
