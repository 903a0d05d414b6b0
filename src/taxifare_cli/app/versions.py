"""Data versions and reproduction: pulling data back from the cloud, and rebuilding a recorded model.

Mixed into Taxifare, whose stores, registry and naming rules it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from taxifare_cli.core.vocabulary import CloudStore, StoreBackend
from taxifare_cli.ports import (
    SILENT,
    DatasetInfo,
    DataStore,
    FileStore,
    ModelRecords,
    ModelRegistry,
    ModelVersion,
    Progress,
)
from taxifare_cli.settings import Settings

if TYPE_CHECKING:
    from taxifare_cli.services.model_record import Publication
    from taxifare_cli.services.reproduce import ReproduceResult
    from taxifare_cli.services.transfer import TransferStep


class DataVersions:
    """`data fetch --source gcs|bigquery [--checksum]`, `data ls --versions`, `model reproduce`,
    and the versions' records published to the bucket for machines with another registry."""

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
        announce: Callable[[str], None] | None = None,
    ) -> ReproduceResult:
        """Rebuild `version` from its exact data and recorded parameters; compare its val MAE."""
        from taxifare_cli.services.reproduce import DEFAULT_TOLERANCE, reproduce_model

        stores = self.configured_stores()
        return reproduce_model(
            version,
            registry=self.registry,
            local=self.local,
            places=[s for s in stores if s.kind != self.local.kind],
            records=self.model_records(),
            model_name=self.model_name,
            dry_run=dry_run,
            register=register,
            tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
            progress=self.progress,
            announce=announce,
        )

    # -- model records in the bucket --------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The model's name in the registry in use: its records' folder in the bucket."""
        if self.settings.registry.backend == "mlflow":
            return self.settings.mlflow.model_name
        return self.settings.registry.model_name

    def model_records(self) -> ModelRecords | None:
        """The bucket's model records when a bucket is configured (storage.bucket), else None."""
        if not self.settings.storage.bucket:
            return None
        store = self.store_named("gcs")
        return store if isinstance(store, ModelRecords) else None

    def publish(self, mv: ModelVersion) -> Publication | None:
        """Publish a just-registered version's record to the bucket (None: no bucket); never raises."""
        from taxifare_cli.services.model_record import Publication, publish_version

        if not self.settings.storage.bucket:
            return None
        try:
            records = self.model_records()
        except Exception as e:  # the gcp extra missing, a bad bucket name: the version stays registered
            return Publication(
                mv.version, "the bucket", "failed", f"version {mv.version} was not published: {e}"
            )
        if records is None:
            return None
        return publish_version(records, self.model_name, mv)
