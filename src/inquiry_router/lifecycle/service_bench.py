"""Benchmarks of the running service (`bench routing`, `bench intake`): a real server process,
started here over a scratch database and the configured model registry, measured from outside
as a web form and a desk would see it."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..config import Settings
from ..datasets import DatasetStore, load_banking77
from ..store import InquiryStore, NewInquiry

Progress = Callable[[str], None]
_WORKER_STARTED = re.compile(r"inquiry_router\.worker: worker-\w+ started")


class BenchError(Exception):
    """The service could not be started or measured; the message says why."""


@dataclass
class RunningService:
    url: str
    store: InquiryStore
    headers: dict[str, str]  # an admin key's, for what only a key may read
    log_path: Path

    def wait_workers(self, count: int, timeout_s: float) -> None:
        """Until ``count`` worker processes have loaded the model (each logs that it started)."""
        deadline = time.monotonic() + timeout_s
        while len(_WORKER_STARTED.findall(self.log_path.read_text(errors="replace"))) < count:
            if time.monotonic() > deadline:
                raise BenchError(f"{count} worker processes did not start in {timeout_s:.0f} s")
            time.sleep(0.2)

    def routed(self) -> int:
        counts = self.store.status_counts()
        return sum(counts.get(status, 0) for status in ("routed", "claimed", "resolved"))

    def total(self) -> int:
        return sum(self.store.status_counts().values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command() -> str:
    found = Path(sys.executable).with_name("inquiry-router")
    return str(found) if found.exists() else (shutil.which("inquiry-router") or "inquiry-router")


@contextmanager
def running_service(
    settings: Settings,
    worker: bool = True,
    backlog: Sequence[str] = (),
    timeout_s: float = 600,
    database: str | None = None,
) -> Iterator[RunningService]:
    """`inquiry-router serve` on a free port over a scratch SQLite database (or ``database``),
    with ``backlog`` already waiting in it, the configured registry and model; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="inquiry-router-bench-") as scratch:
        database = database or f"sqlite:///{Path(scratch) / 'inquiries.db'}"
        store = InquiryStore(database)
        store.add_many([NewInquiry(text) for text in backlog])
        _, token = store.keys.create("bench", admin=True)  # so the server makes none of its own
        port = _free_port()
        # The server runs with these settings, whether they came from the environment or not.
        env = settings.process_environment(
            INQUIRY_ROUTER_DATABASE_URL=database,
            # The limiter runs (its cost is measured) but never refuses the load generator.
            INQUIRY_ROUTER_INTAKE_RATE_LIMIT="100000000/minute",
        )
        log_path = Path(scratch) / "server.log"
        with log_path.open("wb") as log:
            command = [_command(), "serve", "--port", str(port)]
            process = subprocess.Popen(
                [*command, *([] if worker else ["--no-worker"])],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                _wait_healthy(url, process, log_path, timeout_s)
                yield RunningService(url, store, {"Authorization": f"Bearer {token}"}, log_path)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                store.close()


def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the server exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            health = httpx.get(f"{url}/health", timeout=2)
            if health.status_code == 200:
                return
            if health.json().get("status") == "error":  # the model failed to load: say why now
                raise BenchError(f"the server cannot serve: {health.json().get('error')}")
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    raise BenchError(f"the server was not ready within {timeout_s:.0f} s")


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _wait_routed(service: RunningService, total: int, timeout_s: float) -> float:
    """Seconds until ``total`` inquiries are out of the worker's hands."""
    started = time.perf_counter()
    while service.routed() < total:
        if time.perf_counter() - started > timeout_s:
            raise BenchError(f"only {service.routed()} of {total} routed in {timeout_s:.0f} s")
        time.sleep(0.05)
    return time.perf_counter() - started


def _post_steadily(url: str, rate: float, stop: threading.Event, sent: list[float]) -> None:
    """Post inquiries at ``rate`` per second until ``stop``; each one's latency into ``sent``.

    Over one kept-alive socket, with the requests written out beforehand: the cores are the
    measured service's, and an HTTP client library took a fifth of one to post 100 a second
    here (this takes about a twentieth of that)."""
    parsed = httpx.URL(url)
    interval = 1.0 / rate
    with socket.create_connection((parsed.host, parsed.port or 80), timeout=30) as connection:
        reader = connection.makefile("rb")
        next_at = time.perf_counter()
        number = 0
        while not stop.is_set():
            body = b'{"message": "Where is my card? (%d)"}' % number
            request = (
                b"POST /v1/inquiries HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json"
                b"\r\nContent-Length: %d\r\n\r\n%s" % (parsed.host.encode(), len(body), body)
            )
            started = time.perf_counter()
            connection.sendall(request)
            status = _read_response(reader)
            sent.append(time.perf_counter() - started)
            if status != 202:
                raise BenchError(f"intake answered {status} while the backlog was routed")
            number += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))


