"""MlflowRegistry: model versions, runs and stages on an MLflow tracking server.

How the registry port maps onto MLflow (3.x):
  save                one run in the experiment (context=train): params, per-epoch metrics
                      (`epoch/<name>`, step = epoch from 1), final metrics, data-seen tags,
                      plots and the feature config; the model logged as a pyfunc that takes
                      raw ride columns; then a new version of the registered model. A failure
                      before the version exists marks the run FAILED and registers nothing.
  stages              aliases (`production`, `staging`, configurable). Archived is a version
                      tag `taxifare.stage=Archived`; the legacy MLflow stage follows if asked.
  promote             moves the alias, archives the previous holder, records who, when and
                      which version it replaced in version tags (MLflow keeps no history).
  record_evaluation   one run (context=evaluate) linked to the version by tags and params,
                      plus a `taxifare.last_evaluation` tag on the version.
What `ModelVersion` reports comes from version tags written by `save`, so `list` is one
search, not one call per version.

mlflow is imported on first use: importing this module stays cheap.
"""

from __future__ import annotations

import builtins
import functools
import json
import math
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxifare_cli.errors import (
    ConfigError,
    MissingExtraError,
    NotFoundError,
    ServiceError,
    TaxifareError,
    UsageError,
)
from taxifare_cli.ports import STAGES, ModelRef, ModelVersion, Promotion, Stage, TrainingRecord

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion
    from mlflow.models import ModelSignature
    from mlflow.pyfunc import PythonModel

    from taxifare_cli.artifact import FareModel
    from taxifare_cli.settings import Settings

MODEL_ARTIFACT = "fare_model"  # the FareModel directory inside the pyfunc model
LOGGED_MODEL_NAME = "model"
PREDICTION_COLUMN = "fare_amount"
TAG = "taxifare."
STAGE_TAG = TAG + "stage"
CONTEXT_TAG = "context"  # "train" or "evaluate"
PROMOTION_LOG_TAG = TAG + "promotions"  # on the registered model: the last promotions, JSON
PROMOTION_LOG_LENGTH = 200
DEFAULT_RETRIES = 3

# Environment MLflow reads at call time. setdefault: a user's own value wins.
MLFLOW_ENV_DEFAULTS: dict[str, str] = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # The client writes run URLs to stdout when a run ends; stdout carries our results.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(DEFAULT_RETRIES),
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}
_KNOWN_SCHEMES = ("http", "https", "databricks", "file", "sqlite", "postgresql", "mysql", "mssql")
_SECRET_KEY = re.compile(r"token|secret|password|passwd|credential|api_?key", re.IGNORECASE)
_UNREACHABLE = (
    "Max retries exceeded",
    "Connection refused",
    "Failed to establish a new connection",
    "NameResolutionError",
    "Name or service not known",
    "timed out",
    "RemoteDisconnected",
    "Connection aborted",
)

# The file MLflow runs to rebuild the model ("models from code": no pickle to load).
PYFUNC_SCRIPT = '''\
"""The taxifare fare model as an MLflow pyfunc: raw ride columns in, fares out."""
import mlflow

from taxifare_cli.adapters.registry.mlflow import fare_pyfunc

mlflow.models.set_model(fare_pyfunc())
'''


