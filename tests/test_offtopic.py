"""The off-topic score: nearest off-topic examples against nearest training examples."""

from __future__ import annotations

import numpy as np
import pytest

from inquiry_router.classifier.offtopic import nearest_similarity, off_topic_score


def _unit(*rows: list[float]) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float32)
    normalized: np.ndarray = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return normalized


def test_a_text_nearer_the_off_topic_examples_scores_higher() -> None:
    in_scope = _unit([1, 0, 0], [0.9, 0.1, 0])
    off_topic = _unit([0, 1, 0], [0, 0.9, 0.1])
    queries = _unit([1, 0.05, 0], [0.05, 1, 0], [0, 0, 1])
    scores = off_topic_score(queries, in_scope, off_topic, k=1)
    assert scores[0] < scores[2] < scores[1]
    # Without off-topic examples: only how far the nearest training examples are.
    alone = off_topic_score(queries, in_scope, off_topic[:0], k=1)
    assert alone[0] < alone[1] and alone[0] < alone[2]
    assert alone[0] == pytest.approx(-float(queries[0] @ in_scope[0]))


def test_an_example_is_not_its_own_neighbour() -> None:
    references = _unit([1, 0], [0, 1], [1, 1])
    with_self = nearest_similarity(references, references, k=1)
    assert with_self.tolist() == pytest.approx([1.0, 1.0, 1.0])
    without = nearest_similarity(references, references, k=1, exclude=np.arange(3))
    assert without.tolist() == pytest.approx([2**-0.5, 2**-0.5, 2**-0.5])
    # k larger than the references there are: all of them.
    assert nearest_similarity(references[:1], references[:2], k=5).tolist() == pytest.approx([0.5])
