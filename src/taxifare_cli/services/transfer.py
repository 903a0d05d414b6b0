"""upload_data and reset_sources: moving raw ride files between stores.

`upload_data` copies named datasets from one store to another (local files to
the bucket, local files or the bucket into BigQuery), the bytes unchanged, each
one idempotently. `reset_sources` is the original project's reset_sources_all:
fetch the standard sizes, put them in the bucket, (re)create the tables; with
`dry_run` it only lists what it would do.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from taxifare_cli.core.schema import parse_dataset_name
from taxifare_cli.errors import NotFoundError, UsageError
from taxifare_cli.files.atomic import scratch_dir
from taxifare_cli.files.ride_csv import sha256_file, write_csv_atomic
from taxifare_cli.ports import SILENT, DatasetInfo, DataStore, Downloadable, FileStore, Progress, RideSource
from taxifare_cli.services.data import dataset_names, fetch_data

# The sizes `data reset` puts everywhere (the original's reset_sources_all); "all" is left out: it is huge.
STANDARD_PARTS: tuple[str, ...] = ("1k", "10k", "100k", "500k")

# create: nothing was there; replace: something else was; unchanged: the same bytes were;
# refresh (dry runs only): will be fetched again and replaced only if it differs.
Action = Literal["create", "replace", "unchanged", "refresh"]


@dataclass
class TransferStep:
    """One dataset fetched into, or copied to, one store."""

    step: Literal["fetch", "upload"]
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
