"""The application object: every use case of taxifare as a method, over backends built once.

`Taxifare(settings)` is what the CLI, the workflow engines, the cloud job
agent and the web service hold. It owns, lazily, what the use cases share:
the data stores, the registry, the ride sources, the hyper-parameters, the
chunk size, and the rules that turn `--size`/`--month` into dataset names.
Each method takes plain values, calls one service and returns its result
object; it never prints. Services and heavy libraries are imported inside
the methods, so building the object costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from taxifare_cli import bootstrap
from taxifare_cli.app.cloud import CloudTraining
from taxifare_cli.app.months import MonthsInOrder
from taxifare_cli.app.versions import DataVersions
from taxifare_cli.core.schema import MONTHS, SPLITS, check_part
from taxifare_cli.core.vocabulary import (
    CLOUD_STORES,
    LOADABLE_STAGES,
    CloudStore,
    LoadableStage,
    RideOrigin,
    Stage,
    StoreBackend,
)
from taxifare_cli.errors import ConfigError, UsageError
from taxifare_cli.ports import (
    SILENT,
    DataStore,
    FileStore,
    ModelRef,
    ModelRegistry,
    Progress,
    RideSource,
    RunHistory,
)
from taxifare_cli.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

    from taxifare_cli.core.model import HyperParams
    from taxifare_cli.ports import DatasetInfo, ModelVersion, Promotion
    from taxifare_cli.services.data import FetchResult
    from taxifare_cli.services.evaluation import EvaluationResult
    from taxifare_cli.services.prediction import FilePrediction, RidePrediction
    from taxifare_cli.services.registry import ModelDetails
    from taxifare_cli.services.serving import ServedModel
    from taxifare_cli.services.training import TrainResult
    from taxifare_cli.services.transfer import TransferStep
    from taxifare_cli.services.workflow import MonthRun, WorkflowRun


class Taxifare(MonthsInOrder, CloudTraining, DataVersions):
    """The tool as a library: `Taxifare(settings).train(size="10k")`."""

    def __init__(
        self,
        settings: Settings,
        *,
        progress: Progress = SILENT,
        stores: Mapping[StoreBackend, DataStore] | None = None,
        registry: ModelRegistry | None = None,
        sources: Mapping[RideOrigin, RideSource] | None = None,
    ) -> None:
        """Backends not given are built from `settings` on first use (tests and embedders inject theirs)."""
        self.settings = settings
        self.progress = progress
        self._stores: dict[StoreBackend, DataStore] = dict(stores or {})
        self._registry = registry
        self._sources: dict[RideOrigin, RideSource] = dict(sources or {})

    # -- what the use cases share ---------------------------------------------------------

    @property
    def chunk_size(self) -> int:
        return self.settings.data.chunk_size

    @cached_property
    def hyperparams(self) -> HyperParams:
        return bootstrap.build_hyperparams(self.settings)

    def store_named(self, name: StoreBackend) -> DataStore:
        """The store `name`, built on first use and kept."""
        if name not in self._stores:
            self._stores[name] = bootstrap.build_store(self.settings, name)
        return self._stores[name]

    @property
    def store(self) -> DataStore:
        """Where use cases read rides (storage.backend)."""
        return self.store_named(self.settings.storage.backend)

    @property
    def local(self) -> FileStore:
        """The data directory on this machine: fetched files land here first."""
        store = self.store_named("local")
        if not isinstance(store, FileStore):
            raise ConfigError(f"the local store {type(store).__name__} does not keep files on this machine")
        return store

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            self._registry = bootstrap.build_registry(self.settings)
        return self._registry

    def source(self, origin: RideOrigin | None = None) -> RideSource:
        """Where fetches get rides (data.origin unless named)."""
        name = origin or self.settings.data.origin
        if name not in self._sources:
            self._sources[name] = bootstrap.build_source(self.settings, name)
        return self._sources[name]

    def configured_stores(self) -> list[DataStore]:
        """Local disk, plus each cloud place that is configured (a bucket, a project)."""
        stores: list[DataStore] = [self.local]
        if self.settings.storage.bucket:
            stores.append(self.store_named("gcs"))
        if self.settings.gcp.project:
            stores.append(self.store_named("bigquery"))
        return stores

    # -- the rules for naming datasets ----------------------------------------------------

    @staticmethod
    def part(size: str | None, month: str | None, default: str | None = None) -> str:
        """The one size or month a command works on (`--size`, `--month`, else `default`)."""
        if size and month:
            raise UsageError("give --size or --month, not both")
        part = size or month or default
        if not part:
            raise UsageError("give --size (1k, 10k, 100k, 500k, 1m, all) or --month (jan..jun)")
        try:
            return check_part(part)
        except ValueError as e:
            raise UsageError(str(e)) from None

    def training_parts(self, size: str | None, month: str | None) -> tuple[str, str]:
        """(train part, validation part): data.val_size validates data.size when neither is typed."""
        typed = bool(size or month)
        part = self.part(size, month, None if typed else self.settings.data.size)
        val = self.settings.data.val_size if not typed and self.settings.data.val_size else part
        return part, self.part(val, None)

    def evaluation_part(self, size: str | None, month: str | None) -> str:
        d = self.settings.data
        return self.part(size, month, None if (size or month) else (d.val_size or d.size))

    @staticmethod
    def dataset_names(part: str) -> list[str]:
        """`10k` -> [train_10k, val_10k]."""
        return [f"{split}_{part}" for split in SPLITS]

    @staticmethod
    def model_ref(version: int | None = None, stage: str | None = None) -> ModelRef:
        """A version, or a stage that can be loaded (Production when neither is given)."""
        if version is not None and stage is not None:
            raise UsageError("give --version or --stage, not both")
        if version is not None:
            return ModelRef(version=version)
        chosen = stage or "Production"
        match = [s for s in LOADABLE_STAGES if s.lower() == chosen.lower()]
        if not match:
            raise UsageError(f"cannot load a model by stage {chosen!r}: use {', '.join(LOADABLE_STAGES)}")
        loadable: LoadableStage = match[0]
        return ModelRef(stage=loadable)

    # -- data -----------------------------------------------------------------------------

    def fetch(
        self, size: str | None = None, month: str | None = None, *, dry_run: bool = False
    ) -> list[FetchResult]:
        """train_ and val_ files of a size or month, from data.origin onto local disk."""
        from taxifare_cli.services.data import fetch_data

        part = self.part(size, month, None if (size or month) else self.settings.data.size)
        return fetch_data(part, self.local, self.source(), dry_run=dry_run, progress=self.progress)

    def list_data(self) -> dict[str, list[DatasetInfo]]:
        from taxifare_cli.services.data import list_data

        return list_data(self.configured_stores())

    def upload(
        self,
        to: tuple[CloudStore, ...] = CLOUD_STORES,
        size: str | None = None,
        month: str | None = None,
        *,
        dry_run: bool = False,
    ) -> list[TransferStep]:
        """Copy local train_/val_ files to each of `to`, in order, idempotently."""
        from taxifare_cli.services.transfer import upload_data

        part = self.part(size, month, None if (size or month) else self.settings.data.size)
        steps: list[TransferStep] = []
        for kind in to:
            steps += upload_data(
                self.dataset_names(part),
                src=self.local,
                dest=self.store_named(kind),
                chunk_size=self.chunk_size,
                dry_run=dry_run,
                progress=self.progress,
            )
        return steps

    def reset(
        self, to: tuple[CloudStore, ...] = CLOUD_STORES, *, dry_run: bool = False
    ) -> list[TransferStep]:
        """Fetch the standard sizes, then (re)create them in each of `to`."""
        from taxifare_cli.services.transfer import reset_sources

        return reset_sources(
            local=self.local,
            source=self.source(),
            dests=[self.store_named(kind) for kind in to],
            chunk_size=self.chunk_size,
            dry_run=dry_run,
            progress=self.progress,
        )

    # -- models ---------------------------------------------------------------------------

    def train(
        self, size: str | None = None, month: str | None = None, *, from_stage: LoadableStage | None = None
    ) -> TrainResult:
        """Fit on train_<part>, early-stop on val_<part>, register a new version, publish its record."""
        from taxifare_cli.services.training import train_model

        part, val_part = self.training_parts(size, month)
        result = train_model(
            self.store,
            self.registry,
            train_name=f"train_{part}",
            val_name=f"val_{val_part}",
            chunk_size=self.chunk_size,
            hp=self.hyperparams,
            from_stage=from_stage,
            progress=self.progress,
            min_rows=self.settings.training.min_rows,
        )
        # With a bucket, machines with another registry can reproduce it (`model reproduce`).
        result.published = self.publish(result.version)
        return result

    def viewer_hint(self) -> str | None:
        """Once per local MLflow store: the command that opens it in the MLflow UI (None otherwise)."""
        command = getattr(self.registry, "ui_command", None)
        if not isinstance(command, str):
            return None
        marker = self.settings.mlflow_store_dir / ".ui-hint-shown"
        if marker.exists():
            return None
        try:
            marker.touch()
        except OSError:
            return None  # a hint is not worth an error
        return command

    def evaluate(self, ref: ModelRef, size: str | None = None, month: str | None = None) -> EvaluationResult:
        """MAE and RMSE of `ref` on val_<part>, recorded with the version."""
        from taxifare_cli.services.evaluation import evaluate_model

        return evaluate_model(
            self.store,
            self.registry,
            ref,
            dataset=f"val_{self.evaluation_part(size, month)}",
            chunk_size=self.chunk_size,
            progress=self.progress,
        )

    def price(self, ref: ModelRef, rides: pd.DataFrame) -> RidePrediction:
        """Fares for rides given in full (every ride must be priceable)."""
        from taxifare_cli.services.prediction import predict_rides

        return predict_rides(self.registry, ref, rides)

    def price_ride_fields(self, ref: ModelRef, pairs: list[str]) -> RidePrediction:
        """Fares for one ride given as FIELD=VALUE pairs (priced without pandas: a quick process)."""
        from taxifare_cli.services.prediction import predict_ride_fields

        return predict_ride_fields(self.registry, ref, pairs)

    def price_file(
        self, ref: ModelRef, input_path: Path, output_path: Path | None = None
    ) -> tuple[FilePrediction, pd.DataFrame | None]:
        """Fares for a CSV of rides, streamed; written atomically to `output_path` or returned."""
        from taxifare_cli.services.prediction import predict_file

        return predict_file(
            self.registry, ref, input_path, output_path, chunk_size=self.chunk_size, progress=self.progress
        )

    def served_model(self, ref: ModelRef, *, refresh_s: float = 5.0) -> ServedModel:
        """The model a web service prices with: `ref`'s version, following its stage."""
        from taxifare_cli.services.serving import ServedModel

        return ServedModel(self.registry, ref, refresh_s=refresh_s)

    def promote(self, version: int, stage: Stage, *, dry_run: bool = False) -> Promotion:
        from taxifare_cli.services.registry import promote_model

        return promote_model(self.registry, version, stage, dry_run=dry_run)

    def show_model(self, version: int) -> ModelDetails:
        from taxifare_cli.services.registry import show_model

        return show_model(self.registry, version)

    def models(self) -> list[ModelVersion]:
        from taxifare_cli.services.registry import list_models

        return list_models(self.registry)

    # -- the monthly workflow -------------------------------------------------------------

    @cached_property
    def history(self) -> RunHistory:
        return bootstrap.build_history(self.settings)

    def done_months(self) -> list[str]:
        """Months whose workflow run finished, oldest run first."""
        return [str(r["month"]) for r in self.history.runs() if r.get("verdict")]

    def workflow_month(self, month: str | None) -> str | None:
        """The month to run: the one named, else the first month of 2015 not done yet (None: all done)."""
        from taxifare_cli.services.workflow import next_month

        if month is None:
            return next_month(self.done_months(), MONTHS)
        chosen = month.strip().lower()
        if chosen not in MONTHS:
            raise UsageError(f"unknown month {month!r}: choose one of {', '.join(MONTHS)} (2015)")
        return chosen

    def upload_targets(self) -> list[DataStore]:
        """Where a fetched month is uploaded too: the bucket if one is set, BigQuery if it is read from."""
        targets: list[DataStore] = []
        if self.settings.storage.bucket:
            targets.append(self.store_named("gcs"))
        if self.settings.storage.backend == "bigquery":
            targets.append(self.store_named("bigquery"))
        return targets

    def month_run(self, month: str) -> MonthRun:
        """The steps of `month`'s workflow over this app's backends (ports.MonthSteps)."""
        from taxifare_cli.services.workflow import MonthRun, WorkflowOptions

        w = self.settings.workflow
        options = WorkflowOptions(
            policy=w.policy,
            min_gain=w.min_gain,
            retrain_from=w.retrain_from,
            retries=w.retries,
            psi_threshold=w.psi_threshold,
            ks_threshold=w.ks_threshold,
            engine=w.engine,
            min_rows=self.settings.training.min_rows,
        )
        return MonthRun(
            month,
            local=self.local,
            source=self.source(w.origin),
            uploads=self.upload_targets(),
            store=self.store,
            registry=self.registry,
            hp=self.hyperparams,
            chunk_size=self.chunk_size,
            options=options,
            notifier=bootstrap.build_notifier(self.settings),
            history=self.history,
            links=self.registry_links(),
            progress=self.progress,
        )

    def registry_links(self) -> dict[str, str]:
        """Where a human looks at the models (the MLflow UI when MLflow is the registry)."""
        m = self.settings.mlflow
        if (
            self.settings.registry.backend == "mlflow"
            and m.tracking_uri
            and m.tracking_uri.startswith("http")
        ):
            return {"MLflow": f"{m.tracking_uri.rstrip('/')}/#/models/{m.model_name}"}
        return {}

    def run_workflow(
        self, month: str | None = None, *, force: bool = False, dry_run: bool = False
    ) -> WorkflowRun:
        """One month through the champion/challenger workflow, under the lock, on workflow.engine."""
        from taxifare_cli.services.workflow import WorkflowRun, plan_month

        chosen = self.workflow_month(month)
        if chosen is None:
            return WorkflowRun(
                None, "nothing-to-do", reason="every month of 2015 is done (--month M --force redoes one)"
            )
        if chosen in self.done_months() and not force:
            return WorkflowRun(chosen, "skipped", reason=f"{chosen} is done already (--force runs it again)")
        if dry_run:
            return WorkflowRun(
                chosen,
                "planned",
                plan=plan_month(self.month_run(chosen), self.source(self.settings.workflow.origin)),
            )
        engine = bootstrap.build_engine(self.settings)
        with self.history.lock():
            steps = self.month_run(chosen)
            engine.run(steps)
        run = WorkflowRun(chosen, "done", outcome=steps.outcome)
        if steps.outcome.challenger_version is not None:  # write-once: a resumed month writes nothing
            published = self.publish(self.registry.get(ModelRef(version=steps.outcome.challenger_version)))
            if published is not None and published.warning:
                run.warnings.append(published.warning)
        return run
