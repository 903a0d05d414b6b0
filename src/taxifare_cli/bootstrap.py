"""The one place that chooses a backend. Everything else asks for a port.

A backend is a line in a table: name -> ("module:Class", extra to install).
The module is imported on first use, so unused backends cost nothing and a
missing optional dependency becomes one clear line about which extra to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from taxifare_cli.errors import ConfigError, MissingExtraError
from taxifare_cli.ports import DataStore, ModelRegistry, RideSource
from taxifare_cli.settings import Settings

if TYPE_CHECKING:
    from taxifare_cli.core.model import HyperParams

STORES: dict[str, tuple[str, str | None]] = {
    "local": ("taxifare_cli.adapters.storage.local:LocalStore", None),
    "gcs": ("taxifare_cli.adapters.storage.gcs:GcsStore", "gcp"),
    "bigquery": ("taxifare_cli.adapters.storage.bigquery:BigQueryStore", "gcp"),
}
REGISTRIES: dict[str, tuple[str, str | None]] = {
    "local": ("taxifare_cli.adapters.registry.local:LocalRegistry", None),
    "mlflow": ("taxifare_cli.adapters.registry.mlflow:MlflowRegistry", "mlflow"),
}
SOURCES: dict[str, tuple[str, str | None]] = {
    "remote": ("taxifare_cli.adapters.sources.http:HttpSource", None),
    "synthetic": ("taxifare_cli.adapters.sources.synthetic:SyntheticSource", None),
}


def _load(table: dict[str, tuple[str, str | None]], kind: str, name: str) -> Any:
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
    cls: Any = getattr(module, attr)
    return cls


def build_store(settings: Settings, name: str | None = None) -> DataStore:
    """The data store `name` (default: storage.backend) configured from settings."""
    name = name or settings.storage.backend
    cls = _load(STORES, "storage", name)
    if name == "local":
        store: DataStore = cls(settings.data_dir)
    else:
        store = cls.from_settings(settings)
    return store


def build_registry(settings: Settings, name: str | None = None) -> ModelRegistry:
    """The model registry `name` (default: registry.backend) configured from settings."""
    name = name or settings.registry.backend
    cls = _load(REGISTRIES, "registry", name)
    if name == "local":
        registry: ModelRegistry = cls(settings.registry_dir, settings.registry.model_name)
    else:
        registry = cls.from_settings(settings)
    return registry


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


def build_source(settings: Settings, name: str | None = None) -> RideSource:
    """Where `data fetch` gets rides: the remote URL template or the simulator."""
    cls = _load(SOURCES, "source", name or settings.data.origin)
    source: RideSource = cls.from_settings(settings)
    return source
