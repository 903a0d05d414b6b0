"""The seams between services and the outside world, and the records they pass.

Each Protocol is implemented once per backend in `adapters/`; `bootstrap.py`
chooses which. Services depend only on what is here.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from taxifare_cli.core.vocabulary import STAGES, Stage

if TYPE_CHECKING:
    import pandas as pd

    from taxifare_cli.core.cleaning import CleaningRules

__all__ = ["STAGES", "Stage"]  # re-exported: the registries' vocabulary


# -- progress -------------------------------------------------------------------------------


class Progress(Protocol):
    """A sink for progress; the CLI draws bars on a terminal, cron sees nothing."""

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None: ...

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None: ...

    def finish(self, task: str) -> None: ...

    def log(self, message: str) -> None: ...


class SilentProgress:
    """Progress that goes nowhere: the default for use cases called from code."""

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None:
        pass

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None:
        pass

    def finish(self, task: str) -> None:
        pass

    def log(self, message: str) -> None:
        pass


SILENT = SilentProgress()


# -- data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """What a store holds under one dataset name."""

    name: str
    rows: int | None
    bytes: int | None
    updated: datetime | None
    location: str
    checksum: str | None = None  # "sha256:<hex>" of the CSV bytes when known
    source: str | None = None  # where the rows came from: a URL, "synthetic", "local"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "bytes": self.bytes,
            "updated": self.updated.isoformat() if self.updated else None,
            "location": self.location,
            "checksum": self.checksum,
            "source": self.source,
        }


@runtime_checkable
class DataStore(Protocol):
    """A place raw ride files live: local disk, a bucket, a BigQuery dataset."""

    kind: str  # "local", "gcs", "bigquery"

    def describe(self, name: str) -> DatasetInfo | None:
        """What is held under `name`, or None."""
        ...

    def list(self) -> list[DatasetInfo]:
        """Every dataset held, sorted by name."""
        ...

    def read_chunks(
        self, name: str, chunk_size: int, *, rules: CleaningRules | None = None
    ) -> Iterator[pd.DataFrame]:
        """Raw rides in chunks, typed as `files.ride_csv.iter_csv_chunks` reads them.

        A store that can filter at the source may apply `rules` there (BigQuery
        pushes them into SQL); cleaning runs again after, so ignoring them is
        correct too. Raises NotFoundError if `name` is not held.
        """
        ...

    def put(self, name: str, csv_path: Path, *, source: str) -> DatasetInfo:
        """Store a raw CSV file under `name`, atomically and idempotently."""
        ...

    def delete(self, name: str) -> bool:
        """Remove `name`; True if something was removed."""
        ...


@runtime_checkable
class FileStore(DataStore, Protocol):
    """A DataStore whose datasets are files on this machine (the local store).

    Fetching writes into it through a staging file beside the target, so the
    final rename is atomic and on one disk.
    """

    def path(self, name: str) -> Path:
        """Where `name`'s CSV file is (or would be)."""
        ...

    def staging_path(self, name: str) -> Path:
        """A new empty temporary file beside `name`'s; the caller puts or removes it."""
        ...


@runtime_checkable
class Downloadable(Protocol):
    """A store that can copy a dataset's bytes unchanged to a local file (the bucket)."""

    def download(self, name: str, dest: Path) -> None: ...


@dataclass
class DataSeen:
    """The data a model was trained or evaluated on."""

    dataset: str
    source: str
    rows: int
    checksum: str | None = None


@dataclass
class ModelVersion:
    """One registered model version and everything recorded about it."""

    version: int
    stage: Stage
    created_at: datetime
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # train/val DataSeen as dicts
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    package_version: str | None = None
    git_commit: str | None = None
    run_id: str | None = None  # tracking run (MLflow) when there is one
    parent_version: int | None = None  # the version it was fine-tuned from
    plots: dict[str, str] = field(default_factory=dict)  # name -> path or URI (learning curve, residuals)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stage": self.stage,
            "created_at": self.created_at.isoformat(),
            "params": self.params,
            "metrics": self.metrics,
            "data": self.data,
            "evaluations": self.evaluations,
            "package_version": self.package_version,
            "git_commit": self.git_commit,
            "run_id": self.run_id,
            "parent_version": self.parent_version,
            "plots": self.plots,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        return cls(
            version=int(d["version"]),
            stage=d.get("stage", "None"),
            created_at=datetime.fromisoformat(d["created_at"]),
            params=d.get("params", {}),
            metrics=d.get("metrics", {}),
            data=d.get("data", {}),
            evaluations=d.get("evaluations", []),
            package_version=d.get("package_version"),
            git_commit=d.get("git_commit"),
            run_id=d.get("run_id"),
            parent_version=d.get("parent_version"),
        )


