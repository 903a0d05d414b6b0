"""Option types shared by several commands."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

Size = Annotated[
    str | None,
    typer.Option("--size", help="Dataset size: 1k, 10k, 100k, 500k, 1m or all (default: data.size)."),
]
Month = Annotated[
    str | None, typer.Option("--month", help="A month of 2015: jan, feb, mar, apr, may or jun.")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would be done; change nothing.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Version = Annotated[int | None, typer.Option("--version", "-v", help="A model version number.", min=1)]


class StoreName(str, Enum):
    local = "local"
    gcs = "gcs"
    bigquery = "bigquery"


class StageName(str, Enum):
    Staging = "Staging"
    Production = "Production"


class PromoteStage(str, Enum):
    Staging = "Staging"
    Production = "Production"
    Archived = "Archived"


class RegistryName(str, Enum):
    local = "local"
    mlflow = "mlflow"


class Origin(str, Enum):
    remote = "remote"
    synthetic = "synthetic"


Source = Annotated[
    StoreName | None, typer.Option("--source", help="Where to read rides (default: storage.backend).")
]
Target = Annotated[
    RegistryName | None, typer.Option("--target", help="Model registry (default: registry.backend).")
]
Stage = Annotated[
    StageName | None, typer.Option("--stage", help="Use the model in this stage.", case_sensitive=False)
]
