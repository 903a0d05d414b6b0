"""Data versions and reproduction: pulling data back from the cloud, and rebuilding a recorded model.

Mixed into Taxifare, whose stores, registry and naming rules it uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from taxifare_cli.core.vocabulary import CloudStore, StoreBackend
from taxifare_cli.ports import SILENT, DatasetInfo, DataStore, FileStore, ModelRegistry, Progress
from taxifare_cli.settings import Settings

if TYPE_CHECKING:
    from taxifare_cli.services.reproduce import ReproduceResult
    from taxifare_cli.services.transfer import TransferStep


class DataVersions:
    """`data fetch --source gcs|bigquery [--checksum]`, `data ls --versions`, `model reproduce`."""

    settings: Settings
    progress: Progress = SILENT

    # Taxifare's: the stores, the registry and the rules for dataset names.
    @property
    def local(self) -> FileStore:
        raise NotImplementedError

    @property
    def registry(self) -> ModelRegistry:
        raise NotImplementedError

    @property
    def chunk_size(self) -> int:
        raise NotImplementedError

    def store_named(self, name: StoreBackend) -> DataStore:
        raise NotImplementedError

    def configured_stores(self) -> list[DataStore]:
        raise NotImplementedError

    def part(self, size: str | None, month: str | None, default: str | None = None) -> str:
        raise NotImplementedError

    def pull(
        self,
        source: CloudStore,
        size: str | None = None,
        month: str | None = None,
        *,
        checksums: Sequence[str] = (),
        dry_run: bool = False,
    ) -> list[TransferStep]:
        """train_ and val_ of a size or month from the bucket or BigQuery to local disk, or exact versions."""
        from taxifare_cli.services.transfer import pull_data

        part = self.part(size, month, None if (size or month) else self.settings.data.size)
        return pull_data(
            [f"train_{part}", f"val_{part}"],
            src=self.store_named(source),
            dest=self.local,
            checksums=checksums,
            chunk_size=self.chunk_size,
            dry_run=dry_run,
            progress=self.progress,
        )

    def data_versions(self) -> dict[str, list[DatasetInfo]]:
        """The versions each configured place holds: every content the bucket kept, the rest as held now."""
        from taxifare_cli.services.data import list_versions

        return list_versions(self.configured_stores())

    def reproduce(
        self,
        version: int,
        *,
        dry_run: bool = False,
        register: bool = False,
        tolerance: float | None = None,
    ) -> ReproduceResult:
        """Rebuild `version` from its exact data and recorded parameters; compare its val MAE."""
        from taxifare_cli.services.reproduce import DEFAULT_TOLERANCE, reproduce_model

        stores = self.configured_stores()
        return reproduce_model(
            version,
            registry=self.registry,
            local=self.local,
            places=[s for s in stores if s.kind != self.local.kind],
            dry_run=dry_run,
            register=register,
            tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
            progress=self.progress,
        )