@dataclass(frozen=True)
class ModelRef:
    """Which model: a version number or a stage."""

    version: int | None = None
    stage: Stage | None = None

    def __str__(self) -> str:
        return f"version {self.version}" if self.version is not None else f"stage {self.stage}"


@dataclass
class Promotion:
    version: int
    stage: Stage
    previous: int | None  # the version that held the stage before, now Archived
    at: datetime
    by: str
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stage": self.stage,
            "previous": self.previous,
            "at": self.at.isoformat(),
            "by": self.by,
            "dry_run": self.dry_run,
        }


@dataclass
class TrainingRecord:
    """What a training run hands the registry along with the artifact."""

    params: dict[str, Any]
    metrics: dict[str, float]
    data: dict[str, Any]
    history: dict[str, list[float]]  # per-epoch loss, mae, val_loss, val_mae
    package_version: str | None
    git_commit: str | None
    parent_version: int | None = None
    # Files to keep beside the run (plots, feature config) where the backend can.
    extra_artifacts: list[Path] = field(default_factory=list)
    # (true fares, predicted fares) of up to a few thousand validation rides, for a residual plot.
    val_predictions: tuple[list[float], list[float]] | None = None


class ModelRegistry(Protocol):
    """Where trained models are versioned and staged."""

    kind: str

    def save(self, artifact_dir: Path, record: TrainingRecord) -> ModelVersion:
        """Register a new version; all or nothing."""
        ...

    def get(self, ref: ModelRef) -> ModelVersion:
        """Raise NotFoundError if there is no such version or nothing in that stage."""
        ...

    def fetch_artifact(self, ref: ModelRef, dest: Path) -> tuple[ModelVersion, Path]:
        """Copy (or point at) the artifact directory of `ref`; return it with its version."""
        ...

    def list(self) -> list[ModelVersion]:
        """All versions, oldest first."""
        ...

    def promote(self, version: int, stage: Stage, *, by: str) -> Promotion:
        """Put `version` in `stage`, archiving the previous holder of that stage."""
        ...

    def record_evaluation(self, version: int, evaluation: dict[str, Any]) -> None:
        """Keep an evaluation (metrics, data, time) with the version."""
        ...

    def promotions(self) -> builtins.list[dict[str, Any]]:
        """Every promotion kept (Promotion.as_dict()), oldest first."""
        ...


class RideSource(Protocol):
    """Where raw ride files come from: a remote URL template, the simulator."""

    kind: str

    def describe(self, name: str) -> str:
        """Where `name` would come from (a URL, "simulator seed 42"), for --dry-run and records."""
        ...

    def fetch(self, name: str, dest: Path, *, progress: Progress = SILENT) -> None:
        """Write the raw CSV of `name` to `dest` (a temporary path the caller renames)."""
        ...


@dataclass
class Notification:
    """What a workflow run tells a human: one subject line, a few body lines, and the facts as fields."""

    subject: str
    lines: list[str] = field(default_factory=list)
    level: Literal["info", "warning", "error"] = "info"
    # month, production_mae, challenger_mae, decision, drift, promote_command, runs_url...
    fields: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return "\n".join([self.subject, *self.lines])

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "lines": self.lines, "level": self.level, "fields": self.fields}


class Notifier(Protocol):
    """Tells a human something happened (a workflow verdict). Raises ServiceError when it could not."""

    kind: str

    def notify(self, note: Notification) -> None: ...