def _read_response(reader: Any) -> int:
    """One HTTP/1.1 response's status, its body read past (the answers carry a length)."""
    first = reader.readline()
    if not first:
        raise BenchError("the service closed the connection instead of answering")
    status = int(first.split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    reader.read(length)
    return status


def bench_routing(
    settings: Settings,
    n: int | None = None,
    intake_rate: float = 100.0,
    light_seconds: float = 15.0,
    progress: Progress = lambda _message: None,
    compare: bool = True,
) -> dict[str, Any]:
    """How fast the service routes: a backlog of Banking77's test inquiries waiting when it
    starts; as many of its training inquiries (other texts: none of them in the encoder's
    cache) while web forms post ``intake_rate`` inquiries a second; and the time from received
    to routed when traffic is light (one inquiry every half second). ``compare``: `bench
    classify`'s rate on the same inquiries, in a process of its own, before the service starts
    and after it stops; the ratios are to their mean."""
    banking77 = load_banking77(DatasetStore(settings))
    assert banking77.test is not None
    texts = [str(text) for text in banking77.test["text"]][: n or None]
    others = [str(text) for text in banking77.train["text"]][: len(texts)]
    classify_runs: list[float] = []
    if compare:
        # The same machine's speed, before and after: machines differ two-fold, and one
        # `bench classify` from the next by up to a sixth on a shared machine.
        progress(f"bench classify on the same {len(texts):,} inquiries, for comparison")
        classify_runs.append(_classify_rate(settings, len(texts)))
        progress(f"bench classify: {classify_runs[-1]:,.0f} inquiries/s")
    progress(f"starting the service with {len(texts):,} inquiries waiting")
    processes = settings.worker_processes
    with running_service(settings, backlog=[] if processes else texts) as service:
        if processes:
            # Worker processes load their own model after /health turns ready: the backlog
            # arrives once they all have.
            service.wait_workers(processes, timeout_s=600)
            service.store.add_many([NewInquiry(text) for text in texts])
        # Else the worker starts with the model, as /health turns ready: the backlog is under
        # way.
        seconds = _wait_routed(service, len(texts), timeout_s=3600)
        backlog_rate = len(texts) / seconds
        progress(f"backlog: {backlog_rate:,.0f} inquiries/s")

        progress(f"{len(others):,} other inquiries while forms post {intake_rate:g} inquiries/s")
        stop, sent, failed = threading.Event(), list[float](), list[Exception]()

        def post() -> None:
            try:
                _post_steadily(service.url, intake_rate, stop, sent)
            except Exception as error:  # said once the phase ends
                failed.append(error)

        poster = threading.Thread(target=post, daemon=True)
        before = service.routed()
        started = time.perf_counter()
        service.store.add_many([NewInquiry(text) for text in others])
        poster.start()
        try:
            while service.routed() - before < len(others):
                time.sleep(0.05)
                if time.perf_counter() - started > 3600:
                    raise BenchError("the backlog did not drain within an hour")
            busy_seconds = time.perf_counter() - started
        finally:
            stop.set()
            poster.join(timeout=30)
        if failed:
            raise BenchError(f"posting inquiries failed: {failed[0]}")
        # Routed in that time: the backlog, and some of what was posted meanwhile.
        busy_rate = (service.routed() - before) / busy_seconds
        progress(f"with intake: {busy_rate:,.0f} inquiries/s routed")

        progress(f"light traffic: one inquiry every 0.5 s for {light_seconds:g} s")
        ids: list[str] = []
        with httpx.Client(base_url=service.url, timeout=30, headers=service.headers) as client:
            _wait_routed(service, service.total(), timeout_s=600)  # what intake left

            deadline = time.perf_counter() + light_seconds
            while time.perf_counter() < deadline:
                posted = client.post("/v1/inquiries", json={"message": "My card has not arrived"})
                ids.append(str(posted.json()["id"]))
                time.sleep(0.5)
            latencies = []
            for inquiry_id in ids:
                body = _routed_body(client, inquiry_id)
                created = _parse_time(body["created_at"])
                routed = _parse_time(body["routed_at"])
                latencies.append(routed - created)
    if compare:
        progress("bench classify again, the service stopped")
        classify_runs.append(_classify_rate(settings, len(texts)))
        progress(f"bench classify: {classify_runs[-1]:,.0f} inquiries/s")
    return {
        "n": len(texts),
        # The mean of the runs before and after; None without the comparison.
        "classify_per_s": statistics.fmean(classify_runs) if classify_runs else None,
        "classify_runs": classify_runs,
        "worker_processes": processes,
        "worker_batch_size": settings.worker_batch_size,
        "backlog_per_s": backlog_rate,
        "with_intake_per_s": busy_rate,
        "intake_rate": intake_rate,
        "intake_p99_ms": _percentile(sent, 0.99) * 1000 if sent else None,
        "light_n": len(latencies),
        "light_p50_s": statistics.median(latencies),
        "light_p95_s": _percentile(latencies, 0.95),
    }


def _classify_rate(settings: Settings, n: int) -> float:
    """`inquiry-router bench classify --limit n`'s inquiries/s, run as its own process (the
    model it loads is gone before the service starts)."""
    done = subprocess.run(
        [_command(), "bench", "classify", "--limit", str(n), "--json"],
        env=settings.process_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"bench classify failed: {done.stderr.strip()[-500:]}")
    return float(json.loads(done.stdout)["inquiries_per_s"])


def _routed_body(client: httpx.Client, inquiry_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = client.get(f"/v1/inquiries/{inquiry_id}").json()
        if body["routed_at"] is not None or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def _parse_time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


def bench_intake(
    settings: Settings,
    seconds: float = 15.0,
    connections: int = 32,
    progress: Progress = lambda _message: None,
) -> dict[str, Any]:
    """Requests a second `POST /v1/inquiries` takes (intake alone, no worker), with ``wrk``
    where it is installed (it leaves the cores to the server), else a Python client."""
    with running_service(settings, worker=False) as service:
        wrk = shutil.which("wrk")
        if wrk is not None:
            progress(f"wrk: {connections} connections for {seconds:g} s")
            return {"tool": "wrk", **_wrk(wrk, service.url, seconds, connections)}
        progress(f"python client: {connections} threads for {seconds:g} s (wrk not installed)")
        return {"tool": "python (httpx)", **_python_load(service.url, seconds, connections)}


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"message": "My card has not arrived yet", "email": "ana@example.com"}'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %f %f %f %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
end
"""


def _wrk(wrk: str, url: str, seconds: float, connections: int) -> dict[str, Any]:
    target = url + "/v1/inquiries"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT)
    try:
        result = subprocess.run(
            [wrk, "-t2", f"-c{connections}", f"-d{int(seconds)}s", "-s", script.name, target],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    finally:
        os.unlink(script.name)
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise BenchError(f"wrk said: {(result.stdout + result.stderr)[-1000:]}")
    requests, duration_us, p50, p99, _max, errors = line.split()[1:]
    return {
        "requests": int(requests),
        "requests_per_s": int(requests) / (int(duration_us) / 1e6),
        "p50_ms": float(p50) / 1000,
        "p99_ms": float(p99) / 1000,
        "errors": int(errors),
    }


def _python_load(url: str, seconds: float, connections: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = http.post("/v1/inquiries", json={"message": "My card has not arrived"})
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    if response.status_code != 202:
                        errors[0] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": _percentile(latencies, 0.5) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "errors": errors[0],
    }
