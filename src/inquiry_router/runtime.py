"""The loaded pipeline of a running service, and its hot swap when ``@champion`` moves."""

from __future__ import annotations

import gc
import logging
import threading
import time

from .config import Settings
from .pipeline import Pipeline, build_pipeline, warm_up

log = logging.getLogger(__name__)


def _freeze_long_lived() -> None:
    """Keep the garbage collector off what lives as long as the process: the libraries and the
    model are millions of objects, and a full collection walking them stalled every request
    for hundreds of milliseconds (intake p99 390 ms; 40 ms frozen). After a model swap, the
    old model is collected first, then the new one frozen."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class PipelineHolder:
    """Loads the champion's pipeline once, then swaps it when the alias points elsewhere.

    The API and the worker share one holder, so both always use the same model version.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pipeline: Pipeline | None = None
        self._shadow: Pipeline | None = None  # @challenger's, when shadow mode is on
        self._error: str | None = None
        self._lock = threading.Lock()
        self._checked_at = 0.0

    @property
    def ready(self) -> bool:
        return self._pipeline is not None

    @property
    def error(self) -> str | None:
        return self._error

    def current(self) -> Pipeline:
        pipeline = self._pipeline
        if pipeline is None:
            raise RuntimeError(self._error or "the model is still loading")
        return pipeline

    def load(self) -> Pipeline:
        # torch and scikit-learn (with scipy) are imported here, before the preload thread
        # starts: scipy looks torch up half-imported when two threads import them at once.
        import torch  # noqa: F401

        from .classifier import models  # noqa: F401

        preload = threading.Thread(target=self._preload_encoder, daemon=True)
        preload.start()
        try:
            pipeline = build_pipeline(self.settings)
            # Before /health says ready, not on a customer's request.
            warm_up(pipeline)
        except Exception as error:
            self._error = f"{type(error).__name__}: {error}"
            raise
        with self._lock:
            self._pipeline = pipeline
            self._error = None
            self._checked_at = time.monotonic()
        ref = pipeline.classifier.ref
        log.info("serving model %s version %s", ref.name, ref.version)
        self._refresh_shadow()
        _freeze_long_lived()
        return pipeline

    def _preload_encoder(self) -> None:
        """Load the champion's sentence encoder while MLflow loads the rest: it is the slowest
        part. Only one already on disk: obtaining one is the main load's to do and report."""
        from .classifier.encoders import resolve_configured, shared_encoder

        settings = self.settings
        try:
            from .registry import ModelRegistry, recorded_encoder

            params = ModelRegistry(settings).champion_params(settings.model_name) or {}
            name = recorded_encoder(params)
            if name is None:
                return
            resolve_configured(settings, name, obtain=False)
            shared_encoder(name)
        except Exception as error:  # the main load reports real problems
            log.debug("encoder preload skipped: %s", error)

    def shadow(self) -> Pipeline | None:
        """@challenger's pipeline in shadow mode (``INQUIRY_ROUTER_SHADOW``): it scores every
        inquiry beside the champion and routes none."""
        return self._shadow

    def _refresh_shadow(self) -> None:
        from .registry import ModelRegistry

        if not self.settings.shadow:
            return
        try:
            challenger = ModelRegistry(self.settings).challenger(self.settings.model_name)
        except Exception as error:
            log.warning("could not check the challenger model: %s", error)
            return
        current = self._shadow.classifier.ref.version if self._shadow else None
        if challenger == current:
            return
        if challenger is None:
            log.info("no @challenger any more: shadow scoring stops")
            self._shadow = None
            return
        try:
            self._shadow = build_pipeline(
                self.settings, f"models:/{self.settings.model_name}/{challenger}"
            )
            log.info("shadow mode: scoring every inquiry with @challenger version %s", challenger)
        except Exception as error:
            log.error("shadow mode: version %s failed to load: %s", challenger, error)
            self._shadow = None

    def refresh_if_due(self) -> bool:
        """Reload when the champion alias has moved (and, in shadow mode, the challenger);
        returns whether the champion swapped."""
        if time.monotonic() - self._checked_at < self.settings.model_refresh_interval_s:
            return False
        self._checked_at = time.monotonic()
        self._refresh_shadow()
        from .registry import ModelRegistry

        try:
            champion = ModelRegistry(self.settings).champion(self.settings.model_name)
        except Exception as error:  # the registry being briefly unreachable must not stop work
            log.warning("could not check the champion model: %s", error)
            return False
        current = self._pipeline.classifier.ref.version if self._pipeline else None
        if champion is None or champion == current:
            return False
        log.info("champion moved from version %s to %s; reloading", current, champion)
        try:
            self.load()
        except Exception as error:
            log.error("keeping version %s: version %s failed to load: %s", current, champion, error)
            return False
        return True
