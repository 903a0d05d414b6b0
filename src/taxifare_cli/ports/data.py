"""Where raw ride files live and come from: the stores and sources, and what they report."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from taxifare_cli.ports.progress import SILENT, Progress

if TYPE_CHECKING:
    import pandas as pd

    from taxifare_cli.core.cleaning import CleaningRules


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

    def download(self, name: str, dest: Path, *, progress: Progress = SILENT) -> str:
        """Stream `name` to `dest`, checked against the checksum the store holds; return it."""
        ...


@runtime_checkable
class VersionedStore(Protocol):
    """A store that keeps every distinct content it was given under its checksum (the bucket).

    A version is written once and never replaced, so a model's recorded
    checksum finds the exact bytes it was trained on, whatever the dataset's
    name holds now.
    """

    kind: str

    def version_location(self, checksum: str) -> str:
        """Where the content `checksum` ("sha256:<hex>") is or would be kept."""
        ...

    def describe_version(self, checksum: str) -> DatasetInfo | None:
        """The version with this checksum (named as first uploaded), or None."""
        ...

    def versions(self) -> list[DatasetInfo]:
        """Every version held, by dataset name then time."""
        ...

    def download_version(self, checksum: str, dest: Path, *, progress: Progress = SILENT) -> DatasetInfo:
        """Stream the version `checksum` to `dest`, verified; NotFoundError if not held."""
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
