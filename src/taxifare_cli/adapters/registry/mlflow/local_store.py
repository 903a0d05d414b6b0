"""MLflow with no server: its SQLite store and artifact folder under the taxifare home.

MLflow itself, given no tracking URI, writes ./mlflow.db and ./mlruns in whatever
directory it runs from; taxifare keeps them in one place (mlflow.local_store,
default ~/.taxifare), so every command and `mlflow ui` see the same runs.
"""

from __future__ import annotations

from pathlib import Path

from taxifare_cli.errors import ConfigError


def local_store(directory: Path) -> tuple[str, str]:
    """(tracking URI, artifact root) of the store in `directory`: mlflow.db and mlruns/, created."""
    try:
        (directory / "mlruns").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the local MLflow store in {directory}: {e.strerror}",
            hint="set mlflow.local_store to a writable directory, or mlflow.tracking_uri to a server",
        ) from e
    directory = directory.resolve()
    return f"sqlite:///{directory / 'mlflow.db'}", (directory / "mlruns").as_uri()


def ui_command(tracking_uri: str, artifact_root: str | None) -> str | None:
    """The `mlflow ui` command that shows a local store (None for a server: open its URL)."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    root = f" --default-artifact-root {artifact_root}" if artifact_root else ""
    return f"mlflow ui --backend-store-uri {tracking_uri}{root}"
