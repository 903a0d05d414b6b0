"""fetch_data, list_data and list_versions: getting raw rides onto disk and saying what is where."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taxifare_cli.core.schema import RAW_COLUMNS, SPLITS, check_part
from taxifare_cli.errors import DataError, UsageError
from taxifare_cli.ports import (
    SILENT,
    DatasetInfo,
    DataStore,
    FileStore,
    Progress,
    RideSource,
    VersionedStore,
)


@dataclass
class FetchResult:
    name: str
    origin: str  # the URL or "synthetic (seed N)"
    info: DatasetInfo | None  # None on a dry run
    unchanged: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "origin": self.origin,
            "unchanged": self.unchanged,
            **({"held": self.info.as_dict()} if self.info else {}),
        }


def dataset_names(part: str) -> list[str]:
    """`10k` -> [train_10k, val_10k]; raises UsageError for an unknown part."""
    try:
        p = check_part(part)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return [f"{split}_{p}" for split in SPLITS]


def _check_header(path: Path, origin: str) -> None:
    with path.open("rb") as f:
        head = f.readline(1 << 16).decode("utf-8", "replace").strip()
    columns = [c.strip().strip('"') for c in head.split(",")]
    missing = [c for c in RAW_COLUMNS if c not in columns]
    if missing:
        shown = head[:80] + ("..." if len(head) > 80 else "")
        raise DataError(
            f"{origin} is not a raw rides CSV: missing {', '.join(missing)} (first line: {shown!r})",
            hint="check data.remote_url",
        )


def fetch_data(
    part: str,
    store: FileStore,
    source: RideSource,
    *,
    dry_run: bool = False,
    progress: Progress = SILENT,
) -> list[FetchResult]:
    """Get train_<part> and val_<part> from `source` into the local store."""
    results = []
    for name in dataset_names(part):
        origin = source.describe(name)
        if dry_run:
            results.append(FetchResult(name, origin, store.describe(name)))
            continue
        before = store.describe(name)
        tmp = store.staging_path(name)
        try:
            source.fetch(name, tmp, progress=progress)
            _check_header(tmp, origin)
            info = store.put(name, tmp, source=origin)
        finally:
            tmp.unlink(missing_ok=True)
        unchanged = before is not None and before.checksum == info.checksum
        results.append(FetchResult(name, origin, info, unchanged))
    return results


def list_data(stores: list[DataStore]) -> dict[str, list[DatasetInfo]]:
    """What each store holds, by store kind."""
    return {store.kind: store.list() for store in stores}


def list_versions(stores: list[DataStore]) -> dict[str, list[DatasetInfo]]:
    """The versions each store holds, by store kind: every content a versioned store (the bucket)
    kept, and one per dataset, as held now, for the others."""
    return {
        store.kind: store.versions() if isinstance(store, VersionedStore) else store.list()
        for store in stores
    }
