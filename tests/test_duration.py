"""A training says how long it will take before it starts, and warns when that is longer
than a weekly retrain should be (issue 18)."""

from __future__ import annotations

from inquiry_router.classifier.kinds import ModelKind
from inquiry_router.lifecycle.duration import EXPECTED_MINUTES, describe, estimate

SPEED = 86.0  # texts/s through e5-small, as measured on a 2-core AVX2 EPYC


def default(n: int, classes: int) -> float:
    held = int(n * 0.15)
    return estimate(
        ModelKind.ENSEMBLE_FINETUNE, n, classes, 3_000 + 2 * held, [n - held], SPEED
    ).seconds


def test_time_grows_less_than_the_data_once_fine_tuning_is_capped() -> None:
    banking77 = default(10_003, 77)
    assert default(20_006, 77) < 1.8 * banking77
    assert default(10_003, 226) > 1.1 * banking77  # more intents: the linear models grow
    assert (
        default(10_003, 77)
        > 2 * estimate(ModelKind.ENSEMBLE, 10_003, 77, 3_000 + 3_000, [8_503], SPEED).seconds
    )


def test_a_long_training_is_told_before_it_starts_with_a_faster_kind() -> None:
    slow = estimate(ModelKind.ENSEMBLE_FINETUNE, 15_000, 226, 8_000, [12_750], SPEED)
    fast = estimate(ModelKind.ENSEMBLE, 15_000, 226, 8_000, [12_750], SPEED)
    assert slow.minutes > EXPECTED_MINUTES > fast.minutes
    said = describe(slow, fast)
    assert said.startswith("warning: expected to take about")
    assert f"`--kind ensemble` would take about {fast.minutes:.0f}" in said
    # Within the time: the estimate alone, no warning.
    assert describe(fast, None) == (
        f"expected to take about {fast.minutes:.0f} minutes on this machine "
        "(the encoder reads 86 texts/s here)"
    )


def test_the_linear_models_follow_their_own_probe_not_the_encoders_speed() -> None:
    from inquiry_router.lifecycle.duration import REFERENCE_LINEAR_PROBE, linear_probe

    def minutes(speed: float, probe: float | None) -> float:
        return estimate(
            ModelKind.ENSEMBLE_FINETUNE,
            14_848,
            226,
            8_000,
            [12_621],
            speed,
            linear_probe_seconds=probe,
        ).minutes

    # Where the constants were measured, the probe changes nothing.
    assert abs(minutes(SPEED, REFERENCE_LINEAR_PROBE) - minutes(SPEED, None)) < 1e-9
    # An encoder three times faster (bf16) with linear models no faster: the linear share
    # does not shrink with it, so the estimate stays well above a third.
    fast_encoder = minutes(3 * SPEED, REFERENCE_LINEAR_PROBE)
    assert fast_encoder > 1.2 * minutes(3 * SPEED, None)
    assert fast_encoder > minutes(SPEED, None) / 3 + 2
    # Slower linear models, a longer estimate.
    assert minutes(SPEED, 2 * REFERENCE_LINEAR_PROBE) > minutes(SPEED, REFERENCE_LINEAR_PROBE) + 2
    # The probe is short: this machine answers within a few seconds.
    assert 0 < linear_probe() < 5