class MlflowRegistry:
    """The ModelRegistry port on an MLflow tracking server and its model registry."""

    kind = "mlflow"

    def __init__(
        self,
        tracking_uri: str,
        *,
        experiment: str = "taxifare",
        model_name: str = "taxifare",
        tracking_token: str | None = None,
        production_alias: str = "production",
        staging_alias: str = "staging",
        legacy_stages: bool = False,
        timeout_s: float = 30.0,
    ) -> None:
        self.tracking_uri = _check_uri(tracking_uri)
        if production_alias == staging_alias:
            raise ConfigError(
                f"mlflow.production_alias and mlflow.staging_alias are both {production_alias!r}",
                hint="give the two stages different aliases",
            )
        self.experiment = experiment
        self.model_name = model_name
        self.aliases: dict[Stage, str] = {"Production": production_alias, "Staging": staging_alias}
        self.legacy_stages = legacy_stages
        self.timeout_s = timeout_s
        for key, value in MLFLOW_ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, math.ceil(timeout_s))))
        if tracking_token:
            # MLflow's REST client reads its bearer token from the environment only.
            os.environ["MLFLOW_TRACKING_TOKEN"] = tracking_token
        self._client_obj: MlflowClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MlflowRegistry:
        m = settings.mlflow
        if not m.tracking_uri:
            raise ConfigError(
                "no MLflow tracking server is configured",
                hint="set MLFLOW_TRACKING_URI or mlflow.tracking_uri in taxifare.toml, "
                "e.g. http://127.0.0.1:5000",
            )
        _require_mlflow()
        return cls(
            m.tracking_uri,
            experiment=m.experiment,
            model_name=m.model_name,
            tracking_token=m.tracking_token.get_secret_value() if m.tracking_token else None,
            production_alias=m.production_alias,
            staging_alias=m.staging_alias,
            legacy_stages=m.legacy_stages,
            timeout_s=m.timeout_s,
        )

    def __repr__(self) -> str:
        return f"MlflowRegistry({self.tracking_uri!r}, model_name={self.model_name!r})"

    # -- the port ---------------------------------------------------------------------

    def save(self, artifact_dir: Path, record: TrainingRecord) -> ModelVersion:
        """One run, one logged pyfunc, one new version; all or nothing."""
        client = self._client()
        with (
            tempfile.TemporaryDirectory(prefix="taxifare-mlflow-") as tmp,
            self._errors("registering a new model version"),
        ):
            tmpdir = Path(tmp)
            # Everything local first: a plot or a copy that fails leaves no run behind.
            run_files = _run_artifacts(artifact_dir, record, tmpdir / "run")
            model_files = _pyfunc_files(artifact_dir, tmpdir / "model")
            experiment_id = self._experiment_id()
            run = client.create_run(
                experiment_id, run_name=_train_run_name(record), tags=self._train_tags(record)
            )
            run_id: str = run.info.run_id
            version: MlflowModelVersion | None = None
            try:
                self._log_training(run_id, record, run_files)
                model_id = self._log_pyfunc(run_id, experiment_id, record, model_files)
                self._ensure_registered_model()
                version = client.create_model_version(
                    self.model_name,
                    source=f"models:/{model_id}",
                    run_id=run_id,
                    tags=self._version_tags(record),
                    model_id=model_id,
                    await_creation_for=max(30, int(self.timeout_s)),
                )
                client.set_terminated(run_id, "FINISHED")
            except BaseException:
                if version is not None:
                    _quietly(client.delete_model_version, self.model_name, version.version)
                _quietly(client.set_terminated, run_id, "FAILED")
                raise
            return self._to_port(version, {}, [])

    def get(self, ref: ModelRef) -> ModelVersion:
        with self._errors(f"reading {ref} of model {self.model_name!r}"):
            mv, aliases = self._resolve(ref)
            return self._to_port(mv, aliases, self._evaluations(int(mv.version)).get(int(mv.version), []))

    def fetch_artifact(self, ref: ModelRef, dest: Path) -> tuple[ModelVersion, Path]:
        """Download the FareModel directory of `ref` into a new directory under `dest`."""
        client = self._client()
        import mlflow.artifacts

        with self._errors(f"downloading {ref} of model {self.model_name!r}"):
            mv, aliases = self._resolve(ref)
            model_id = _model_id(mv)
            if model_id is not None:
                root = client.get_logged_model(model_id).artifact_location.rstrip("/")
            else:  # registered from a run's artifacts by something other than taxifare
                root = str(mv.source).rstrip("/")
            dest.mkdir(parents=True, exist_ok=True)
            target = Path(tempfile.mkdtemp(prefix=f"v{mv.version}-", dir=dest))
            try:
                path = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{root}/artifacts/{MODEL_ARTIFACT}",
                    dst_path=str(target),
                    tracking_uri=self.tracking_uri,
                )
            except Exception as e:
                missing = getattr(e, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
                if missing or "404 Client Error" in str(e) or isinstance(e, FileNotFoundError):
                    raise NotFoundError(
                        f"version {mv.version} of MLflow model {self.model_name!r} holds no taxifare "
                        f"model ({MODEL_ARTIFACT} is missing)",
                        hint="it was registered by something else: train one with "
                        "`taxifare model train --target mlflow`",
                    ) from e
                raise
            return self._to_port(mv, aliases, []), Path(path)

    def list(self) -> list[ModelVersion]:
        client = self._client()
        with self._errors(f"listing versions of model {self.model_name!r}"):
            aliases = self._aliases(missing_ok=True)
            if aliases is None:
                return []
            versions: list[MlflowModelVersion] = []
            token: str | None = None
            while True:
                page = client.search_model_versions(
                    f"name = {_quote(self.model_name)}", max_results=1000, page_token=token
                )
                versions.extend(page)
                token = page.token
                if not token:
                    break
            evaluations = self._evaluations(None)
            return sorted(
                (self._to_port(v, aliases, evaluations.get(int(v.version), [])) for v in versions),
                key=lambda mv: mv.version,
            )

    def promote(self, version: int, stage: Stage, *, by: str) -> Promotion:
        if stage not in STAGES:
            raise UsageError(f"unknown stage {stage!r}: choose one of {', '.join(STAGES)}")
        client = self._client()
        with self._errors(f"moving version {version} of model {self.model_name!r} to {stage}"):
            mv, aliases = self._resolve(ModelRef(version=version))
            at = datetime.now(UTC)
            when = at.isoformat(timespec="seconds")
            name, number = self.model_name, str(version)
            target_alias = self.aliases.get(stage)
            # A version is in one stage at a time: drop the other stage's alias if it holds it.
            for alias in self.aliases.values():
                if alias != target_alias and aliases.get(alias) == number:
                    client.delete_registered_model_alias(name, alias)
            previous: int | None = None
            if target_alias is not None:
                held = aliases.get(target_alias)
                previous = int(held) if held is not None and held != number else None
                client.set_registered_model_alias(name, target_alias, number)
            if previous is not None:
                for key, value in {
                    STAGE_TAG: "Archived",
                    TAG + "archived_at": when,
                    TAG + "archived_by": by,
                    TAG + "replaced_by_version": number,
                }.items():
                    client.set_model_version_tag(name, str(previous), key, value)
            from_stage = _stage_of(mv, aliases, self.aliases)
            tags = {
                TAG + "promoted_at": when,
                TAG + "promoted_by": by,
                TAG + "promoted_from_stage": from_stage,
            }
            stale = [] if stage == "None" else [TAG + "archived_at", TAG + "archived_by"]
            if previous is not None:
                tags[TAG + "replaced_version"] = str(previous)
            else:
                stale.append(TAG + "replaced_version")
            if stage == "None":
                stale.append(STAGE_TAG)
            else:
                tags[STAGE_TAG] = stage
            for key in stale:
                if key in (mv.tags or {}):
                    client.delete_model_version_tag(name, number, key)
            for key, value in tags.items():
                client.set_model_version_tag(name, number, key, value)
            if self.legacy_stages:
                self._transition_legacy(number, stage)
                if previous is not None:
                    self._transition_legacy(str(previous), "Archived")
            promotion = Promotion(version, stage, previous, at, by)
            self._append_promotion(promotion)
            return promotion

    def record_evaluation(self, version: int, evaluation: dict[str, Any]) -> None:
        client = self._client()
        with self._errors(f"recording an evaluation of version {version} of model {self.model_name!r}"):
            mv, _ = self._resolve(ModelRef(version=version))
            experiment_id = self._experiment_id()
            dataset = str(evaluation.get("dataset", ""))
            text = json.dumps(evaluation, sort_keys=True, default=str)
            tags = {
                CONTEXT_TAG: "evaluate",
                TAG + "model_name": self.model_name,
                TAG + "model_version": str(version),
                TAG + "evaluation": text,
                **{
                    f"{TAG}data.{k}": str(v)
                    for k, v in evaluation.items()
                    if k in ("dataset", "source", "checksum", "rows") and v is not None
                },
            }
            run = client.create_run(
                experiment_id, run_name=f"evaluate v{version} on {dataset}".strip(), tags=tags
            )
            run_id = run.info.run_id
            try:
                params = {"model_name": self.model_name, "model_version": str(version)}
                params.update(
                    {k: str(v) for k, v in evaluation.items() if k in ("dataset", "source", "checksum") and v}
                )
                _log_batch(client, run_id, params=params)
                for key, value in evaluation.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        # Linked to the logged model, so the model's page shows its evaluations.
                        client.log_metric(run_id, key, float(value), step=0, model_id=_model_id(mv))
                client.set_terminated(run_id, "FINISHED")
            except BaseException:
                _quietly(client.set_terminated, run_id, "FAILED")
                raise
            last = json.dumps({**evaluation, "run_id": run_id}, sort_keys=True, default=str)
            client.set_model_version_tag(self.model_name, str(version), TAG + "last_evaluation", last)

    def promotions(self) -> builtins.list[dict[str, Any]]:
        """The last promotions of this model, oldest first (kept in a registered-model tag)."""
        with self._errors(f"reading the promotions of model {self.model_name!r}"):
            rm = self._registered_model(missing_ok=True)
            if rm is None:
                return []
            log: builtins.list[dict[str, Any]] = json.loads(rm.tags.get(PROMOTION_LOG_TAG, "[]"))
            return log

    # -- MLflow plumbing --------------------------------------------------------------

    def _client(self) -> MlflowClient:
        if self._client_obj is None:
            _require_mlflow()
            from mlflow import MlflowClient

            self._client_obj = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client_obj

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """MLflow's exceptions as one-line taxifare errors; MLflow's prints kept off stdout."""
        try:
            with redirect_stdout(sys.stderr):
                yield
        except TaxifareError:
            raise
        except Exception as e:
            mapped = self._map_error(e, action)
            if mapped is None:
                raise
            raise mapped from e

    def _map_error(self, e: Exception, action: str) -> TaxifareError | None:
        from mlflow.exceptions import MlflowException

        text = str(e)
        first = text.strip().splitlines()[0][:300] if text.strip() else type(e).__name__
        code = getattr(e, "error_code", None)
        status = getattr(getattr(e, "response", None), "status_code", None) or _status_in(text)
        where = f"the MLflow server at {self.tracking_uri}"
        retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "")
        tries = f"tried {int(retries) + 1} times" if retries.isdigit() else "after retries"
        if any(s in text for s in _UNREACHABLE) or _is_connection_error(e):
            return ServiceError(
                f"cannot reach {where} while {action} ({tries})",
                hint="start the server, or fix MLFLOW_TRACKING_URI / mlflow.tracking_uri",
            )
        if code in ("PERMISSION_DENIED", "UNAUTHENTICATED") or status in (401, 403):
            return ServiceError(
                f"{where} refused {action}: permission denied",
                hint="set a valid token in MLFLOW_TRACKING_TOKEN / mlflow.tracking_token, or "
                "ask for access to the experiment and the registered model",
            )
        if code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
            return NotFoundError(f"MLflow has no such resource while {action}: {first}")
        if code == "ENDPOINT_NOT_FOUND" or status in (404, 405):
            return ConfigError(
                f"{self.tracking_uri} does not answer like an MLflow tracking server "
                f"(HTTP {status or 404} while {action})",
                hint="MLFLOW_TRACKING_URI is the server's base URL, e.g. http://127.0.0.1:5000",
            )
        if "scheme" in text and "registered" in text.lower():
            return ConfigError(
                f"MLflow cannot use the tracking URI {self.tracking_uri!r}: {first}",
                hint="use the server's URL, e.g. http://127.0.0.1:5000",
            )
        if isinstance(e, MlflowException):
            return ServiceError(f"{where} failed while {action}: {first}", hint="see the server's log")
        return None

    def _experiment_id(self) -> str:
        """The id of the experiment runs go to; created if missing, refused if deleted."""
        from mlflow.exceptions import MlflowException

        experiment = self._experiment()
        if experiment is None:
            try:
                return str(self._client().create_experiment(self.experiment))
            except MlflowException as e:
                if e.error_code != "RESOURCE_ALREADY_EXISTS":  # else another process made it first
                    raise
            experiment = self._experiment()
            assert experiment is not None
        if experiment.lifecycle_stage == "deleted":
            raise ConfigError(
                f"the MLflow experiment {self.experiment!r} is deleted",
                hint="restore it with `mlflow experiments restore --experiment-id "
                f"{experiment.experiment_id}`, or choose another with MLFLOW_EXPERIMENT / mlflow.experiment",
            )
        return str(experiment.experiment_id)

    def _experiment(self) -> Any:
        return self._client().get_experiment_by_name(self.experiment)

    def _registered_model(self, *, missing_ok: bool = False) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self._client().get_registered_model(self.model_name)
        except MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            if missing_ok:
                return None
            raise NotFoundError(
                f"MLflow at {self.tracking_uri} has no registered model {self.model_name!r}",
                hint="train one with `taxifare model train --target mlflow`, or set "
                "MLFLOW_MODEL_NAME / mlflow.model_name",
            ) from None

    def _aliases(self, *, missing_ok: bool = False) -> dict[str, str] | None:
        """alias -> version number (as text) of the registered model."""
        rm = self._registered_model(missing_ok=missing_ok)
        if rm is None:
            return None
        return {str(k): str(v) for k, v in dict(rm.aliases or {}).items()}

    def _ensure_registered_model(self) -> None:
        from mlflow.exceptions import MlflowException

        if self._registered_model(missing_ok=True) is not None:
            return
        try:
            self._client().create_registered_model(
                self.model_name,
                description="WagonCab taxi fares in New York: raw ride columns in, fare in dollars out.",
            )
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def _resolve(self, ref: ModelRef) -> tuple[MlflowModelVersion, dict[str, str]]:
        from mlflow.exceptions import MlflowException

        aliases = self._aliases()
        assert aliases is not None
        if ref.version is not None:
            number = str(ref.version)
        elif ref.stage in self.aliases:
            alias = self.aliases[ref.stage]
            held = aliases.get(alias)
            if held is None:
                raise NotFoundError(
                    f"no version of MLflow model {self.model_name!r} is in {ref.stage} "
                    f"(alias @{alias} is not set)",
                    hint=f"promote one: taxifare model promote --version N --stage {ref.stage}",
                )
            number = held
        else:
            raise UsageError(f"cannot load by stage {ref.stage!r}: use Staging, Production or a version")
        try:
            return self._client().get_model_version(self.model_name, number), aliases
        except MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            raise NotFoundError(
                f"model version {number} does not exist in MLflow model {self.model_name!r}",
                hint="see `taxifare model ls`",
            ) from None

    def _evaluations(self, version: int | None) -> dict[int, builtins.list[dict[str, Any]]]:
        """Evaluation runs of this model (or of one version), by version, oldest first."""
        experiment = self._experiment()
        if experiment is None or experiment.lifecycle_stage == "deleted":
            return {}
        query = (
            f"tags.{CONTEXT_TAG} = 'evaluate' and tags.`{TAG}model_name` = {_quote(self.model_name)} "
            "and attributes.status = 'FINISHED'"
        )
        if version is not None:
            query += f" and tags.`{TAG}model_version` = '{version}'"
        found: dict[int, builtins.list[dict[str, Any]]] = {}
        token: str | None = None
        while True:
            page = self._client().search_runs(
                [experiment.experiment_id],
                filter_string=query,
                order_by=["attributes.start_time ASC"],
                max_results=1000,
                page_token=token,
            )
            for run in page:
                tags = run.data.tags
                try:
                    evaluation = json.loads(tags[TAG + "evaluation"])
                    number = int(tags[TAG + "model_version"])
                except (KeyError, ValueError):
                    continue
                found.setdefault(number, []).append({**evaluation, "run_id": run.info.run_id})
            token = page.token
            if not token:
                return found

    def _train_tags(self, record: TrainingRecord) -> dict[str, str]:
        tags = {
            CONTEXT_TAG: "train",
            TAG + "model_name": self.model_name,
            "mlflow.source.name": "taxifare model train",
        }
        if record.package_version:
            tags[TAG + "package_version"] = record.package_version
        if record.git_commit:
            tags[TAG + "git_commit"] = record.git_commit
            tags["mlflow.source.git.commit"] = record.git_commit
        if record.parent_version is not None:
            tags[TAG + "parent_version"] = str(record.parent_version)
        for split, seen in _data_items(record.data):
            for key, value in seen.items():
                if value is not None and not isinstance(value, dict | list):
                    tags[f"{TAG}data.{split}.{key}"] = str(value)
        tags["mlflow.note.content"] = _note(record)
        return tags

    def _version_tags(self, record: TrainingRecord) -> dict[str, str]:
        """What `get`/`list` report, stored with the version so one search returns it all."""
        tags = {
            TAG + "params": json.dumps(_safe_params(record.params), sort_keys=True, default=str),
            TAG + "metrics": json.dumps(record.metrics, sort_keys=True),
            TAG + "data": json.dumps(record.data, sort_keys=True, default=str),
        }
        if record.package_version:
            tags[TAG + "package_version"] = record.package_version
        if record.git_commit:
            tags[TAG + "git_commit"] = record.git_commit
        if record.parent_version is not None:
            tags[TAG + "parent_version"] = str(record.parent_version)
        return tags

    def _log_training(self, run_id: str, record: TrainingRecord, files: Path) -> None:
        from mlflow.entities import Metric

        client = self._client()
        now = _now_ms()
        metrics = [Metric(k, float(v), now, 0) for k, v in record.metrics.items() if _is_number(v)]
        for key, values in record.history.items():
            metrics.extend(
                Metric(f"epoch/{key}", float(v), now, epoch)
                for epoch, v in enumerate(values, start=1)
                if _is_number(v)
            )
        params = {k: _param_text(v) for k, v in _safe_params(record.params).items()}
        _log_batch(client, run_id, params=params, metrics=metrics)
        client.log_artifacts(run_id, str(files))

    def _log_pyfunc(self, run_id: str, experiment_id: str, record: TrainingRecord, files: Path) -> str:
        """Log the pyfunc as a LoggedModel of the run; its model id."""
        import mlflow
        import mlflow.pyfunc
        from mlflow.models import Model
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        # Model.log goes through MLflow's global client: point it at our server meanwhile.
        # (_use_tracking_uri unsets MLFLOW_TRACKING_URI on exit; put the user's value back.)
        user_uri = os.environ.get("MLFLOW_TRACKING_URI")
        try:
            with _use_tracking_uri(self.tracking_uri), _mlflow_chatter_hidden():
                logged = mlflow.initialize_logged_model(
                    name=LOGGED_MODEL_NAME,
                    source_run_id=run_id,
                    experiment_id=experiment_id,
                    params={k: _param_text(v) for k, v in _safe_params(record.params).items()},
                    tags={TAG + "model_name": self.model_name},
                )
                Model.log(
                    artifact_path=None,
                    name=LOGGED_MODEL_NAME,
                    flavor=mlflow.pyfunc,
                    run_id=run_id,
                    model_id=logged.model_id,
                    python_model=str(files / "taxifare_pyfunc.py"),
                    artifacts={MODEL_ARTIFACT: str(files / MODEL_ARTIFACT)},
                    code_paths=[str(files / "code" / "taxifare_cli")],
                    signature=pyfunc_signature(),
                    input_example=pyfunc_input_example(),
                    pip_requirements=pyfunc_requirements(),
                    metadata={"taxifare_version": record.package_version or "unknown"},
                )
        finally:
            if user_uri is not None:
                os.environ["MLFLOW_TRACKING_URI"] = user_uri
        return str(logged.model_id)

    def _transition_legacy(self, version: str, stage: Stage) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated since MLflow 2.9
            self._client().transition_model_version_stage(
                self.model_name, version, stage, archive_existing_versions=False
            )

    def _append_promotion(self, promotion: Promotion) -> None:
        rm = self._registered_model()
        log = json.loads(rm.tags.get(PROMOTION_LOG_TAG, "[]"))
        log.append(promotion.as_dict())
        self._client().set_registered_model_tag(
            self.model_name, PROMOTION_LOG_TAG, json.dumps(log[-PROMOTION_LOG_LENGTH:])
        )

    def _to_port(
        self, mv: MlflowModelVersion, aliases: dict[str, str], evaluations: builtins.list[dict[str, Any]]
    ) -> ModelVersion:
        tags: dict[str, str] = dict(mv.tags or {})
        parent = tags.get(TAG + "parent_version")
        return ModelVersion(
            version=int(mv.version),
            stage=_stage_of(mv, aliases, self.aliases),
            created_at=datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, UTC),
            params=_json_tag(tags, TAG + "params"),
            metrics=_json_tag(tags, TAG + "metrics"),
            data=_json_tag(tags, TAG + "data"),
            evaluations=evaluations,
            package_version=tags.get(TAG + "package_version"),
            git_commit=tags.get(TAG + "git_commit"),
            run_id=mv.run_id or None,
            parent_version=int(parent) if parent and parent.isdigit() else None,
        )


