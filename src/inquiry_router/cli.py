"""The command line: serve, worker, train, classify, models, data, bench."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .classifier.kinds import DEFAULT_KIND, ModelKind
from .config import Settings, get_settings, without_password

app = typer.Typer(
    help="Route customer inquiries, in any language, to the right service desk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(
    help="Registered model versions: list, promote, roll back.", no_args_is_help=True
)
data_app = typer.Typer(help="Public datasets: list them, fetch them.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(bench_app, name="bench")

# Results go to standard output (``out``), progress and logs to standard error (``console``).
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
DEFAULT_DATA = "banking77"


class Promote(StrEnum):
    AUTO = "auto"  # champion if there is none; else challenger, promoted on evidence
    ALWAYS = "always"
    NEVER = "never"


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as error:  # pydantic names the bad variable
        raise fail(f"invalid configuration: {error}") from None


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("alembic", "mlflow", "urllib3", "httpx", "stanza", "argostranslate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# ---------------------------------------------------------------------------- serving


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    worker: Annotated[bool, typer.Option(help="run the routing worker in this process")] = True,
) -> None:
    """Serve the API (and the worker) until interrupted."""
    import uvicorn

    from .api import create_app
    from .routing import DeskMapError

    settings = _settings()
    _logging()
    try:
        application = create_app(settings, run_worker=worker)
    except DeskMapError as error:
        raise fail(str(error)) from None
    database = without_password(settings.resolved_database_url)
    console.print(f"serving on http://{host}:{port} (database {database})")
    # Idle keep-alive connections close after 5 s; a request body must arrive within
    # body_timeout_s (the app's own limit). Slow headers are a reverse proxy's to cut
    # (docs/operations.md).
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level="info",
        timeout_keep_alive=5,
        timeout_graceful_shutdown=15,
        access_log=settings.access_log,
    )


@app.command()
def run(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Train the default model if none is registered, then serve the API and the worker."""
    ensure_model()
    serve(host=host, port=port, worker=True)


@app.command("worker")
def worker_command() -> None:
    """Route received inquiries until interrupted (the API's worker, on its own)."""
    from .routing import DeskMap, DeskMapError
    from .runtime import PipelineHolder
    from .store import InquiryStore
    from .worker import Worker, stop_with_parent

    settings = _settings()
    _logging()
    try:
        DeskMap.from_yaml(settings.desks_path)
        holder = PipelineHolder(settings)
        holder.load()
    except DeskMapError as error:
        raise fail(str(error)) from None
    except Exception as error:
        raise fail(f"cannot load the model: {error}") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop_with_parent(stop)
    Worker(settings, InquiryStore(settings.resolved_database_url), holder).run(stop)


# ---------------------------------------------------------------------------- training


@app.command()
def train(
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="a known dataset (banking77, banking77-oos, clinc150), `corrections` (what "
            "desks corrected) or a CSV/JSONL file with text,label; repeat to combine",
        ),
    ] = None,
    model_name: Annotated[str | None, typer.Option(help="registered model name")] = None,
    kind: Annotated[
        ModelKind, typer.Option(help="model kind (docs/model.md compares them)")
    ] = DEFAULT_KIND,
    epochs: Annotated[int, typer.Option(min=1, max=50, help="fine-tuning epochs")] = 4,
    seed: Annotated[int, typer.Option(help="random seed (splits, solver)")] = 0,
    limit_per_class: Annotated[
        int | None, typer.Option(min=1, help="train on at most N examples per label")
    ] = None,
    promote: Annotated[
        Promote,
        typer.Option(
            help="auto: champion if there is none, else @challenger, promoted when it beats "
            "the champion on the same data (the rule in docs/model.md)"
        ),
    ] = Promote.AUTO,
    refit: Annotated[
        bool,
        typer.Option(
            help="once its figures are taken, train the model again on all of its data, the "
            "examples held out of a file for the figures included"
        ),
    ] = True,
) -> None:
    """Train a model, log the run to MLflow and register it as a new version."""
    from .lifecycle.sources import TrainingError
    from .lifecycle.training import train as run_training

    settings = _settings()
    sources = data or [DEFAULT_DATA]
    # Fine-tuning logs a line per epoch: in a log file, where there is no progress bar.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("inquiry_router").setLevel(logging.INFO)
    report = _run_steps(
        "training",
        lambda step: run_training(
            settings,
            sources,
            model_name=model_name,
            kind=kind.value,
            seed=seed,
            limit_per_class=limit_per_class,
            promote=promote.value,
            epochs=epochs,
            refit=refit,
            step=step,
        ),
        errors=(TrainingError,),
    )
    registered = report.registered
    evaluation = report.evaluation
    table = Table(title=f"{registered.name} version {registered.version}", show_header=False)
    table.add_row("training examples / intents", f"{report.n_train:,} / {report.n_classes}")
    table.add_row("held-out examples", f"{evaluation.n:,}")
    if report.n_final is not None and report.n_final != report.n_train:
        table.add_row(
            "registered model trained on",
            f"all {report.n_final:,} examples (the figures are of the model before)",
        )
    table.add_row("accuracy", f"{evaluation.accuracy:.4f}")
    table.add_row("macro-F1", f"{evaluation.macro_f1:.4f}")
    if evaluation.desk_accuracy is not None:
        table.add_row("desk accuracy", f"{evaluation.desk_accuracy:.4f}")
    table.add_row(
        f"auto-routed at threshold {evaluation.threshold:.3f}",
        f"{evaluation.coverage:.1%} with precision {evaluation.auto_precision:.4f}",
    )
    table.add_row("calibration error (ECE)", f"{evaluation.calibration_error:.4f}")
    table.add_row("languages read as written", ", ".join(report.native_languages))
    if report.calibration:
        table.add_row("thresholds chosen on", report.calibration)
    groups = {"native": "/".join(report.native_languages), "foreign": "other languages"}
    for group, expectation in report.expected.items():
        if group == "off_topic":
            low, high = expectation.routed_interval
            separation = (
                "" if report.off_topic_auroc is None else f"; AUROC {report.off_topic_auroc:.3f}"
            )
            table.add_row(
                "expected, off-topic examples",
                f"{1 - expectation.routed_share:.0%} sent to triage (95 % interval "
                f"{1 - high:.0%} to {1 - low:.0%}) of {expectation.n:,}{separation}",
            )
            continue
        table.add_row(f"expected, {groups.get(group, group)}", expectation.describe())
    if report.foreign_text:
        table.add_row("text in other languages", report.foreign_text)
    if "oos_recall" in evaluation.extra:
        table.add_row("out-of-scope sent to triage", f"{evaluation.extra['oos_recall']:.1%}")
    if report.encoder_source:
        table.add_row("encoder", f"{report.encoder} from {report.encoder_source}")
    if report.use_source:
        table.add_row("encoder (USE)", report.use_source)
    table.add_row("training time", f"{report.train_seconds:.1f} s")
    if report.expected_seconds is not None:
        table.add_row(
            "expected, said before it began",
            f"{report.expected_seconds / 60:.1f} min, evaluation included",
        )
    table.add_row("MLflow run", registered.run_id)
    if registered.is_champion:
        table.add_row("@champion", "yes")
    elif registered.is_challenger:
        table.add_row("@challenger", "yes")
    out.print(table)
    if report.comparison is not None:
        _print_comparison(report.comparison)


