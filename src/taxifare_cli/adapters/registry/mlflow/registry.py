"""MlflowRegistry: model versions, runs and stages on an MLflow tracking server.

How the registry port maps onto MLflow (3.x):
  save                one run (context=train): params, per-epoch and final metrics, data-seen
                      tags, plots, the feature config (records.py); the model logged as a pyfunc
                      on raw ride columns (pyfunc.py); then a new version, tagged with the sha256
                      of each artifact file, checked after every download. A failure before
                      the version exists marks the run FAILED and registers nothing.
  stages              aliases (`production`, `staging`, configurable). Archived is a version
                      tag `taxifare.stage=Archived`; the legacy MLflow stage follows if asked.
  promote             moves the alias, archives the previous holder, records who, when and
                      which version it replaced in version tags (MLflow keeps no history).
  record_evaluation   one run (context=evaluate) linked to the version by tags and params,
                      plus a `taxifare.last_evaluation` tag on the version.
What `ModelVersion` reports comes from version tags written by `save` (records.py), so
`list` is one search, not one call per version.

mlflow is imported on first use: importing this module stays cheap.
"""

from __future__ import annotations

import builtins
import json
import os
import tempfile
import warnings
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxifare_cli.adapters.registry.mlflow import records as R
from taxifare_cli.adapters.registry.mlflow.errors import (
    check_uri,
    is_missing,
    mlflow_errors,
    quietly,
    require_mlflow,
    set_http_defaults,
)
from taxifare_cli.adapters.registry.mlflow.local_store import local_store, ui_command
from taxifare_cli.adapters.registry.mlflow.pyfunc import (
    MODEL_ARTIFACT,
    global_tracking_uri,
    log_pyfunc,
    pyfunc_files,
)
from taxifare_cli.core.vocabulary import LOADABLE_STAGES, STAGES, Stage, displaced
from taxifare_cli.errors import STOP, ConfigError, NotFoundError, UsageError
from taxifare_cli.ports import ModelRef, ModelVersion, Promotion, TrainingRecord

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion

    from taxifare_cli.settings import Settings


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
        artifact_root: str | None = None,
    ) -> None:
        self.tracking_uri = check_uri(tracking_uri)
        # Where a new experiment keeps its artifacts; None: the server decides (a local store needs it).
        self.artifact_root = artifact_root
        self.ui_command = ui_command(self.tracking_uri, artifact_root)  # how to look at a local store
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
        set_http_defaults(timeout_s)
        if tracking_token:
            # MLflow's REST client reads its bearer token from the environment only.
            os.environ["MLFLOW_TRACKING_TOKEN"] = tracking_token
        self._client_obj: MlflowClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MlflowRegistry:
        m = settings.mlflow
        require_mlflow()
        uri, artifact_root = (
            (m.tracking_uri, None) if m.tracking_uri else local_store(settings.mlflow_store_dir)
        )
        return cls(
            uri,
            artifact_root=artifact_root,
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
            run_files = R.run_artifacts(artifact_dir, record, tmpdir / "run")
            model_files = pyfunc_files(artifact_dir, tmpdir / "model")
            experiment_id = self._experiment_id()
            run = client.create_run(
                experiment_id,
                run_name=R.train_run_name(record),
                tags=R.train_tags(self.model_name, record),
            )
            run_id: str = run.info.run_id
            version: MlflowModelVersion | None = None
            try:
                self._log_training(run_id, record, run_files)
                model_id = self._log_pyfunc(run_id, experiment_id, record, model_files)
                self._ensure_registered_model()
                STOP.check()  # the last moment a stop leaves no version behind
                with global_tracking_uri(self.tracking_uri):  # a SQLite store resolves the source itself
                    version = client.create_model_version(
                        self.model_name,
                        source=f"models:/{model_id}",
                        run_id=run_id,
                        tags=R.version_tags(record) | R.checksum_tags(artifact_dir),
                        model_id=model_id,
                        await_creation_for=max(30, int(self.timeout_s)),
                    )
                client.set_terminated(run_id, "FINISHED")
            except BaseException:
                if version is not None:
                    quietly(client.delete_model_version, self.model_name, version.version)
                quietly(client.set_terminated, run_id, "FAILED")
                raise
            return R.to_port(version, {}, self.aliases, [])

    def get(self, ref: ModelRef) -> ModelVersion:
        with self._errors(f"reading {ref} of model {self.model_name!r}"):
            mv, aliases = self._resolve(ref)
            number = int(mv.version)
            return R.to_port(mv, aliases, self.aliases, self._evaluations(number).get(number, []))

    def fetch_artifact(self, ref: ModelRef, dest: Path) -> tuple[ModelVersion, Path]:
        """Download the FareModel directory of `ref` into a new directory under `dest`."""
        client = self._client()
        import mlflow.artifacts

        with self._errors(f"downloading {ref} of model {self.model_name!r}"):
            mv, aliases = self._resolve(ref)
            model_id = R.model_id(mv)
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
                if is_missing(e):
                    raise NotFoundError(
                        f"version {mv.version} of MLflow model {self.model_name!r} holds no taxifare "
                        f"model ({MODEL_ARTIFACT} is missing)",
                        hint="it was registered by something else: train one with "
                        "`taxifare model train --target mlflow`",
                    ) from e
                raise
            R.verify_download(mv, Path(path))  # the files saved, byte for byte, or a DataError
            return R.to_port(mv, aliases, self.aliases, []), Path(path)

    def list(self) -> list[ModelVersion]:
        client = self._client()
        with self._errors(f"listing versions of model {self.model_name!r}"):
            aliases = self._aliases(missing_ok=True)
            if aliases is None:
                return []
            query = f"name = {R.quote(self.model_name)}"
            page = client.search_model_versions(query, max_results=1000)
            versions: list[MlflowModelVersion] = list(page)
            while page.token:  # another page
                page = client.search_model_versions(query, max_results=1000, page_token=page.token)
                versions.extend(page)
            evaluations = self._evaluations(None)
            return sorted(
                (R.to_port(v, aliases, self.aliases, evaluations.get(int(v.version), [])) for v in versions),
                key=lambda mv: mv.version,
            )

    def promote(self, version: int, stage: Stage, *, by: str) -> Promotion:
        if stage not in STAGES:
            raise UsageError(f"unknown stage {stage!r}: choose one of {', '.join(STAGES)}")
        client = self._client()
        with self._errors(f"moving version {version} of model {self.model_name!r} to {stage}"):
            mv, aliases = self._resolve(ModelRef(version=version))
            at = datetime.now(timezone.utc)
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
                previous = displaced(stage, version, int(held) if held is not None else None)
                client.set_registered_model_alias(name, target_alias, number)
            if previous is not None:
                for key, value in R.archived_tags(when, by, replaced_by=version).items():
                    client.set_model_version_tag(name, str(previous), key, value)
            from_stage = R.stage_of(mv, aliases, self.aliases)
            tags, stale = R.promoted_tags(stage, when, by, from_stage=from_stage, replaced=previous)
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
            run = client.create_run(
                experiment_id,
                run_name=f"evaluate v{version} on {dataset}".strip(),
                tags=R.evaluation_tags(self.model_name, version, evaluation),
            )
            run_id = run.info.run_id
            try:
                R.log_batch(client, run_id, params=R.evaluation_params(self.model_name, version, evaluation))
                for key, value in evaluation.items():
                    if R.is_number(value):
                        # Linked to the logged model, so the model's page shows its evaluations.
                        client.log_metric(run_id, key, float(value), step=0, model_id=R.model_id(mv))
                client.set_terminated(run_id, "FINISHED")
            except BaseException:
                quietly(client.set_terminated, run_id, "FAILED")
                raise
            last = json.dumps({**evaluation, "run_id": run_id}, sort_keys=True, default=str)
            client.set_model_version_tag(self.model_name, str(version), R.TAG + "last_evaluation", last)

    def promotions(self) -> builtins.list[dict[str, Any]]:
        """The last promotions of this model, oldest first (kept in a registered-model tag)."""
        with self._errors(f"reading the promotions of model {self.model_name!r}"):
            rm = self._registered_model(missing_ok=True)
            if rm is None:
                return []
            log: builtins.list[dict[str, Any]] = json.loads(rm.tags.get(R.PROMOTION_LOG_TAG, "[]"))
            return log

    # -- MLflow plumbing --------------------------------------------------------------

    def _client(self) -> MlflowClient:
        if self._client_obj is None:
            require_mlflow()
            from mlflow import MlflowClient

            self._client_obj = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client_obj

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return mlflow_errors(action, self.tracking_uri)

    def _experiment_id(self) -> str:
        """The id of the experiment runs go to; created if missing, refused if deleted."""
        from mlflow.exceptions import MlflowException

        experiment = self._experiment()
        if experiment is None:
            try:
                return str(
                    self._client().create_experiment(self.experiment, artifact_location=self.artifact_root)
                )
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
        elif ref.stage in LOADABLE_STAGES:
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
        found: dict[int, builtins.list[dict[str, Any]]] = {}
        token: str | None = None
        while True:
            page = self._client().search_runs(
                [experiment.experiment_id],
                filter_string=R.evaluations_query(self.model_name, version),
                order_by=["attributes.start_time ASC"],
                max_results=1000,
                page_token=token,
            )
            for run in page:
                if (read := R.evaluation_of(run)) is not None:
                    found.setdefault(read[0], []).append(read[1])
            token = page.token
            if not token:
                return found

    def _log_training(self, run_id: str, record: TrainingRecord, files: Path) -> None:
        client = self._client()
        R.log_batch(client, run_id, params=R.param_texts(record.params), metrics=R.training_metrics(record))
        client.log_artifacts(run_id, str(files))

    def _log_pyfunc(self, run_id: str, experiment_id: str, record: TrainingRecord, files: Path) -> str:
        """Log the pyfunc as a LoggedModel of the run; its model id."""
        return log_pyfunc(
            files,
            tracking_uri=self.tracking_uri,
            run_id=run_id,
            experiment_id=experiment_id,
            params=R.param_texts(record.params),
            tags={R.TAG + "model_name": self.model_name},
            package_version=record.package_version,
        )

    def _transition_legacy(self, version: str, stage: Stage) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated since MLflow 2.9
            self._client().transition_model_version_stage(
                self.model_name, version, stage, archive_existing_versions=False
            )

    def _append_promotion(self, promotion: Promotion) -> None:
        rm = self._registered_model()
        log = json.loads(rm.tags.get(R.PROMOTION_LOG_TAG, "[]"))
        log.append(promotion.as_dict())
        self._client().set_registered_model_tag(
            self.model_name, R.PROMOTION_LOG_TAG, json.dumps(log[-R.PROMOTION_LOG_LENGTH :])
        )