# -- the pyfunc model ---------------------------------------------------------------------


def predict_fares(model: FareModel, rides: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.Series:
    """Fares for raw rides, one per row, with the rides' index.

    `pickup_datetime` may be raw text (`2015-01-15 08:30:00 UTC`), ISO 8601 or datetimes
    (naive ones are UTC); `passenger_count` defaults to 1. Rides that cannot be priced
    (outside New York, 0 or more than 7 passengers, unparseable) raise ValueError, or get
    NaN with `params={"invalid_rides": "nan"}`.
    """
    import numpy as np
    import pandas as pd

    from taxifare_cli.core.cleaning import clean_chunk

    invalid = (params or {}).get("invalid_rides", "error")
    if invalid not in ("error", "nan"):
        raise ValueError(f"invalid_rides must be 'error' or 'nan', not {invalid!r}")
    frame = _typed_rides(rides)
    clean, report = clean_chunk(frame, require_fare=False, dedupe=False)
    if report.rows_dropped and invalid == "error":
        reasons = ", ".join(f"{n} {reason}" for reason, n in report.dropped.most_common())
        raise ValueError(
            f"{report.rows_dropped} of {len(frame)} rides cannot be priced ({reasons}); "
            "pass params={'invalid_rides': 'nan'} to get NaN for them"
        )
    fares = np.full(len(frame), np.nan)
    if len(clean):
        fares[clean.index.to_numpy()] = model.predict(clean)
    return pd.Series(fares, index=rides.index, name=PREDICTION_COLUMN)


def _typed_rides(rides: pd.DataFrame) -> pd.DataFrame:
    """The ride fields typed as `core.cleaning` expects, on a fresh 0..n-1 index."""
    import pandas as pd

    from taxifare_cli.core.schema import COORD_COLUMNS

    if not isinstance(rides, pd.DataFrame):
        rides = pd.DataFrame(rides)
    missing = [c for c in ("pickup_datetime", *COORD_COLUMNS) if c not in rides.columns]
    if missing:
        raise ValueError(f"rides lack the column(s) {', '.join(missing)}")
    n = len(rides)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["pickup_datetime"] = _utc_times(rides["pickup_datetime"]).to_numpy()
    for c in COORD_COLUMNS:
        out[c] = pd.to_numeric(rides[c], errors="coerce").astype("float64").to_numpy()
    if "passenger_count" in rides.columns:
        out["passenger_count"] = (
            pd.to_numeric(rides["passenger_count"], errors="coerce").astype("float64").to_numpy()
        )
    else:
        out["passenger_count"] = 1.0
    return out


def _utc_times(values: pd.Series) -> pd.Series:
    import pandas as pd

    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")  # raw rides are stamped in UTC
    text = values.astype("string").str.replace(" UTC", "", regex=False)
    return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")


@functools.cache
def pyfunc_model_class() -> type[PythonModel]:
    """The mlflow.pyfunc.PythonModel that wraps FareModel (built on first use: mlflow is heavy)."""
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import PythonModel

    def load_context(self: Any, context: Any) -> None:
        from taxifare_cli.artifact import FareModel

        self.fare_model = FareModel.load(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(
        self: Any, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.Series:
        try:
            return predict_fares(self.fare_model, model_input, params)
        except ValueError as e:  # a 400 from `mlflow models serve`, not a 500
            raise MlflowException.invalid_parameter_value(str(e)) from e

    # MLflow reads predict's type hints when the class is made; this module's are strings.
    predict.__annotations__ = {
        "context": Any,
        "model_input": pd.DataFrame,
        "params": dict[str, Any] | None,
        "return": pd.Series,
    }
    cls: type[PythonModel] = type(
        "FarePyfunc",
        (PythonModel,),
        {
            "__module__": __name__,
            "__doc__": "Taxi fares from raw ride columns; wraps taxifare's FareModel.",
            "load_context": load_context,
            "predict": predict,
        },
    )
    return cls


def fare_pyfunc() -> PythonModel:
    """A new, unloaded FarePyfunc; MLflow calls its load_context with the artifacts."""
    return pyfunc_model_class()()


def pyfunc_signature() -> ModelSignature:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

    from taxifare_cli.core.schema import COORD_COLUMNS

    inputs = Schema(
        [
            # Raw text ("2015-01-15 08:30:00 UTC"), ISO 8601 or datetimes: MLflow's own datetime
            # type refuses the timezone-aware times raw ride files are read into.
            ColSpec(AnyType(), "pickup_datetime"),
            *(ColSpec("double", c) for c in COORD_COLUMNS),
            ColSpec(AnyType(), "passenger_count", required=False),
            # Raw files carry these; accepted and ignored.
            ColSpec(AnyType(), "key", required=False),
            ColSpec(AnyType(), "fare_amount", required=False),
        ]
    )
    outputs = Schema([ColSpec("double", PREDICTION_COLUMN)])
    params = ParamSchema([ParamSpec("invalid_rides", "string", "error")])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def pyfunc_input_example() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "pickup_datetime": ["2015-01-15 08:30:00 UTC", "2015-01-15 18:05:00 UTC"],
            "pickup_longitude": [-73.9840, -73.9857],
            "pickup_latitude": [40.7549, 40.7484],
            "dropoff_longitude": [-73.7781, -73.9632],
            "dropoff_latitude": [40.6413, 40.7794],
            "passenger_count": [1, 2],
        }
    )


def pyfunc_requirements() -> list[str]:
    """Pinned to what runs here, so a served model computes what was validated."""

    def pinned(dist: str) -> str | None:
        found = _installed_version(dist)
        return f"{dist}=={found}" if found else None

    requirements = [pinned("mlflow") or pinned("mlflow-skinny")]
    tf = _installed_version("tensorflow-cpu") or _installed_version("tensorflow")
    if tf:
        # tensorflow-cpu exists for Linux x86-64 only; the same version elsewhere is tensorflow.
        requirements += [
            f"tensorflow-cpu=={tf}; sys_platform == 'linux' and platform_machine == 'x86_64'",
            f"tensorflow=={tf}; sys_platform != 'linux' or platform_machine != 'x86_64'",
        ]
    requirements += [pinned("keras"), pinned("numpy"), pinned("pandas")]
    return [r for r in requirements if r]


def _installed_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


# -- what a training run logs ---------------------------------------------------------------


def _pyfunc_files(artifact_dir: Path, dest: Path) -> Path:
    """The model script, the FareModel directory and this package's code, ready to log."""
    import taxifare_cli

    dest.mkdir(parents=True)
    (dest / "taxifare_pyfunc.py").write_text(PYFUNC_SCRIPT, encoding="utf-8")
    shutil.copytree(artifact_dir, dest / MODEL_ARTIFACT)
    # The pyfunc imports taxifare_cli wherever it is loaded (`mlflow models serve` too).
    shutil.copytree(
        Path(taxifare_cli.__file__).parent,
        dest / "code" / "taxifare_cli",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return dest


def _run_artifacts(artifact_dir: Path, record: TrainingRecord, dest: Path) -> Path:
    from taxifare_cli.artifact import FEATURES_FILE
    from taxifare_cli.core.cleaning import DEFAULT_RULES
    from taxifare_cli.core.schema import RIDE_FIELDS

    (dest / "plots").mkdir(parents=True)
    features_path = artifact_dir / FEATURES_FILE
    features = json.loads(features_path.read_text(encoding="utf-8")) if features_path.is_file() else {}
    config = {**features, "ride_fields": list(RIDE_FIELDS), "cleaning_rules": asdict(DEFAULT_RULES)}
    (dest / "feature_config.json").write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    learning_curve_png(record.history, dest / "plots" / "learning_curve.png")
    sample = getattr(record, "val_predictions", None)  # optional: (true fares, predicted fares)
    if sample is not None:
        residuals_png(sample[0], sample[1], dest / "plots" / "residuals.png")
    for extra in record.extra_artifacts:
        if extra.is_dir():
            shutil.copytree(extra, dest / extra.name, dirs_exist_ok=True)
        else:
            shutil.copy2(extra, dest / extra.name)
    return dest


@contextmanager
def _mlflow_chatter_hidden() -> Iterator[None]:
    """Hide what MLflow says about its own internals while it saves a model.

    (pandas deprecations inside MLflow, "Failed to resolve installed pip version" when
    this environment has no pip: neither is the user's to act on.)
    """
    import logging

    env_logger = logging.getLogger("mlflow.utils.environment")
    level = env_logger.level
    env_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"mlflow\.")
            yield
    finally:
        env_logger.setLevel(level)


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise MissingExtraError("mlflow", "mlflow") from e
    # A bare Figure, not pyplot: no GUI backend, no global state.
    return Figure(figsize=(width, height), layout="constrained")


def learning_curve_png(history: dict[str, list[float]], path: Path) -> Path | None:
    """Loss and MAE per epoch, training and validation; None if there is no history."""
    if not any(history.get(k) for k in ("loss", "mae", "val_loss", "val_mae")):
        return None
    fig = _figure(10, 4)
    axes = fig.subplots(1, 2)
    for ax, key, label in zip(axes, ("loss", "mae"), ("Huber loss", "mean absolute error ($)"), strict=True):
        for prefix, style, name in (("", "-", "training"), ("val_", "--", "validation")):
            values = history.get(prefix + key) or []
            if values:
                ax.plot(range(1, len(values) + 1), values, style, marker=".", label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    val_mae = [v for v in history.get("val_mae", []) if _is_number(v)]
    if val_mae:
        best = history["val_mae"].index(min(val_mae)) + 1
        axes[1].axvline(best, color="grey", linestyle=":", label=f"best epoch {best}")
        axes[1].legend()
    fig.suptitle("Learning curve")
    fig.savefig(path, dpi=100)
    return path


def residuals_png(y_true: Iterable[float], y_pred: Iterable[float], path: Path) -> Path | None:
    """Residual (predicted - true) against predicted fare, and their histogram."""
    import numpy as np

    true = np.asarray(list(y_true), dtype=np.float64)
    pred = np.asarray(list(y_pred), dtype=np.float64)
    if true.size == 0 or true.shape != pred.shape:
        return None
    resid = pred - true
    fig = _figure(10, 4)
    left, right = fig.subplots(1, 2)
    left.scatter(pred, resid, s=4, alpha=0.3)
    left.axhline(0, color="grey", linewidth=1)
    left.set_xlabel("predicted fare ($)")
    left.set_ylabel("predicted - true ($)")
    left.grid(alpha=0.3)
    right.hist(np.clip(resid, -30, 30), bins=60)
    right.set_xlabel("predicted - true ($), clipped to ±30")
    right.set_ylabel("rides")
    right.grid(alpha=0.3)
    fig.suptitle(f"Residuals on {true.size} validation rides: MAE ${np.abs(resid).mean():.2f}")
    fig.savefig(path, dpi=100)
    return path


# -- small helpers ---------------------------------------------------------------------------


def _require_mlflow() -> None:
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        raise MissingExtraError("mlflow", "mlflow")
    mlflow_version = _installed_version("mlflow") or _installed_version("mlflow-skinny") or "0"
    if int(mlflow_version.split(".")[0]) < 3:
        raise ConfigError(
            f"the mlflow registry needs MLflow 3; mlflow {mlflow_version} is installed",
            hint="pip install 'taxifare[mlflow]'",
        )


def _check_uri(uri: str) -> str:
    uri = uri.strip()
    if not uri:
        raise ConfigError("the MLflow tracking URI is empty", hint="set MLFLOW_TRACKING_URI")
    if "://" in uri:
        scheme = uri.split("://", 1)[0].lower().split("+", 1)[0]  # postgresql+psycopg2://
        if scheme not in _KNOWN_SCHEMES:
            raise ConfigError(
                f"MLflow tracking URI {uri!r} has an unknown scheme {scheme!r}",
                hint="use the server's URL, e.g. http://127.0.0.1:5000",
            )
    elif re.match(r"^[\w.-]+:\d+(/|$)", uri):
        raise ConfigError(f"MLflow tracking URI {uri!r} has no scheme", hint=f"did you mean http://{uri}?")
    return uri


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _status_in(text: str) -> int | None:
    m = re.search(r"error code (\d{3})", text)
    return int(m.group(1)) if m else None


def _is_connection_error(e: BaseException) -> bool:
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ConnectionError | TimeoutError):
            return True
        if type(e).__name__ in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "MaxRetryError"):
            return True
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    return False