def _print_comparison(comparison: Any) -> None:
    """The champion-challenger table per desk, the rule, and what it decided."""
    old, new = comparison.champion, comparison.challenger
    table = Table(
        "desk",
        "n",
        f"accuracy v{old.version} → v{new.version}",
        "routed share",
        "routed precision",
        "triage rate",
        title=f"{comparison.name}: v{old.version} (@champion) against v{new.version} on "
        f"{comparison.n:,} held-out texts ({comparison.data})",
    )

    def pair(a: float, b: float) -> str:
        return f"{a:.3f} → {b:.3f}"

    for desk in sorted(set(old.per_desk) | set(new.per_desk)):
        a, b = old.per_desk.get(desk), new.per_desk.get(desk)
        if a is None or b is None:
            continue
        table.add_row(
            desk,
            str(b.n),
            pair(a.accuracy, b.accuracy),
            pair(a.routed_share, b.routed_share),
            pair(a.routed_precision, b.routed_precision),
            pair(a.triage_rate, b.triage_rate),
        )
    table.add_row(
        "all",
        str(new.n),
        pair(old.desk_accuracy, new.desk_accuracy),
        pair(old.routed_share, new.routed_share),
        pair(old.routed_precision, new.routed_precision),
        pair(old.triage_rate, new.triage_rate),
        style="bold",
    )
    out.print(table)
    if new.off_topic_to_triage is not None and old.off_topic_to_triage is not None:
        out.print(
            f"off-topic to triage: {old.off_topic_to_triage:.3f} → {new.off_topic_to_triage:.3f}"
        )
    out.print(f"rule: {comparison.rule}")
    verdict = "promote" if comparison.promote else "keep the champion"
    out.print(f"decision: {verdict} ({'; '.join(comparison.reasons)})")


def _run_steps(title: str, work: Any, errors: tuple[type[Exception], ...]) -> Any:
    """Run ``work(step)`` showing each step it reports, with elapsed time."""
    from .registry import quiet_mlflow

    quiet_mlflow()
    started = time.perf_counter()
    with console.status(f"{title}…") as status:

        def step(message: str) -> None:
            console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {message}")
            status.update(f"{title}: {message}")

        try:
            return work(step)
        except errors as error:
            raise fail(str(error)) from None


@app.command("ensure-model")
def ensure_model() -> None:
    """Train and register the default model if the registry has no @champion yet."""
    from .registry import ModelRegistry, quiet_mlflow

    quiet_mlflow()
    settings = _settings()
    champion = ModelRegistry(settings).champion(settings.model_name)
    if champion is not None:
        out.print(f"model {settings.model_name} @champion is version {champion}")
        return
    console.print(f"no @champion for {settings.model_name}: training the default model")
    train(
        data=[DEFAULT_DATA],
        model_name=None,
        kind=DEFAULT_KIND,
        seed=0,
        limit_per_class=None,
        promote=Promote.AUTO,
        epochs=4,
    )


