"""upload_data, pull_data and reset_sources: moving raw ride files between stores.

`upload_data` copies named datasets from one store to another (local files to
the bucket, local files or the bucket into BigQuery), the bytes unchanged, each
one idempotently. `pull_data` brings them back to local disk: a dataset as the
bucket or warehouse holds it now, or an exact version from the bucket by its
checksum. `reset_sources` is the original project's reset_sources_all:
fetch the standard sizes, put them in the bucket, (re)create the tables; with
`dry_run` it only lists what it would do.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from taxifare_cli.core.schema import parse_dataset_name
from taxifare_cli.errors import DataError, NotFoundError, UsageError
from taxifare_cli.files.atomic import scratch_dir
from taxifare_cli.files.ride_csv import sha256_file, write_csv_atomic
from taxifare_cli.ports import (
    SILENT,
    DatasetInfo,
    DataStore,
    Downloadable,
    FileStore,
    Progress,
    RideSource,
    VersionedStore,
)
from taxifare_cli.services.data import dataset_names, fetch_data

if TYPE_CHECKING:
    import pandas as pd

# The sizes `data reset` puts everywhere (the original's reset_sources_all); "all" is left out: it is huge.
STANDARD_PARTS: tuple[str, ...] = ("1k", "10k", "100k", "500k")

_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")

# create: nothing was there; replace: something else was; unchanged: the same bytes were;
# refresh (dry runs only): will be fetched again and replaced only if it differs.
Action = Literal["create", "replace", "unchanged", "refresh"]


@dataclass
class TransferStep:
    """One dataset fetched into, or copied to, one store."""

    step: Literal["fetch", "upload", "pull"]
    name: str
    source: str  # a store kind ("local", "gcs"), or where a fetch comes from (a URL, "synthetic (seed 42)")
    destination: str  # a store kind
    action: Action
    dry_run: bool = False
    info: DatasetInfo | None = None  # what the destination holds afterwards (before, on a dry run)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "name": self.name,
            "source": self.source,
            "destination": self.destination,
            "action": self.action,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            **({"held": self.info.as_dict()} if self.info else {}),
        }


def upload_data(
    names: Sequence[str],
    *,
    src: DataStore,
    dest: DataStore,
    chunk_size: int,
    dry_run: bool = False,
    progress: Progress = SILENT,
) -> list[TransferStep]:
    """Copy each dataset in `names` from `src` to `dest`; a dataset `dest` already holds is left alone.

    The bytes go unchanged (checksums match across stores). A failed copy leaves
    what `dest` held before. Raises NotFoundError if `src` lacks a dataset,
    before anything is copied.
    """
    if src.kind == dest.kind:
        raise UsageError(f"source and destination are both {src.kind}: nothing to upload")
    checked = [str(parse_dataset_name(n)) for n in names]
    held = {name: src.describe(name) for name in checked}
    missing = [name for name, info in held.items() if info is None]
    if missing:
        part = missing[0].split("_", 1)[1]
        raise NotFoundError(
            f"{src.kind} store has no {', '.join(missing)}",
            hint=f"put it there first (e.g. taxifare data fetch --size/--month {part})",
        )
    steps = []
    task = f"uploading to {dest.kind}"
    total = sum(info.bytes or 0 for info in held.values() if info is not None)
    if not dry_run:
        progress.start(task, total=total or None, unit="bytes")
    try:
        for name in checked:
            source_info = held[name]
            assert source_info is not None
            if dry_run:
                before = dest.describe(name)
                steps.append(
                    TransferStep(
                        "upload", name, src.kind, dest.kind, _plan(before, source_info.checksum), True, before
                    )
                )
                continue
            steps.append(_copy(name, src, dest, source_info, chunk_size))
            progress.advance(task, source_info.bytes or 0, info=name)
    finally:
        if not dry_run:
            progress.finish(task)
    return steps


def pull_data(
    names: Sequence[str],
    *,
    src: DataStore,
    dest: FileStore,
    checksums: Sequence[str] = (),
    chunk_size: int,
    dry_run: bool = False,
    progress: Progress = SILENT,
) -> list[TransferStep]:
    """Bring datasets from `src` (the bucket, BigQuery) to local disk, atomically.

    Without `checksums`: each of `names` as `src` holds it now; a local file with
    the same checksum is left alone. With them: those exact versions, from a
    store that keeps versions (the bucket), each under the name it was uploaded
    as (which must be one of `names`). A download is streamed into a staging
    file beside the target, checked, then renamed over it.
    """
    if src.kind == dest.kind:
        raise UsageError(f"{dest.kind} is where data is pulled to: pull from gcs or bigquery")
    checked = [str(parse_dataset_name(n)) for n in names]
    malformed = [c for c in checksums if not _SHA256.match(c)]
    if malformed:
        raise UsageError(
            f"{malformed[0]!r} is not a sha256 checksum", hint="checksums read sha256:<64 hex digits>"
        )
    if checksums:
        if not isinstance(src, VersionedStore):
            raise UsageError(f"{src.kind} keeps no versions: --checksum needs --source gcs")
        wanted = [_version_wanted(src, c, checked) for c in checksums]
    else:
        wanted = []
        for name in checked:
            info = src.describe(name)
            if info is None:
                part = name.split("_", 1)[1]
                raise NotFoundError(
                    f"{src.kind} store has no {name}",
                    hint=f"upload it first: taxifare data upload --to {src.kind} --size/--month {part}",
                )
            wanted.append((name, info))
    steps = []
    for name, info in wanted:
        start = time.perf_counter()
        before = dest.describe(name)
        if before is not None and info.checksum is not None and before.checksum == info.checksum:
            steps.append(TransferStep("pull", name, src.kind, dest.kind, "unchanged", dry_run, before))
            continue
        action: Action = "create" if before is None else "replace"
        if dry_run:
            steps.append(TransferStep("pull", name, src.kind, dest.kind, action, True, before))
            continue
        tmp = dest.staging_path(name)
        try:
            if checksums:
                assert isinstance(src, VersionedStore) and info.checksum is not None
                src.download_version(info.checksum, tmp, progress=progress)
            elif isinstance(src, Downloadable):
                src.download(name, tmp, progress=progress)
            else:  # a warehouse: rows re-encoded as CSV, in the order the store reads them
                _rows_to_csv(src, name, tmp, chunk_size, info.rows, progress)
            after = dest.put(name, tmp, source=info.location)
        finally:
            tmp.unlink(missing_ok=True)
        took = time.perf_counter() - start
        steps.append(TransferStep("pull", name, src.kind, dest.kind, action, False, after, took))
    return steps


def _version_wanted(src: VersionedStore, checksum: str, names: list[str]) -> tuple[str, DatasetInfo]:
    info = src.describe_version(checksum)
    if info is None:
        raise NotFoundError(
            f"{src.kind} holds no version {checksum}",
            hint="see what it holds: taxifare data ls --versions",
        )
    if info.name not in names:
        raise UsageError(
            f"{checksum} is a version of {info.name}, not of {' or '.join(names)}",
            hint="fetch it with the --size/--month of that dataset",
        )
    return info.name, info


def _rows_to_csv(
    src: DataStore, name: str, dest: Path, chunk_size: int, expected: int | None, progress: Progress
) -> None:
    task = f"pulling {name}"
    progress.start(task, total=expected, unit="rows")

    def counted() -> Iterator[pd.DataFrame]:
        for frame in src.read_chunks(name, chunk_size):
            progress.advance(task, len(frame))
            yield frame

    try:
        rows, _ = write_csv_atomic(counted(), dest)
    finally:
        progress.finish(task)
    if expected is not None and rows != expected:  # the check a warehouse allows: every row came
        raise DataError(
            f"{src.kind} gave {rows} rows of {name}, but holds {expected}",
            hint="it changed during the pull: run the command again",
        )


def reset_sources(
    *,
    local: FileStore,
    source: RideSource,
    dests: Sequence[DataStore] = (),
    chunk_size: int,
    parts: Sequence[str] = STANDARD_PARTS,
    dry_run: bool = False,
    progress: Progress = SILENT,
) -> list[TransferStep]:
    """Fetch `parts` from `source` into `local`, then copy them to each of `dests` in order.

    `dests` are the cloud stores to (re)create, e.g. [gcs, bigquery]; empty
    resets only the local files (`--only local`). Returns every step, done or,
    with `dry_run`, planned.
    """
    names = [name for part in parts for name in dataset_names(part)]
    steps: list[TransferStep] = []
    local_sums: dict[str, str | None] = {}
    for part in parts:
        local_before = {name: local.describe(name) for name in dataset_names(part)}
        start = time.perf_counter()
        fetched = fetch_data(part, local, source, dry_run=dry_run, progress=progress)
        took = (time.perf_counter() - start) / max(len(fetched), 1)
        for f in fetched:
            held = local_before[f.name]
            action: Action
            if held is None:
                action = "create"
            elif dry_run:
                action = "refresh"
            else:
                action = "unchanged" if f.unchanged else "replace"
            steps.append(TransferStep("fetch", f.name, f.origin, local.kind, action, dry_run, f.info, took))
            local_sums[f.name] = f.info.checksum if f.info is not None else None
    for dest in dests:
        if dry_run:
            for name in names:
                before = dest.describe(name)
                # Planned against the local file as it is now (a fetch usually brings the same bytes).
                checksum = local_sums.get(name)
                plan = _plan(before, checksum) if checksum else ("create" if before is None else "refresh")
                steps.append(TransferStep("upload", name, local.kind, dest.kind, plan, True, before))
        else:
            steps.extend(upload_data(names, src=local, dest=dest, chunk_size=chunk_size, progress=progress))
    return steps


def _plan(before: DatasetInfo | None, checksum: str | None) -> Action:
    if before is None:
        return "create"
    if checksum is not None and before.checksum == checksum:
        return "unchanged"
    return "replace"


def _copy(
    name: str, src: DataStore, dest: DataStore, source_info: DatasetInfo, chunk_size: int
) -> TransferStep:
    start = time.perf_counter()
    before = dest.describe(name)
    origin = source_info.source or src.kind
    if isinstance(src, FileStore):
        after = dest.put(name, src.path(name), source=origin)
    else:
        with scratch_dir("upload") as tmp:
            path = Path(tmp) / f"{name}.csv"
            if isinstance(src, Downloadable):
                src.download(name, path)
            else:  # re-encoded through the reader: same rows, maybe not the same bytes
                write_csv_atomic(src.read_chunks(name, chunk_size), path)
            if source_info.checksum is not None and sha256_file(path) != source_info.checksum:
                origin = f"{origin} (via {src.kind})"
            after = dest.put(name, path, source=origin)
    action: Action
    if before is None:
        action = "create"
    elif after.updated == before.updated and after.checksum == before.checksum:
        action = "unchanged"
    else:
        action = "replace"
    return TransferStep(
        "upload", name, src.kind, dest.kind, action, False, after, time.perf_counter() - start
    )