def _quietly(fn: Any, *args: Any) -> None:
    """Best-effort clean-up after a failure: the first error is the one to report."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*args)
    except Exception:
        pass


def _log_batch(
    client: MlflowClient,
    run_id: str,
    *,
    params: dict[str, str] | None = None,
    metrics: list[Any] | None = None,
) -> None:
    from mlflow.entities import Param

    # The REST API takes at most 100 params and 1000 metrics per request.
    items = [Param(k, v) for k, v in (params or {}).items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])
    metrics = metrics or []
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i : i + 1000])


def _safe_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params minus anything that looks like a secret: they are readable by every MLflow user."""
    return {
        k: v
        for k, v in params.items()
        if not _SECRET_KEY.search(k) and type(v).__name__ not in ("SecretStr", "SecretBytes")
    }


def _param_text(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)
    return text[:6000]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def _data_items(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for split, seen in data.items():
        if isinstance(seen, dict):
            yield split, seen


def _train_run_name(record: TrainingRecord) -> str:
    dataset = record.params.get("train_dataset")
    return f"train {dataset}" if dataset else "train"


def _note(record: TrainingRecord) -> str:
    parts = [f"taxifare {record.package_version or ''}".strip()]
    for split, seen in _data_items(record.data):
        parts.append(f"{split}: {seen.get('dataset')} from {seen.get('source')}")
    if "val_mae" in record.metrics:
        parts.append(f"val MAE ${record.metrics['val_mae']:.2f}")
    if record.parent_version is not None:
        parts.append(f"fine-tuned from version {record.parent_version}")
    return "; ".join(parts)


def _json_tag(tags: dict[str, str], key: str) -> dict[str, Any]:
    try:
        value = json.loads(tags.get(key, "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _model_id(mv: Any) -> str | None:
    """The LoggedModel behind a version (the REST API leaves `model_id` empty; `source` has it)."""
    if getattr(mv, "model_id", None):
        return str(mv.model_id)
    m = re.fullmatch(r"models:/(m-[0-9a-f]+)/?", str(mv.source or ""))
    return m.group(1) if m else None


def _stage_of(mv: Any, aliases: dict[str, str], stage_aliases: dict[Stage, str]) -> Stage:
    number = str(mv.version)
    for stage, alias in stage_aliases.items():
        if aliases.get(alias) == number:
            return stage
    return "Archived" if (mv.tags or {}).get(STAGE_TAG) == "Archived" else "None"