@models_app.command("list")
def models_list() -> None:
    """Versions of the model, their metrics, and which is champion."""
    from .registry import ModelRegistry

    settings = _settings()
    rows = ModelRegistry(settings).versions(settings.model_name)
    if not rows:
        raise fail(f"no versions of {settings.model_name}; run `inquiry-router train`", code=1)
    table = Table("version", "alias", "kind", "accuracy", "desk accuracy")

    def figure(value: float | None) -> str:
        return f"{value:.4f}" if value is not None else "-"

    for row in rows:
        table.add_row(
            row["version"],
            "@champion" if row["champion"] else ("@challenger" if row["challenger"] else ""),
            row["kind"] or "-",
            figure(row["accuracy"]),
            figure(row["desk_accuracy"]),
        )
    out.print(table)
    # The lineage of each version, whole (a truncated run id or source is of no use).
    for row in rows:
        tags = row["tags"]
        line = f"v{row['version']}: trained on {row['sources'] or '-'} (seed {row['seed'] or '?'}"
        line += f", {row['corrections']} corrections)" if row["corrections"] else ")"
        if row["encoder"]:
            line += f"; encoder {row['encoder']}"
        if tags.get("promoted_by"):
            line += (
                f"; promoted {tags.get('promoted_at', '')[:10]} by {tags['promoted_by']}: "
                f"{tags.get('promoted_why', '')}"
            )
        if tags.get("rolled_back_by"):
            line += f"; rolled back by {tags['rolled_back_by']}: {tags.get('rolled_back_why', '')}"
        out.print(line + f"; run {row['run_id']}", highlight=False)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="version to serve")],
    reason: Annotated[str, typer.Option(help="why, recorded on the version")] = "by hand",
) -> None:
    """Make VERSION the @champion; running services switch to it. Who and why are recorded
    as tags on the version."""
    from .registry import ModelRegistry, RegistryError

    settings = _settings()
    try:
        ModelRegistry(settings).set_champion(
            settings.model_name, version, by=_user(), reason=reason
        )
    except RegistryError as error:
        raise fail(str(error)) from None
    out.print(f"{settings.model_name} @champion is now version {version}")


@models_app.command("rollback")
def models_rollback(
    reason: Annotated[str, typer.Option(help="why, recorded on the versions")] = "rollback",
) -> None:
    """Point @champion back at the previous champion (who and why are recorded)."""
    from .registry import ModelRegistry, RegistryError

    settings = _settings()
    try:
        version = ModelRegistry(settings).rollback(settings.model_name, by=_user(), reason=reason)
    except RegistryError as error:
        raise fail(str(error)) from None
    out.print(f"{settings.model_name} @champion is back at version {version}")


@models_app.command("compare")
def models_compare(
    champion: Annotated[str | None, typer.Argument(help="default: @champion")] = None,
    challenger: Annotated[str | None, typer.Argument(help="default: @challenger")] = None,
) -> None:
    """Two versions on the same held-out data, per desk, and what the promotion rule says;
    logged to MLflow. Promotes nothing."""
    from .lifecycle.promotion import PromotionError, compare

    settings = _settings()
    comparison = _run_steps(
        "comparing",
        lambda step: compare(settings, champion, challenger, step=step),
        errors=(PromotionError,),
    )
    _print_comparison(comparison)


@models_app.command("shadow-report")
def models_shadow_report(
    since: Annotated[
        str | None, typer.Option(help="only inquiries from this date (UTC) on")
    ] = None,
) -> None:
    """How @challenger would have routed the traffic it scored in shadow mode
    (INQUIRY_ROUTER_SHADOW=true), beside the @champion that routed it: agreement, and which was
    right where the desks said (an inquiry resolved where it was routed, or corrected)."""
    from .lifecycle.shadow import shadow_report

    settings = _settings()
    figures = shadow_report(settings.resolved_database_url, _since(since))
    if not figures:
        raise fail(
            "no inquiries scored in shadow mode yet: set INQUIRY_ROUTER_SHADOW=true with a "
            "@challenger registered",
            code=1,
        )
    table = Table(
        "champion → challenger",
        "scored",
        "same desk",
        "same intent",
        "judged (corrected)",
        "right: champion",
        "right: challenger",
        "to triage: champion / challenger",
    )
    for f in figures:
        table.add_row(
            f"v{f.champion} → v{f.challenger}",
            str(f.n),
            f"{f.same_desk:.1%}",
            f"{f.same_intent:.1%}",
            f"{f.judged} ({f.corrected})",
            f"{f.champion_right:.1%}",
            f"{f.challenger_right:.1%}",
            f"{f.champion_triage:.1%} / {f.challenger_triage:.1%}",
        )
    out.print(table)


