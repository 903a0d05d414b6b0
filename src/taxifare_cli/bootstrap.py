"""The one place that chooses a backend. Everything else asks for a port.

A backend is a line in a table: name -> ("module:Class", extra to install).
The module is imported on first use, so unused backends cost nothing and a
missing optional dependency becomes one clear line about which extra to install.
Every backend class is built the same way: `Class.from_settings(settings)`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from taxifare_cli.core.vocabulary import (
    ENGINE_NAMES,
    NOTIFY_BACKENDS,
    REGISTRY_BACKENDS,
    RIDE_ORIGINS,
    RUNNER_NAMES,
    STORE_BACKENDS,
)
from taxifare_cli.errors import ConfigError, MissingExtraError
from taxifare_cli.ports import (
    DataStore,
    ModelRegistry,
    Notifier,
    ObjectStore,
    RideSource,
    RunHistory,
    TrainingRunner,
    WorkflowEngine,
)
from taxifare_cli.settings import Settings

if TYPE_CHECKING:
    from taxifare_cli.core.model import HyperParams

Table = dict[str, tuple[str, str | None]]

STORES: Table = {
    "local": ("taxifare_cli.adapters.storage.local:LocalStore", None),
    "gcs": ("taxifare_cli.adapters.storage.gcs:GcsStore", "gcp"),
    "bigquery": ("taxifare_cli.adapters.storage.bigquery:BigQueryStore", "gcp"),
}
REGISTRIES: Table = {
    "local": ("taxifare_cli.adapters.registry.local:LocalRegistry", None),
    "mlflow": ("taxifare_cli.adapters.registry.mlflow:MlflowRegistry", "mlflow"),
}
SOURCES: Table = {
    "remote": ("taxifare_cli.adapters.sources.http:HttpSource", None),
    "synthetic": ("taxifare_cli.adapters.sources.synthetic:SyntheticSource", None),
}
NOTIFIERS: Table = {
    "console": ("taxifare_cli.adapters.notify.console:ConsoleNotifier", None),
    "webhook": ("taxifare_cli.adapters.notify.webhook:WebhookNotifier", None),
}
ENGINES: Table = {
    "local": ("taxifare_cli.adapters.engines.local:LocalEngine", None),
    "prefect": ("taxifare_cli.adapters.engines.prefect:PrefectEngine", "prefect"),
}
HISTORIES: Table = {
    "local": ("taxifare_cli.adapters.history.local:LocalRunHistory", None),
}
# Where `taxifare cloud ...-train` runs a job; all of them talk through a job folder in the bucket.
RUNNERS: Table = {
    "local": ("taxifare_cli.adapters.compute.local:LocalRunner", None),
    "compute_engine": ("taxifare_cli.adapters.compute.compute_engine:ComputeEngineRunner", "cloud"),
    "vertex": ("taxifare_cli.adapters.compute.vertex:VertexRunner", "cloud"),
}
JOB_FOLDERS = ("taxifare_cli.adapters.storage.gcs_objects:GcsObjects", "gcp")
# The vocabulary and the tables name the same backends (tests/unit/test_bootstrap.py checks it).
TABLES: dict[str, tuple[Table, tuple[str, ...]]] = {
    "storage": (STORES, STORE_BACKENDS),
    "registry": (REGISTRIES, REGISTRY_BACKENDS),
    "source": (SOURCES, RIDE_ORIGINS),
    "notify": (NOTIFIERS, NOTIFY_BACKENDS),
    "engine": (ENGINES, ENGINE_NAMES),
    "history": (HISTORIES, ("local",)),
    "runner": (RUNNERS, RUNNER_NAMES),
}


def _build(kind: str, name: str, settings: Settings) -> Any:
    table, _ = TABLES[kind]
    try:
        target, extra = table[name]
    except KeyError:
        raise ConfigError(f"unknown {kind} backend {name!r}: choose one of {', '.join(table)}") from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if extra is not None and e.name and not e.name.startswith("taxifare_cli"):
            raise MissingExtraError(name, extra) from e
        raise
    return getattr(module, attr).from_settings(settings)


def build_store(settings: Settings, name: str | None = None) -> DataStore:
    """The data store `name` (default: storage.backend) configured from settings."""
    store: DataStore = _build("storage", name or settings.storage.backend, settings)
    return store


def build_registry(settings: Settings, name: str | None = None) -> ModelRegistry:
    """The model registry `name` (default: registry.backend) configured from settings."""
    registry: ModelRegistry = _build("registry", name or settings.registry.backend, settings)
    return registry


def build_source(settings: Settings, name: str | None = None) -> RideSource:
    """Where `data fetch` gets rides: the remote URL template or the simulator."""
    source: RideSource = _build("source", name or settings.data.origin, settings)
    return source


def build_notifier(settings: Settings, name: str | None = None) -> Notifier:
    """Where workflow verdicts go (notify.backend)."""
    notifier: Notifier = _build("notify", name or settings.notify.backend, settings)
    return notifier


def build_engine(settings: Settings, name: str | None = None) -> WorkflowEngine:
    """What runs a month's steps (workflow.engine)."""
    engine: WorkflowEngine = _build("engine", name or settings.workflow.engine, settings)
    return engine


def build_history(settings: Settings) -> RunHistory:
    """Where workflow runs are remembered."""
    history: RunHistory = _build("history", "local", settings)
    return history


def build_hyperparams(settings: Settings) -> HyperParams:
    """Training hyper-parameters from the `training` section."""
    from taxifare_cli.core.model import HyperParams

    t = settings.training
    return HyperParams(
        hidden_layers=tuple(t.hidden_layers),
        learning_rate=t.learning_rate,
        dropout=t.dropout,
        batch_size=t.batch_size,
        epochs=t.epochs,
        patience=t.patience,
        seed=t.seed,
    )


def build_runner(settings: Settings, name: str) -> TrainingRunner:
    """What starts a cloud training job: local (a subprocess), compute_engine (a VM), vertex."""
    runner: TrainingRunner = _build("runner", name, settings)
    return runner


def _job_folder_class(backend: str) -> Any:
    target, extra = JOB_FOLDERS
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        if e.name and not e.name.startswith("taxifare_cli"):
            raise MissingExtraError(backend, extra or "gcp") from e
        raise
    return getattr(module, attr)


def build_jobs_folder(settings: Settings) -> ObjectStore:
    """The folder of cloud job folders: gs://<storage.bucket>/<cloud.jobs_prefix>."""
    store: ObjectStore = _job_folder_class("gcs").from_settings(settings)
    return store


def open_job_folder(uri: str, settings: Settings | None = None) -> ObjectStore:
    """One job's folder by its address (gs://bucket/jobs/<id>), as the job agent opens it."""
    store: ObjectStore = _job_folder_class("gcs").from_uri(uri, settings)
    return store
