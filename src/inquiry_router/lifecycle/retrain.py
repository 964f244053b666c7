"""``inquiry-router retrain``: the configured sources and every correction, trained, compared
with the champion on the same data, promoted only when the rule says so.

The registry is never left half-changed: a version is registered whole or not at all (MLflow
registers it only after its run is logged), and the only later change is moving an alias,
one call. Interrupted before that, the new version simply stays @challenger."""

from __future__ import annotations

from collections.abc import Callable

from ..classifier import DEFAULT_KIND
from ..config import Settings
from .corrections import SOURCE as CORRECTIONS
from .promotion import PromotionError
from .sources import TrainingError
from .training import train


class RetrainError(Exception):
    """Retraining failed; the message says why."""


def retrain(
    settings: Settings,
    kind: str = DEFAULT_KIND,
    seed: int = 0,
    step: Callable[[str], None] = lambda _message: None,
) -> str:
    sources = [s.strip() for s in settings.retrain_sources.split(",") if s.strip()]
    sources.append(CORRECTIONS)
    try:
        report = train(settings, sources, kind=kind, seed=seed, promote="auto", step=step)
    except (TrainingError, PromotionError) as error:
        raise RetrainError(str(error)) from None
    version = report.registered.version
    used = f" on {', '.join(sources[:-1])} and {report.corrections_used or 0} corrections"
    if report.registered.is_champion and report.comparison is None:
        return f"version {version} trained{used}: the first, now @champion"
    comparison = report.comparison
    if comparison is None:
        return f"version {version} trained{used}: @challenger, not compared (see the log above)"
    old, new = comparison.champion, comparison.challenger
    figures = (
        f"desk accuracy {old.desk_accuracy:.4f} → {new.desk_accuracy:.4f}, routed "
        f"{old.routed_share:.3f} → {new.routed_share:.3f} at precision "
        f"{new.routed_precision:.4f}"
    )
    if comparison.promote:
        return f"version {version} promoted to @champion over v{old.version}: {figures}"
    return f"version {version} kept as @challenger, v{old.version} stays @champion: {figures}"