class MonthSteps(Protocol):
    """One month of the champion/challenger workflow, as steps an engine runs in this order.

    prepare; then evaluate_champion and train_challenger (independent: an engine
    may run them at once); then transition, notify, finish. Each step keeps its
    result on the object and in a journal, so a step already done by a killed
    run is not done again. A transient failure raises ServiceError: the engine
    may retry the step (at most `retries` more times).
    """

    month: str
    retries: int

    def prepare(self) -> None:
        """Fetch train_ and val_<month>, upload them where configured, measure drift."""
        ...

    def evaluate_champion(self) -> None:
        """Production's MAE on val_<month> (nothing when there is no Production)."""
        ...

    def train_challenger(self) -> None:
        """A new version trained on train_<month>, validated on val_<month>."""
        ...

    def transition(self) -> None:
        """Apply the policy: the challenger to Production, to Staging, or kept where it is."""
        ...

    def notify(self) -> None:
        """Tell a human; a failure is recorded and reported, never undoes the transition."""
        ...

    def finish(self) -> None:
        """Record the run in the history; the month is done."""
        ...


class WorkflowEngine(Protocol):
    """Runs a month's steps: in-process threads, or a Prefect flow."""

    kind: str

    def run(self, steps: MonthSteps) -> None: ...


@runtime_checkable
class ScheduledEngine(Protocol):
    """An engine that can run the workflow on a schedule itself (Prefect's `flow.serve`)."""

    def serve(self, cron: str, job: Callable[[], dict[str, Any]]) -> None:
        """Run `job` on the `cron` schedule until stopped; ConfigError if no scheduler can fire it."""
        ...


class RunHistory(Protocol):
    """Where workflow runs are remembered, and the lock that keeps two from running at once."""

    kind: str

    def lock(self) -> AbstractContextManager[None]:
        """Held for a whole run; raises BusyError at once if another process holds it."""
        ...

    def journal(self, month: str) -> dict[str, Any]:
        """What an unfinished run of `month` already did ({} if nothing)."""
        ...

    def write_journal(self, month: str, journal: dict[str, Any]) -> None: ...

    def record(self, run: dict[str, Any]) -> None:
        """Keep a finished run (and forget its journal)."""
        ...

    def runs(self) -> list[dict[str, Any]]:
        """Finished runs, oldest first."""
        ...


class ObjectStore(Protocol):
    """Small named objects under one folder (a cloud job's folder in a bucket)."""

    def uri(self, key: str = "") -> str:
        """Where `key` is, e.g. gs://bucket/jobs/<id>/result.json ("" : the folder)."""
        ...

    def read(self, key: str) -> bytes | None:
        """The bytes of `key`, or None when there is no such object."""
        ...

    def write(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None: ...

    def upload(self, key: str, path: Path) -> None: ...

    def children(self) -> list[str]:
        """The names of the sub-folders (one per job, in the jobs folder)."""
        ...

    def child(self, name: str) -> ObjectStore:
        """The sub-folder `name`."""
        ...

    def check(self) -> None:
        """Raise ConfigError/ServiceError naming what is missing (the bucket, a permission)."""
        ...


@dataclass
class JobLaunch:
    """What a TrainingRunner needs to start one job, and (after `submit`) what it started."""

    job_id: str
    job_uri: str  # gs://bucket/jobs/<id>: the job folder
    wheel_uri: str  # gs://bucket/jobs/<id>/<wheel file>
    startup_script: str
    machine_type: str
    zone: str
    region: str
    project: str | None
    spot: bool = False
    max_hours: float = 4.0
    keep_vm: bool = False
    service_account: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    resource: str | None = None  # the VM name or CustomJob resource name, once started

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "startup_script"}


@dataclass
class RunnerState:
    """Where a started job stands on the machine side: running, or ended (gone) and why."""

    running: bool
    detail: str = ""  # "RUNNING", "TERMINATED", "not found", "JOB_STATE_FAILED: ..."


class TrainingRunner(Protocol):
    """Runs a training job somewhere (this machine, a VM, Vertex AI); the job folder says how it went."""

    kind: str

    def request(self, launch: JobLaunch) -> dict[str, Any]:
        """The exact API request `submit` would send (shown by --dry-run)."""
        ...

    def preflight(self, launch: JobLaunch) -> None:
        """Raise ConfigError (exit 3) or ServiceError (exit 5) naming what is missing; create nothing."""
        ...

    def submit(self, launch: JobLaunch) -> str:
        """Start the job; return the resource started (kept in launch.resource)."""
        ...

    def state(self, launch: JobLaunch) -> RunnerState: ...

    def cancel(self, launch: JobLaunch) -> bool:
        """Stop the job and delete its machine; True if there was something to stop."""
        ...
