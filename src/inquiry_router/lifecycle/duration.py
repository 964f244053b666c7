"""How long a training will take, said before it starts.

Support leads retrain weekly as corrections grow, so a training should fit in a coffee break
(``EXPECTED_MINUTES``). The time of the encoder kinds is almost all encoder work and linear
models, so it is predicted from this machine's own speed, measured on the data about to be
trained on (a second's encoding, which the training then reuses), and a count of the work:

- every text read (training, held-out, off-topic, the translated validation) passes once
  through the encoder's frozen layers, and through the fine-tuned layers when there are any;
- each fine-tuning step costs about one encoder pass per text in its batch (forward and
  backward through the top four of twelve layers);
- the linear models (TF-IDF, and the heads over frozen embeddings) grow with examples times
  intents.

The two constants were measured on a 2-core AMD EPYC (AVX2) training 14,848 examples of 226
intents (docs/benchmarks.md, training time); elsewhere the encoder work scales with the encoder's
measured speed, and the linear models with a probe of their own (``linear_probe``: a short
logistic regression): a machine with bf16 reads with the encoder three times faster, but its
linear models gain far less (Banking77 + CLINC150 there: 7.5 minutes said with the encoder's
speed alone, 9:40 taken).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..classifier.finetune import MAX_STEPS, planned_steps
from ..classifier.kinds import ModelKind, fine_tunes

EXPECTED_MINUTES = 15.0
BATCH_SIZE = 32  # the fine-tuned member's
# Encoder passes per (example x intent) in one fit's linear models: TF-IDF's logistic
# regression and the heads over e5 and USE embeddings. First 0.0063 (207 s for 12,621 x 226 at
# 86 texts/s); with the heads fitted on one BLAS thread (``models.HEAD_BLAS_THREADS``), 0.0040:
# `--kind ensemble` on those 14,848 examples of 226 intents trained in 432 s (9:17 wall clock),
# 9.8 minutes said, against 11.9 with the first figure.
LINEAR_PASSES = 0.0040
# Reading a text with the four fine-tuned layers on top of the frozen ones.
TUNED_READ = 4 / 12
PROBE_TEXTS = 128
WARM_UP = 32
# A training's long runs of batches read faster than the short, cold probe: 93 texts/s against
# 51-63 measured by the probe on the same data and machine.
PROBE_TO_TRAINING = 1.6
# The encoder's speed where LINEAR_PASSES was measured, and ``linear_probe``'s seconds on that
# kind of machine (a 2-core AMD EPYC with AVX2: 0.09 to 0.11 s, 2026-12-03).
REFERENCE_SPEED = 86.0
REFERENCE_LINEAR_PROBE = 0.10


def linear_probe() -> float:
    """Seconds of a small logistic regression (lbfgs, as the members' heads), the fastest of
    three: under a second in all. Its ratio to ``REFERENCE_LINEAR_PROBE`` scales the linear
    models' time, which does not follow the encoder's speed."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    features, labels = rng.standard_normal((1000, 384)), rng.integers(0, 40, 1000)
    times = []
    # One BLAS thread: steady (two on two cores: 0.21 to 0.47 s from one run to the next).
    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            started = time.perf_counter()
            LogisticRegression(max_iter=20, tol=0.0).fit(features, labels)
            times.append(time.perf_counter() - started)
    return min(times)


def encoder_speed(encoder: object, texts: Sequence[str]) -> float:
    """Texts per second through ``encoder`` (a ``SentenceEncoder``) in a training, from up
    to ``PROBE_TEXTS`` of ``texts`` timed after a few to warm up (a second or two); the
    embeddings are remembered, so the training does not encode them again."""
    distinct = list(dict.fromkeys(texts))
    chosen = np.random.default_rng(0).permutation(len(distinct))[: PROBE_TEXTS + WARM_UP]
    sample = [distinct[i] for i in chosen]  # a fair sample: files are often sorted by label
    encode = encoder.encode  # type: ignore[attr-defined]
    encode(sample[:WARM_UP])
    timed = sample[WARM_UP:] or sample[:WARM_UP]
    started = time.perf_counter()
    encode(timed)
    return PROBE_TO_TRAINING * len(timed) / max(time.perf_counter() - started, 1e-6)


@dataclass(frozen=True)
class TrainingTime:
    kind: str
    seconds: float
    texts_per_second: float

    @property
    def minutes(self) -> float:
        return self.seconds / 60

    @property
    def too_long(self) -> bool:
        return self.minutes > EXPECTED_MINUTES


def estimate(
    kind: str,
    n_train: int,
    n_classes: int,
    n_read: int,
    fit_sizes: Sequence[int],
    texts_per_second: float,
    epochs: int = 4,
    final_sizes: Sequence[int] | None = None,
    linear_probe_seconds: float | None = None,
) -> TrainingTime:
    """The expected seconds of ``train`` for an encoder kind: ``fit_sizes`` are the examples
    each calibration fit learns from, ``final_sizes`` each later fit's (default: one on all
    ``n_train``; a refit on more data, or both), ``n_read`` the texts read besides the
    training ones (held-out, off-topic, translated validation, a refit's).
    ``linear_probe_seconds``: this machine's ``linear_probe``, which the linear models' time
    follows (None: it follows the encoder's speed)."""
    tuned = fine_tunes(kind)
    linear = kind != ModelKind.FINETUNE
    fits = [*fit_sizes, *([n_train] if final_sizes is None else final_sizes)]
    passes = (n_train + n_read) * (1 + (TUNED_READ if tuned else 0))
    if tuned:
        passes += sum(planned_steps(n, BATCH_SIZE, epochs, MAX_STEPS) for n in fits) * BATCH_SIZE
    seconds = passes / texts_per_second
    if linear:
        linear_passes = LINEAR_PASSES * n_classes * sum(fits)
        seconds += (
            linear_passes / texts_per_second
            if linear_probe_seconds is None
            else linear_passes / REFERENCE_SPEED * (linear_probe_seconds / REFERENCE_LINEAR_PROBE)
        )
    return TrainingTime(kind, seconds, texts_per_second)


def describe(expected: TrainingTime, alternative: TrainingTime | None) -> str:
    """One line for the training's progress: the estimate and, when it is over
    ``EXPECTED_MINUTES``, a warning with the faster kind's estimate."""
    said = (
        f"expected to take about {expected.minutes:.0f} minutes on this machine (the encoder "
        f"reads {expected.texts_per_second:.0f} texts/s here)"
    )
    if not expected.too_long:
        return said
    faster = (
        f"; `--kind {alternative.kind}` would take about {alternative.minutes:.0f}, for "
        "about half a point of accuracy (docs/model.md)"
        if alternative is not None
        else ""
    )
    return f"warning: {said}, over the {EXPECTED_MINUTES:.0f} a weekly retrain should take{faster}"
