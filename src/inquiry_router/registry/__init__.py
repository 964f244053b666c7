"""MLflow glue, and the only module that talks to MLflow: log a training run, register the model
as a version, move the ``@champion`` alias (promote, roll back), load a version for serving.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import mlflow
import mlflow.data
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc.model import PythonModel
from mlflow.tracking import MlflowClient

from ..classifier import TextClassifier, predictions_from_proba
from ..classifier.encoders import E5_FOLDER
from ..classifier.kinds import needs_e5
from ..config import Settings
from ..domain import ModelRef

CHAMPION = "champion"
CHALLENGER = "challenger"
# Digests of the texts a version learned from, one per line, in its run's artifacts.
TRAINED_ON = "training/texts.blake2b"
PREVIOUS_CHAMPION_TAG = "previous_champion"


class RegistryError(Exception):
    """A model or version is missing, or the registry refused an operation."""


class IntentModel(PythonModel):
    """The registered model: a scikit-learn estimator behind MLflow's pyfunc interface.

    ``predict`` takes a frame with a ``text`` column and returns the top intent, its probability
    and the runner-up, so the model also works outside this product (``mlflow models serve``,
    ``mlflow.pyfunc.spark_udf``). The service unwraps the estimator and reads it directly.
    """

    estimator: Any = None

    def load_context(self, context: Any) -> None:
        self.estimator = joblib.load(context.artifacts["estimator"])

    @property
    def classes_(self) -> Any:
        return self.estimator.classes_

    def predict_proba(self, texts: list[str]) -> Any:
        return self.estimator.predict_proba(texts)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        texts = model_input["text"].astype(str).tolist()
        predictions = predictions_from_proba(self.predict_proba(texts), list(self.classes_))
        return pd.DataFrame(
            {
                "intent": [p.intent for p in predictions],
                "confidence": [p.confidence for p in predictions],
                "runner_up": [p.runner_up or "" for p in predictions],
                "runner_up_confidence": [p.runner_up_confidence or 0.0 for p in predictions],
            }
        )


def recorded_encoder(params: Mapping[str, str]) -> str | None:
    """The transformer encoder a training run's model reads, by its parameters: ``encoder``;
    multilingual-e5-small for runs from before the encoder was a setting; None for a kind
    that reads none (tfidf, use)."""
    kind = params.get("kind")
    if kind is not None and not needs_e5(kind):
        return None
    return params.get("encoder", E5_FOLDER)


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    is_champion: bool
    metrics: dict[str, float]
    is_challenger: bool = False


def _pinned(*packages: str) -> list[str]:
    return [f"{package}=={metadata.version(package)}" for package in packages]


class ModelRegistry:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tracking_uri = settings.resolved_tracking_uri
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    # ------------------------------------------------------------------ experiments and runs

    def experiment_id(self) -> str:
        name = self.settings.mlflow_experiment
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        artifact_dir = self.settings.artifact_dir
        artifact_dir.mkdir(parents=True, exist_ok=True)
        return str(self.client.create_experiment(name, artifact_location=artifact_dir.as_uri()))

    def log_trained_model(
        self,
        *,
        estimator: Any,
        model_name: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        datasets: Mapping[str, pd.DataFrame],
        artifacts: Mapping[str, Path],
        sample_texts: list[str],
        promote: str = "auto",
        trained_on: set[str] | None = None,
    ) -> RegisteredVersion:
        """Log one training run and register its model as a new version of ``model_name``.

        promote: "auto" makes the first version champion and every later one @challenger (the
        comparison on the same data decides: ``lifecycle.promotion``); "always" makes it
        champion at once; "never" only registers it. ``trained_on``: digests of every text
        the model learned from (``sources.text_digests``), so that no comparison judges it on
        them.
        """
        experiment_id = self.experiment_id()
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params(dict(params))
            mlflow.set_tags(dict(tags))
            for context, frame in datasets.items():
                dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
                    frame, name=tags.get(f"{context}.name", context), targets="label"
                )
                mlflow.log_input(dataset, context=context)
            mlflow.log_metrics(dict(metrics))
            for path in artifacts.values():
                mlflow.log_artifact(str(path), artifact_path="evaluation")
            if trained_on is not None:
                mlflow.log_text("\n".join(sorted(trained_on)), TRAINED_ON)

            with tempfile.TemporaryDirectory() as scratch:
                estimator_path = Path(scratch) / "estimator.joblib"
                joblib.dump(estimator, estimator_path)
                example = pd.DataFrame({"text": sample_texts[:5]})
                wrapper = IntentModel()
                wrapper.estimator = estimator
                signature = infer_signature(example, wrapper.predict(None, example))
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                    artifacts={"estimator": str(estimator_path)},
                    signature=signature,
                    input_example=example,
                    pip_requirements=_pinned("scikit-learn", "pandas", "numpy", "inquiry-router"),
                    registered_model_name=model_name,
                )
            version = str(info.registered_model_version)
            mlflow.set_tag("registered_version", version)

        self.client.set_model_version_tag(
            model_name, version, "eval_data", tags.get("eval_data", "unknown")
        )
        champion = self.champion(model_name)
        should_promote = promote == "always" or (promote == "auto" and champion is None)
        if should_promote:
            self.set_champion(model_name, version, by="training", reason="first version")
        elif promote == "auto":
            self.client.set_registered_model_alias(model_name, CHALLENGER, version)
        return RegisteredVersion(
            name=model_name,
            version=version,
            run_id=run.info.run_id,
            is_champion=should_promote,
            metrics=dict(metrics),
            is_challenger=promote == "auto" and not should_promote,
        )

    def log_evaluation(
        self,
        ref: ModelRef,
        data: str,
        metrics: Mapping[str, float],
        artifacts: Sequence[Path],
    ) -> str:
        """An evaluation of a registered version, as a run of its own; returns the run id."""
        experiment_id = self.experiment_id()
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"evaluate {data}") as run:
            mlflow.set_tags(
                {"evaluation.data": data, "model.uri": ref.uri, "model.version": ref.version}
            )
            mlflow.log_metrics(dict(metrics))
            for path in artifacts:
                mlflow.log_artifact(str(path), artifact_path="evaluation")
        return str(run.info.run_id)

    def log_comparison(
        self,
        name: str,
        champion: str,
        challenger: str,
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        per_desk: Mapping[str, Any],
    ) -> str:
        """A champion-challenger comparison, as a run of its own with the per-desk table."""
        experiment_id = self.experiment_id()
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"compare v{champion} v{challenger}"
        ) as run:
            mlflow.set_tags(
                {**tags, "model.name": name, "champion": champion, "challenger": challenger}
            )
            mlflow.log_metrics(dict(metrics))
            mlflow.log_dict(dict(per_desk), "comparison/per_desk.json")
        return str(run.info.run_id)

    # ------------------------------------------------------------------ versions and aliases

    def champion(self, name: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(name, CHAMPION).version)
        except MlflowException:
            return None

    def champion_params(self, name: str) -> dict[str, str] | None:
        """The parameters of the champion's training run (``kind``, ``encoder``, ...); None
        when there is no champion."""
        version = self.champion(name)
        if version is None:
            return None
        run_id = self.client.get_model_version(name, version).run_id
        return dict(self.client.get_run(run_id).data.params) if run_id else {}

    def challenger(self, name: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(name, CHALLENGER).version)
        except MlflowException:
            return None

    def run_params(self, name: str, version: str) -> dict[str, str]:
        """The parameters of a version's training run (sources, seed, kind, ...)."""
        run_id = self._require_version(name, version).run_id
        return dict(self.client.get_run(run_id).data.params) if run_id else {}

    def trained_on(self, name: str, version: str) -> set[str] | None:
        """Digests of the texts a version learned from; None for a version that did not
        record them (registered before they were: it learned from its training split only)."""
        run_id = self._require_version(name, version).run_id
        if not run_id:
            return None
        try:
            text = mlflow.artifacts.load_text(f"runs:/{run_id}/{TRAINED_ON}")
        except (MlflowException, OSError):
            return None
        return set(text.split())

    def run_tags(self, name: str, version: str) -> dict[str, str]:
        run_id = self._require_version(name, version).run_id
        return dict(self.client.get_run(run_id).data.tags) if run_id else {}

    def set_champion(self, name: str, version: str, by: str = "", reason: str = "") -> None:
        """Make ``version`` the champion, noting on it who did it and why; the challenger
        alias leaves it."""
        self._require_version(name, version)
        current = self.champion(name)
        if current is not None and current != version:
            self.client.set_registered_model_tag(name, PREVIOUS_CHAMPION_TAG, current)
        self.client.set_registered_model_alias(name, CHAMPION, version)
        if self.challenger(name) == version:
            self.client.delete_registered_model_alias(name, CHALLENGER)
        if by or reason:
            self._stamp(name, version, "promoted", by, reason)

    def rollback(self, name: str, by: str = "", reason: str = "") -> str:
        """Make the previous champion the champion again; returns its version."""
        try:
            model = self.client.get_registered_model(name)
        except MlflowException:
            raise RegistryError(f"no registered model named {name!r}") from None
        previous = str(model.tags.get(PREVIOUS_CHAMPION_TAG) or "")
        if not previous:
            raise RegistryError(f"{name} has no previous champion to roll back to")
        current = self.champion(name)
        self.set_champion(name, previous, by=by, reason=reason or "rollback")
        if current is not None:
            self._stamp(name, current, "rolled_back", by, reason)
        return str(previous)

    def _stamp(self, name: str, version: str, what: str, by: str, reason: str) -> None:
        """Who did ``what`` (promoted, rolled_back) to a version, why and when, as its tags."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for key, value in ((f"{what}_by", by), (f"{what}_why", reason), (f"{what}_at", stamp)):
            self.client.set_model_version_tag(name, version, key, value[:500])

    def versions(self, name: str) -> list[dict[str, Any]]:
        champion = self.champion(name)
        challenger = self.challenger(name)
        rows = []
        for version in self.client.search_model_versions(f"name = '{name}'"):
            data = self.client.get_run(version.run_id).data if version.run_id else None
            metrics = dict(data.metrics) if data else {}
            params = dict(data.params) if data else {}
            kind = params.get("kind")
            rows.append(
                {
                    "version": str(version.version),
                    "champion": str(version.version) == champion,
                    "challenger": str(version.version) == challenger,
                    "sources": params.get("sources"),
                    "seed": params.get("seed"),
                    "corrections": (dict(data.tags) if data else {}).get("corrections.used"),
                    "desk_accuracy": metrics.get("desk_accuracy"),
                    "tags": dict(version.tags),
                    "created": version.creation_timestamp,
                    "run_id": version.run_id,
                    "kind": kind,
                    "encoder": recorded_encoder(params) if kind else None,
                    "accuracy": metrics.get("accuracy"),
                    "macro_f1": metrics.get("macro_f1"),
                }
            )
        return sorted(rows, key=lambda row: int(row["version"]))

    def version_metrics(self, name: str, version: str) -> dict[str, float]:
        run_id = self._require_version(name, version).run_id
        return dict(self.client.get_run(run_id).data.metrics) if run_id else {}

    def _require_version(self, name: str, version: str) -> Any:
        try:
            return self.client.get_model_version(name, version)
        except MlflowException:
            raise RegistryError(f"{name} has no version {version!r}") from None

    # ------------------------------------------------------------------ loading

    def resolve(self, uri: str | None) -> ModelRef:
        """A model URI (default: the champion) pinned to a concrete version where it has one."""
        name = self.settings.model_name
        if uri is None:
            version = self.champion(name)
            if version is None:
                raise RegistryError(
                    f"no @{CHAMPION} for model {name!r} in {self.tracking_uri}; "
                    "train one with `inquiry-router train`"
                )
            return ModelRef(name, version, f"models:/{name}/{version}")
        if uri.startswith("models:/"):
            target = uri.removeprefix("models:/")
            if "@" in target:
                model_name, alias = target.split("@", 1)
                try:
                    version = str(self.client.get_model_version_by_alias(model_name, alias).version)
                except MlflowException:
                    raise RegistryError(f"{model_name} has no alias @{alias}") from None
            else:
                model_name, _, version = target.partition("/")
                self._require_version(model_name, version)
            return ModelRef(model_name, version, f"models:/{model_name}/{version}")
        return ModelRef(uri, "unregistered", uri)

    def load(self, uri: str | None = None) -> TextClassifier:
        ref = self.resolve(uri)
        try:
            loaded = mlflow.pyfunc.load_model(ref.uri)
        except (MlflowException, OSError) as error:
            raise RegistryError(f"cannot load model {ref.uri}: {error}") from error
        return TextClassifier(loaded.unwrap_python_model().estimator, ref)


def quiet_mlflow() -> None:
    """MLflow prints migration and emoji banners; the CLI has its own progress output."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