@app.command()
def retrain(
    kind: Annotated[ModelKind, typer.Option(help="model kind")] = DEFAULT_KIND,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """For cron: train on INQUIRY_ROUTER_RETRAIN_SOURCES plus every correction, compare with
    @champion on the same data, promote only when the rule says so. One line of summary; a
    non-zero exit with the reason on failure."""
    from .lifecycle.retrain import RetrainError
    from .lifecycle.retrain import retrain as run_retrain

    settings = _settings()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    summary = _run_steps(
        "retraining",
        lambda step: run_retrain(settings, kind=kind.value, seed=seed, step=step),
        errors=(RetrainError,),
    )
    out.print(summary)


# ---------------------------------------------------------------------------- keys and database

keys_app = typer.Typer(
    help="Keys desks, systems and admins sign in with: create, list, revoke.",
    no_args_is_help=True,
)
db_app = typer.Typer(
    help="The inquiry database's schema (Alembic migrations).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")


def _store(settings: Settings) -> Any:
    from .store import InquiryStore

    try:
        return InquiryStore(settings.resolved_database_url)
    except Exception as error:
        database = without_password(settings.resolved_database_url)
        raise fail(f"cannot open {database}: {error}") from None


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="who or what uses it, e.g. 'Alice' or 'crm-sync'")],
    desk: Annotated[str | None, typer.Option(help="the desk the key acts for")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="an admin key: every desk")] = False,
) -> None:
    """Create a key and print it, once: only a hash is kept."""
    from .routing import DeskMap, DeskMapError
    from .store.keys import KeyProblem

    settings = _settings()
    if admin == (desk is not None):
        raise fail("give either --desk NAME or --admin")
    if desk is not None:
        try:
            desk_map = DeskMap.from_yaml(settings.desks_path)
        except (DeskMapError, OSError) as error:
            raise fail(str(error)) from None
        if desk not in desk_map.desks:
            raise fail(
                f"no desk {desk!r} in {settings.desks_path} (desks: {', '.join(desk_map.names)})"
            )
    try:
        key, token = _store(settings).keys.create(name, desk=desk, admin=admin)
    except KeyProblem as error:
        raise fail(str(error)) from None
    console.print(
        f"created key {key.id} for {key.name} ({key.scope}); it is shown once, keep it safe:"
    )
    out.print(token)


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, name, scope, created, last used, revoked. Never the key itself."""
    settings = _settings()
    keys = _store(settings).keys.list()
    if not keys:
        raise fail("no keys yet; the service makes an admin key on its first start", code=1)
    table = Table()
    table.add_column("id", no_wrap=True, min_width=12)
    for column in ("name", "scope", "created", "last used", "revoked"):
        table.add_column(column, overflow="fold")

    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else "-"

    for key in keys:
        table.add_row(
            key.id,
            key.name,
            key.scope,
            when(key.created_at),
            when(key.last_used_at),
            when(key.revoked_at),
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the id `keys list` shows")]) -> None:
    """Revoke a key: from the next request on, it opens nothing (signed-in pages included)."""
    from .store.keys import KeyProblem

    settings = _settings()
    try:
        key = _store(settings).keys.revoke(key_id)
    except KeyProblem as error:
        raise fail(str(error)) from None
    out.print(f"revoked key {key.id} ({key.name}, {key.scope})")


corrections_app = typer.Typer(
    help="What desks corrected (reroutes, triage assignments): the next model's lesson.",
    no_args_is_help=True,
)
app.add_typer(corrections_app, name="corrections")


def _since(value: str | None) -> Any:
    if value is None:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--since {value!r} is not a date like 2026-12-01 or 2026-12-01T09:00") from None


@corrections_app.command("list")
def corrections_list(
    since: Annotated[str | None, typer.Option(help="only from this date (UTC) on")] = None,
    desk: Annotated[str | None, typer.Option(help="only those from or to this desk")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many, oldest first")] = 1000,
) -> None:
    """Corrections, oldest first: when, from which desk to which, the model's intent and the
    desk's, who."""
    settings = _settings()
    items = _store(settings).corrections(limit=limit, since=_since(since), desk=desk)
    if not items:
        raise fail("no corrections" + (" matching that" if since or desk else " yet"), code=1)
    table = Table("id", "when", "from → to")
    table.add_column("model said", no_wrap=True)
    table.add_column("desk said", no_wrap=True)
    table.add_column("by")
    for item in items:
        table.add_row(
            str(item.id),
            item.created_at.strftime("%Y-%m-%d %H:%M"),
            f"{item.from_desk} → {item.corrected_desk}",
            f"{item.model_intent or '-'} {item.model_confidence or 0:.2f} v{item.model_version}",
            (item.corrected_intent or "-") + (" (new)" if item.new_intent else ""),
            item.by,
        )
    out.print(table)
    console.print(f"{len(items)} corrections")


