"""The worker loop: claim received inquiries in batches → pipeline → store in desk queues."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from .config import Settings
from .domain import Decision, InquiryText
from .runtime import PipelineHolder
from .store import ClaimedInquiry, InquiryStore

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, settings: Settings, store: InquiryStore, holder: PipelineHolder) -> None:
        self.settings = settings
        self.store = store
        self.holder = holder
        self.worker_id = f"worker-{uuid.uuid4().hex[:8]}"

    @contextmanager
    def _renewing(self, token: str) -> Iterator[None]:
        """Keep the batch's lease alive while this worker works on it, so the lease can be
        short and a dead worker's batch comes back soon."""
        done = threading.Event()
        lease = self.settings.worker_lease_s

        def renew() -> None:
            while not done.wait(lease / 3):
                try:
                    self.store.renew_lease(token, lease)
                except Exception as error:  # the next renewal may succeed; the lease says when
                    log.warning("could not renew lease %s: %s", token, error)

        thread = threading.Thread(target=renew, name="lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=5)

    def process_once(self) -> int:
        """Process one batch; returns how many inquiries were routed."""
        pipeline = self.holder.current()
        # What is waiting, up to the cap: a backlog goes in large batches, which the model
        # reads fastest per inquiry (Banking77: 132/s in batches of 1,000, 103/s growing from
        # 32); light traffic in small, quick ones. The cap bounds how long a new arrival waits.
        # Worker processes split what is waiting: each batch at most its share (guided
        # scheduling), so a backlog's last batches shrink and the processes finish together.
        claimed = self.store.claim_batch(
            self.settings.worker_batch_size,
            self.settings.worker_lease_s,
            self.settings.worker_max_attempts,
            pipeline.router.desk_map.triage_desk,
            share_among=max(1, self.settings.worker_processes),
        )
        if not claimed:
            return 0
        token = claimed[0].lease_token
        inputs = [InquiryText(c.message, c.subject, c.locale) for c in claimed]
        with self._renewing(token):
            try:
                decisions = pipeline.run(inputs)
            except Exception:
                log.exception("batch of %d failed; retrying one by one", len(claimed))
                return self._process_individually(claimed, token)
            shadows = self._shadow_decisions(inputs)
        return self.store.record_decisions(
            token, [(c.id, d) for c, d in zip(claimed, decisions, strict=True)], shadows
        )

    def _shadow_decisions(self, inputs: list[InquiryText]) -> list[Decision] | None:
        """@challenger's decisions for the same inquiries, in shadow mode; stored beside the
        champion's, routing nothing. A failure here costs the shadow only."""
        shadow = self.holder.shadow()
        if shadow is None:
            return None
        try:
            return shadow.run(inputs)
        except Exception:
            log.exception("shadow scoring of %d inquiries failed; routing goes on", len(inputs))
            return None

    def _process_individually(self, claimed: list[ClaimedInquiry], token: str) -> int:
        """One bad inquiry must not hold back the rest of its batch (under the batch's lease,
        which the caller keeps renewing)."""
        routed: list[tuple[str, Decision]] = []
        pipeline = self.holder.current()
        for inquiry in claimed:
            try:
                decision = pipeline.run_one(
                    InquiryText(inquiry.message, inquiry.subject, inquiry.locale)
                )
            except Exception as error:
                log.exception("inquiry %s failed (attempt %d)", inquiry.id, inquiry.attempts)
                self.store.release_failed(
                    token,
                    [inquiry.id],
                    f"{type(error).__name__}: {error}",
                    self.settings.worker_max_attempts,
                    pipeline.router.desk_map.triage_desk,
                )
                continue
            routed.append((inquiry.id, decision))
        return self.store.record_decisions(token, routed)

    def run(self, stop: threading.Event) -> None:
        log.info("%s started", self.worker_id)
        while not stop.is_set():
            try:
                self.holder.refresh_if_due()
                routed = self.process_once()
            except Exception:
                log.exception("worker loop error; continuing")
                routed = 0
            if routed == 0:
                stop.wait(self.settings.worker_poll_interval_s)
        log.info("%s stopped", self.worker_id)


# Set for a worker process `serve` started: the worker stops when that process is gone.
PARENT_VARIABLE = "INQUIRY_ROUTER_WORKER_PARENT_PID"


def stop_with_parent(stop: threading.Event, interval_s: float = 1.0) -> None:
    """In a worker `serve` started, set ``stop`` once `serve` is gone (killed, say), so no
    worker is left behind to route beside the next `serve`'s own."""
    parent = os.environ.get(PARENT_VARIABLE)
    if not parent:
        return

    def watch() -> None:
        while not stop.wait(interval_s):
            if os.getppid() != int(parent):
                log.warning("serve (process %s) is gone; this worker stops", parent)
                stop.set()

    threading.Thread(target=watch, name="parent", daemon=True).start()


class WorkerProcesses:
    """`serve`'s workers as processes of their own (``worker_processes``): the model's Python
    work then shares no interpreter lock with intake, each process runs torch on its share of
    the cores, and one that stops (killed, out of memory) is started again, after longer each
    time it stops soon after starting. Each is `inquiry-router worker` with the service's own
    settings."""

    RESTART_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0)

    def __init__(self, settings: Settings) -> None:
        cores = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ) or 1
        self.count = count = settings.worker_processes
        self.command = [sys.executable, "-m", "inquiry_router", "worker"]
        self.env = settings.process_environment()
        self.env.setdefault("OMP_NUM_THREADS", str(max(1, cores // count)))
        self.env[PARENT_VARIABLE] = str(os.getpid())
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for slot in range(self.count):
            thread = threading.Thread(target=self._keep, args=(slot,), name=f"worker-{slot}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def _keep(self, slot: int) -> None:
        failures = 0
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                # A session of its own: Ctrl-C reaches `serve`, which stops them in turn.
                process = subprocess.Popen(self.command, env=self.env, start_new_session=True)
                self._processes[slot] = process
            started = time.monotonic()
            code = process.wait()
            if self._stop.is_set():
                return
            # 1 s; longer each time it stops again within a minute of starting.
            failures = 0 if time.monotonic() - started > 60 else failures + 1
            delay = self.RESTART_DELAYS_S[min(max(failures - 1, 0), len(self.RESTART_DELAYS_S) - 1)]
            log.error(
                "worker process %d stopped (exit code %s); starting another in %.0f s",
                process.pid,
                code,
                delay,
            )
            self._stop.wait(delay)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask each to finish its batch (SIGTERM), then kill what is left after ``timeout``."""
        with self._lock:
            self._stop.set()
            processes = list(self._processes.values())
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for thread in self._threads:
            thread.join(timeout=5)