@corrections_app.command("export")
def corrections_export(
    path: Annotated[Path, typer.Argument(help="a .csv or .jsonl file to write")],
    since: Annotated[str | None, typer.Option(help="only from this date (UTC) on")] = None,
    desk: Annotated[str | None, typer.Option(help="only those from or to this desk")] = None,
) -> None:
    """Write corrections as training rows: text, label, desk, model intent and version, who,
    when. The label is the intent the desk gave (or its desk's only one); empty for a
    correction that named only a desk with several intents, which training leaves out."""
    import pandas as pd

    from .lifecycle.corrections import label_of, training_text
    from .routing import DeskMap, DeskMapError

    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise fail(f"{path}: write a .csv or .jsonl file")
    settings = _settings()
    try:
        desk_map: DeskMap | None = DeskMap.from_yaml(settings.desks_path)
    except (DeskMapError, OSError):
        desk_map = None
    items = _store(settings).corrections(limit=None, since=_since(since), desk=desk)
    frame = pd.DataFrame(
        [
            {
                "text": training_text(item),
                "label": label_of(item, desk_map) or "",
                "desk": item.corrected_desk,
                "model_intent": item.model_intent,
                "model_desk": item.model_desk,
                "model_version": item.model_version,
                "by": item.by,
                "created_at": item.created_at.isoformat(),
                "kind": item.kind,
                "new_intent": item.new_intent,
            }
            for item in items
        ],
        columns=[
            "text",
            "label",
            "desk",
            "model_intent",
            "model_desk",
            "model_version",
            "by",
            "created_at",
            "kind",
            "new_intent",
        ],
    )
    try:
        if path.suffix.lower() == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_json(path, orient="records", lines=True, force_ascii=False)
    except OSError as error:
        raise fail(f"cannot write {path}: {error}") from None
    out.print(f"wrote {len(frame)} corrections to {path}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations the database lacks (every start does this too)."""
    from .store import make_engine, schema

    settings = _settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        before, after = schema.upgrade(engine)
    except Exception as error:
        database = without_password(settings.resolved_database_url)
        raise fail(f"cannot upgrade {database}: {error}") from None
    finally:
        engine.dispose()
    if before == after:
        out.print(f"the database is at revision {after}, the latest")
    else:
        out.print(f"upgraded the database from {before or 'empty'} to revision {after}")


@db_app.command("current")
def db_current() -> None:
    """The database's schema revision, and the latest this version of the product has."""
    from .store import make_engine, schema

    settings = _settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        revision = schema.current(engine)
    finally:
        engine.dispose()
    out.print(f"database: {revision or 'empty'}; latest: {schema.head()}")


# ---------------------------------------------------------------------------- classification


def _read_inquiries(path: Path) -> list[dict[str, Any]]:
    from .datasets import DatasetError, read_table

    try:
        frame = read_table(path, as_text=True)
    except DatasetError as error:
        raise fail(str(error)) from None
    if "text" not in frame.columns:
        raise fail(f"{path}: no 'text' column (columns: {', '.join(map(str, frame.columns))})")
    return frame.to_dict(orient="records")  # type: ignore[no-any-return]


def _optional(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


@app.command()
def classify(
    text: Annotated[str | None, typer.Argument(help="a message to classify")] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="CSV or JSONL with a 'text' column")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="JSONL file for the decisions")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="model URI, e.g. models:/inquiry-router/2 (default: @champion)"),
    ] = None,
    locale: Annotated[str | None, typer.Option(help="the sender's declared locale")] = None,
    batch_size: Annotated[
        int,
        typer.Option(
            min=1,
            max=10_000,
            help="inquiries per model call; larger batches pad less and run faster",
        ),
    ] = 1024,
) -> None:
    """Print the routing decision for TEXT, or classify a whole file into JSONL."""
    from .domain import InquiryText
    from .pipeline import build_pipeline
    from .registry import RegistryError, quiet_mlflow
    from .routing import DeskMapError

    if (text is None) == (input_file is None):
        raise fail("give either TEXT or --input FILE")
    if input_file is not None and output is None:
        raise fail("--input needs --output OUT.jsonl")
    if text is not None and not text.strip():
        raise fail("TEXT is empty")
    rows = _read_inquiries(input_file) if input_file is not None else []

    quiet_mlflow()
    settings = _settings()
    try:
        pipeline = build_pipeline(settings, model)
    except (RegistryError, DeskMapError) as error:
        raise fail(str(error)) from None

    if text is not None:
        print(
            json.dumps(
                pipeline.run_one(InquiryText(text, None, locale)).to_dict(),
                ensure_ascii=False,
                indent=2,
            )
        )
        return

    assert output is not None
    output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    empty = 0
    with (
        output.open("w", encoding="utf-8") as sink,
        Progress(
            TextColumn("classifying"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("classify", total=len(rows), rate="")
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            # Rows without text keep their line in the output, with the reason, so lines align.
            valid = [row for row in batch if _optional(row.get("text"))]
            empty += len(batch) - len(valid)
            decisions = iter(
                pipeline.run(
                    [
                        InquiryText(
                            str(_optional(row.get("text"))),
                            _optional(row.get("subject")),
                            _optional(row.get("locale")) or locale,
                        )
                        for row in valid
                    ]
                )
            )
            for row in batch:
                record: dict[str, Any] = (
                    next(decisions).to_dict()
                    if _optional(row.get("text"))
                    else {"error": "empty text"}
                )
                if _optional(row.get("id")) is not None:
                    record = {"id": row["id"], **record}
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            done = start + len(batch)
            elapsed = time.perf_counter() - started
            progress.update(task, completed=done, rate=f"{done / elapsed:,.0f}/s")
    elapsed = time.perf_counter() - started
    out.print(
        f"{len(rows):,} inquiries → {output} in {elapsed:.1f} s "
        f"({len(rows) / elapsed if elapsed else 0:,.0f} inquiries/s, "
        f"model {pipeline.classifier.ref.name} v{pipeline.classifier.ref.version})"
    )
    if empty:
        console.print(f"[yellow]warning:[/] {empty} row(s) had empty text: written as errors")


# ---------------------------------------------------------------------------- data


@data_app.command("list")
def data_list() -> None:
    """The datasets the product knows, with their canonical addresses."""
    from .datasets import DATASETS

    table = Table("name", "license", "files", "description")
    for spec in DATASETS.values():
        table.add_row(spec.name, spec.license, str(len(spec.files)), spec.description)
    out.print(table)


@data_app.command("fetch")
def data_fetch(
    names: Annotated[list[str], typer.Argument(help="dataset names")],
) -> None:
    """Obtain datasets (mirror, cache or download), verify checksums, say where each came from."""
    from .datasets import DatasetError, DatasetStore, dataset_spec

    settings = _settings()
    store = DatasetStore(settings)
    try:
        for name in names:
            for remote in dataset_spec(name).files:
                fetched = store.fetch(name, remote.name)
                out.print(f"{name}/{remote.name}: {fetched.source} ({fetched.origin})")
    except DatasetError as error:
        raise fail(str(error)) from None


@app.command("settings")
def settings_command(
    markdown: Annotated[
        bool, typer.Option(help="as docs/configuration.md: every setting, documented")
    ] = False,
) -> None:
    """The settings in effect (environment variables INQUIRY_ROUTER_*), or their documentation."""
    from .config import Settings, settings_markdown

    if markdown:
        print(settings_markdown(), end="")
        return
    settings = _settings()
    table = Table("setting", "value")
    for name in Settings.model_fields:
        value = without_password(str(getattr(settings, name)))
        table.add_row(name, value)
    out.print(table)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


# ---------------------------------------------------------------------------- benchmarks


@bench_app.command("classify")
def bench_classify_command(
    model: Annotated[str | None, typer.Option(help="model URI (default: @champion)")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="first N test examples only")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="the figures as one JSON object, for scripts")
    ] = False,
) -> None:
    """The served pipeline on Banking77's official test set: accuracy, desk routing, speed."""
    from .lifecycle.bench import bench_classify
    from .registry import RegistryError, quiet_mlflow

    quiet_mlflow()
    settings = _settings()
    try:
        result = bench_classify(settings, model, limit)
    except RegistryError as error:
        raise fail(str(error)) from None
    if as_json:
        typer.echo(json.dumps(result))
        return
    table = Table(title=f"Banking77 test, {result['model']}", show_header=False)
    table.add_row("examples", f"{result['n']:,}")
    table.add_row("intent accuracy", f"{result['accuracy']:.4f}")
    table.add_row("intent macro-F1", f"{result['macro_f1']:.4f}")
    table.add_row("desk accuracy (top intent's desk)", f"{result['desk_accuracy_top_intent']:.4f}")
    table.add_row(
        f"auto-routed at threshold {result['threshold']:.2f}",
        f"{result['auto_routed_coverage']:.1%} of inquiries",
    )
    table.add_row("desk precision of auto-routed", f"{result['auto_routed_desk_precision']:.4f}")
    table.add_row("throughput (whole pipeline)", f"{result['inquiries_per_s']:,.0f} inquiries/s")
    out.print(table)


@bench_app.command("routing")
def bench_routing_command(
    limit: Annotated[
        int | None, typer.Option(min=1, help="the first N of Banking77's test inquiries")
    ] = None,
    intake_rate: Annotated[
        float, typer.Option(min=1, help="inquiries/s web forms post during the second backlog")
    ] = 100.0,
    compare: Annotated[
        bool,
        typer.Option(
            help="measure `bench classify` on the same inquiries before and after, for the ratios"
        ),
    ] = True,
) -> None:
    """The served model routing in a real server (`serve`, as `make run` starts it): a backlog,
    the same while forms post, and the time from received to routed under light traffic."""
    from .lifecycle.service_bench import BenchError, bench_routing

    settings = _settings()
    result = _run_steps(
        "routing benchmark",
        lambda step: bench_routing(settings, limit, intake_rate, progress=step, compare=compare),
        errors=(BenchError,),
    )
    processes = result["worker_processes"]
    title = (
        f"the service routing {result['n']:,} inquiries, "
        + (f"{processes} worker processes" if processes else "worker thread")
        + f", batches of at most {result['worker_batch_size']:,}"
    )
    classify = result["classify_per_s"]

    def rate(value: float) -> str:
        return f"{value:,.0f} inquiries/s" + (f" ({value / classify:.0%})" if classify else "")

    table = Table(title=title, show_header=False)
    if classify:
        runs = " and ".join(f"{run:,.0f}" for run in result["classify_runs"])
        table.add_row(
            "bench classify, same inquiries (100 %)",
            f"{classify:,.0f} inquiries/s (before and after: {runs})",
        )
    table.add_row("backlog", rate(result["backlog_per_s"]))
    table.add_row(
        f"backlog while forms post {result['intake_rate']:g}/s",
        rate(result["with_intake_per_s"])
        + " routed"
        + (f", intake p99 {result['intake_p99_ms']:.0f} ms" if result["intake_p99_ms"] else ""),
    )
    table.add_row(
        f"received → routed, light traffic ({result['light_n']} inquiries)",
        f"p50 {result['light_p50_s']:.2f} s, p95 {result['light_p95_s']:.2f} s",
    )
    out.print(table)


@bench_app.command("intake")
def bench_intake_command(
    seconds: Annotated[float, typer.Option(min=1, help="how long to load the server")] = 15.0,
    connections: Annotated[int, typer.Option(min=1, max=1000, help="concurrent clients")] = 32,
) -> None:
    """POST /v1/inquiries against a real server with no worker: requests/s and latency."""
    from .lifecycle.service_bench import BenchError, bench_intake

    settings = _settings()
    result = _run_steps(
        "intake benchmark",
        lambda step: bench_intake(settings, seconds, connections, progress=step),
        errors=(BenchError,),
    )
    table = Table(title=f"intake, {connections} connections, {result['tool']}", show_header=False)
    table.add_row("requests", f"{result['requests']:,} ({result['errors']} errors)")
    table.add_row("requests/s", f"{result['requests_per_s']:,.0f}")
    table.add_row("latency", f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")
    out.print(table)


@bench_app.command("loop")
def bench_loop_command(
    left_out: Annotated[
        str, typer.Option(help="the Banking77 intent the first model never sees")
    ] = "cash_withdrawal_charge",
    corrections: Annotated[int, typer.Option(min=1, help="how many the desks correct")] = 50,
    kind: Annotated[ModelKind, typer.Option(help="model kind")] = ModelKind.ENSEMBLE,
) -> None:
    """The learning loop end to end in an empty home: train without one intent, serve, let the
    desks correct inquiries through the API, retrain, and score both versions."""
    from .lifecycle.loop_bench import bench_loop
    from .lifecycle.retrain import RetrainError
    from .lifecycle.service_bench import BenchError

    settings = _settings()
    result = _run_steps(
        "learning loop",
        lambda step: bench_loop(settings, left_out, corrections, kind.value, progress=step),
        errors=(BenchError, RetrainError),
    )
    table = Table(
        "figure",
        "before (v1)",
        "after (v2)",
        title=f"{result.left_out} ({result.desk} desk) left out; {result.corrected} of "
        f"{result.sent} inquiries corrected; {result.kind}",
    )
    for key, label in (
        ("left_out_routed_right", f"{result.left_out}: test texts routed to {result.desk}"),
        ("left_out_best_desk_right", f"{result.left_out}: best desk right"),
        ("others_desk_accuracy", "other intents: desk accuracy"),
        ("others_routed_share", "other intents: routed without a person"),
    ):
        table.add_row(label, f"{result.before[key]:.3f}", f"{result.after[key]:.3f}")
    table.add_row(
        "training / retraining time", f"{result.retrain_s[0]:.0f} s", f"{result.retrain_s[1]:.0f} s"
    )
    out.print(table)
    out.print(result.summary)


@bench_app.command("off-topic")
def bench_off_topic_command(
    kind: Annotated[
        ModelKind, typer.Option(help="the kind of classifier to train on BANKING77-OOS")
    ] = ModelKind.ENSEMBLE,
    published_labels: Annotated[
        bool,
        typer.Option(
            help="keep the labels as the files were published, shifted at the intents' "
            "boundaries (default: each question's label from Banking77)"
        ),
    ] = False,
) -> None:
    """Off-topic detection on BANKING77-OOS: trained on its train split with in-domain
    off-topic questions, reported on its validation split (in-scope routed and right,
    off-topic questions sent to triage, AUROC, the trade-off as the gate moves)."""
    from .classifier.encoders import EncoderError
    from .datasets import DatasetError
    from .lifecycle.bench import bench_off_topic

    settings = _settings()
    result = _run_steps(
        "off-topic benchmark",
        lambda step: bench_off_topic(settings, kind.value, step, not published_labels),
        errors=(DatasetError, EncoderError),
    )
    table = Table(title=f"BANKING77-OOS validation, {kind.value}", show_header=False)
    precision = result["routed_precision"]
    table.add_row("in-scope questions", f"{result['n_in_scope']:,}")
    corrected = result["labels_corrected"]
    table.add_row(
        "labels",
        "as published"
        if published_labels
        else f"from Banking77 ({corrected['train']:,} training and {corrected['valid']:,} "
        "validation questions corrected)",
    )
    table.add_row("intent accuracy", f"{result['accuracy']:.1%}")
    table.add_row(
        "in-scope routed",
        f"{result['in_scope_routed']:.1%}, "
        + ("none" if precision is None else f"{precision:.1%} of them to the right intent"),
    )
    table.add_row("in-domain off-topic sent to triage", f"{result['in_domain_to_triage']:.1%}")
    table.add_row(
        "out-of-domain off-topic sent to triage", f"{result['out_of_domain_to_triage']:.1%}"
    )
    for name in ("in-domain off-topic", "out-of-domain off-topic"):
        if f"auroc {name}" in result:
            table.add_row(f"off-topic score AUROC, {name}", f"{result[f'auroc {name}']:.3f}")
    gate = result["off_topic_threshold"]
    table.add_row(
        "thresholds",
        f"intent {result['threshold']:.3f}, off-topic "
        + ("none" if gate is None else f"{gate:.3f}")
        + f" ({result['calibration']})",
    )
    table.add_row("training time", f"{result['train_seconds']:.0f} s")
    out.print(table)
    if result["curve"]:
        curve = Table(
            "off-topic gate",
            "in-scope routed",
            "their precision",
            "in-domain to triage",
            "out-of-domain to triage",
            title="as the gate moves (intent threshold as trained)",
        )
        for row in result["curve"]:
            curve.add_row(
                "none" if row["gate"] == float("inf") else f"{row['gate']:.3f}",
                f"{row['in_scope_routed']:.1%}",
                f"{row['routed_precision']:.1%}",
                f"{row['in_domain_to_triage']:.1%}",
                f"{row['out_of_domain_to_triage']:.1%}",
            )
        out.print(curve)


@bench_app.command("language")
def bench_language_command(
    backend: Annotated[
        list[str] | None, typer.Option(help="backends to measure (default: all)")
    ] = None,
    restrict: Annotated[
        str, typer.Option(help="comma-separated expected languages, as INQUIRY_ROUTER_LANGUAGES")
    ] = "",
) -> None:
    """Language detection backends on xSID validation sentences (17 languages)."""
    from .language import make_backend
    from .lifecycle.bench import bench_language

    for name in backend or []:
        try:
            make_backend(name)
        except ValueError as error:
            raise fail(str(error)) from None
    settings = _settings()
    languages = [code.strip() for code in restrict.split(",") if code.strip()]
    rows = _run_steps(
        "language benchmark",
        lambda step: bench_language(settings, backend, languages, progress=step),
        errors=(ValueError,),
    )
    all_languages = sorted({language for row in rows for language in row["per_language"]})
    table = Table("backend", "acc. (supported)", "msgs/s", *all_languages, title="xSID validation")
    for row in rows:
        table.add_row(
            row["backend"],
            f"{row['accuracy_supported']:.4f}",
            f"{row['messages_per_s']:,.0f}",
            *[
                f"{row['per_language'][language]:.2f}"
                + ("" if language in row["languages_supported"] else "*")
                for language in all_languages
            ],
        )
    Console(width=250).print(table)  # standard output, wide
    out.print(
        "* not counted in 'acc. (supported)': a dialect (de-st, de-ba, gsw → de; nap → it) or a "
        "language the backend does not know"
    )


# ---------------------------------------------------------------------------- translation

translation_app = typer.Typer(
    help="Translation engines and Argos language packs.", no_args_is_help=True
)
app.add_typer(translation_app, name="translation")


@translation_app.command("list")
def translation_list() -> None:
    """Installed Argos packs and which engine translates each language."""
    from .translation import build_translator
    from .translation.packs import list_installed

    settings = _settings()
    packs = list_installed(settings.argos_dir)
    table = Table("pack", "version", "folder", title=f"Argos packs in {settings.argos_dir}")
    for pack in packs:
        table.add_row(f"{pack.from_code}→{pack.to_code}", pack.version, pack.path.name)
    out.print(table if packs else f"no Argos packs installed in {settings.argos_dir}")
    try:
        translator = build_translator(settings)
    except ValueError as error:
        raise fail(str(error)) from None
    coverage = Table("engine (in order)", "languages → English")
    for name, languages in translator.coverage().items():
        coverage.add_row(name, ", ".join(languages) or "none installed")
    out.print(coverage)


@translation_app.command("install")
def translation_install(
    languages: Annotated[
        list[str] | None, typer.Argument(help="source languages, e.g. de fr nl")
    ] = None,
    file: Annotated[
        list[Path] | None, typer.Option("--file", help="a downloaded .argosmodel file")
    ] = None,
) -> None:
    """Install Argos packs into models/argos: from the Argos index, or from files (air-gapped)."""
    from .translation.packs import PackError, install_from_file, install_from_index

    if not languages and not file:
        raise fail("name languages to download (e.g. `de fr`) or give --file PACK.argosmodel")
    settings = _settings()
    try:
        for path in file or []:
            pack = install_from_file(path, settings.argos_dir)
            out.print(f"installed {pack.from_code}→{pack.to_code} {pack.version} from {path}")
        for language in languages or []:
            pack = install_from_index(language.lower(), settings.argos_dir)
            out.print(
                f"installed {pack.from_code}→{pack.to_code} {pack.version} from the Argos index"
            )
    except PackError as error:
        raise fail(str(error)) from None


@bench_app.command("translation")
def bench_translation_command(
    language: Annotated[
        list[str] | None, typer.Option(help="xSID languages (default: all but English)")
    ] = None,
    kind: Annotated[
        ModelKind, typer.Option(help="the kind of classifier trained on English xSID")
    ] = ModelKind.TFIDF,
) -> None:
    """Translation engines on xSID validation: chrF and BLEU against the gold English, speed;
    then the classifier's intent accuracy on untranslated vs translated text."""
    from .classifier.encoders import EncoderError
    from .datasets import xsid_languages
    from .lifecycle.bench import bench_translation, bench_untranslated_routing

    unknown = [code for code in language or [] if code not in xsid_languages() or code == "en"]
    if unknown:
        known = ", ".join(code for code in xsid_languages() if code != "en")
        missing = ", ".join(unknown)
        raise fail(f"--language: xSID has no {missing} to compare with English ({known})")
    settings = _settings()
    rows = _run_steps(
        "translation benchmark",
        lambda step: bench_translation(settings, language, progress=step),
        errors=(ValueError,),
    )
    table = Table("language", "engine", "chrF", "BLEU", "sentences/s", title="xSID validation")
    for row in rows:
        speed = row["sentences_per_s"]
        table.add_row(
            row["language"],
            row["engine"],
            f"{row['chrf']:.1f}",
            f"{row['bleu']:.1f}",
            "-" if speed is None else f"{speed:,.0f}",
        )
    out.print(table)
    routing = _run_steps(
        "routing without translation",
        lambda step: bench_untranslated_routing(settings, language, kind=kind.value, progress=step),
        errors=(ValueError, EncoderError),
    )
    table = Table(
        "language",
        "text",
        "intent accuracy",
        "auto-routed",
        "their precision",
        title=f"{kind.value} trained on English xSID (5-fold by sentence, training recipe)",
    )
    for row in routing:
        precision = row["routed_precision"]
        table.add_row(
            row["language"],
            row["variant"],
            f"{row['accuracy']:.3f}",
            f"{row['coverage']:.1%}",
            "-" if precision is None else f"{precision:.1%}",
        )
    out.print(table)


@app.command()
def evaluate(
    data: Annotated[
        str,
        typer.Option(
            help="banking77, banking77-oos or clinc150 (with off-topic questions) or a "
            "CSV/JSONL file"
        ),
    ] = DEFAULT_DATA,
    model: Annotated[str | None, typer.Option(help="model URI (default: @champion)")] = None,
) -> None:
    """Evaluate a registered model on held-out data and log the report to MLflow."""
    from .datasets import DatasetError
    from .lifecycle.evaluate import evaluate_model
    from .registry import RegistryError

    settings = _settings()
    report = _run_steps(
        "evaluation",
        lambda step: evaluate_model(settings, data, model, step),
        errors=(RegistryError, DatasetError),
    )
    evaluation = report.evaluation
    table = Table(title=f"{report.model} on {report.data}", show_header=False)
    for name, value in evaluation.as_metrics().items():
        if name == "eval_n" or name.startswith("examples."):
            table.add_row(name, f"{value:,.0f}")  # counts
        else:
            table.add_row(name, f"{value:,.4f}" if isinstance(value, float) else str(value))
    table.add_row("MLflow run", report.run_id)
    out.print(table)
