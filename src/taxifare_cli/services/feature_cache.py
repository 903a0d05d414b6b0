"""Clean rides turned into features once, kept on local disk for the epochs.

Each training epoch needs every row again. Re-reading and re-cleaning CSV (or
re-querying BigQuery) per epoch would be slow, and holding the features in
memory would make memory grow with the data. So the first pass writes float32
rows (features then target) to a binary file, shuffled within each chunk, and
epochs read it back block by block with plain reads (not mmap, whose touched
pages count in the process's resident memory).

The first pass keeps both cores busy: a thread reads (and parses) the next chunk
while two workers clean chunks and compute their features (numpy lets go of the
GIL inside its loops), and the caller gets them back in file order. A few chunks
are in flight at most, so memory stays flat with the size of the file.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import pyarrow as pa

from taxifare_cli.core.cleaning import DEFAULT_RULES, CleaningReport, CleaningRules, clean_rows
from taxifare_cli.core.features import N_FEATURES, compute_features
from taxifare_cli.core.model import RunningStats
from taxifare_cli.errors import STOP
from taxifare_cli.files.read_ahead import map_in_order, read_ahead
from taxifare_cli.ports import SILENT, DataStore, Progress

if TYPE_CHECKING:
    import pandas as pd

BLOCK_ROWS = 65_536
# Chunks cleaned and featurised at once: one per core of the machines this runs on
# (laptops, CI and small cloud VMs have two or more); the reader thread makes a third.
WORKERS = 2
_WIDTH = N_FEATURES + 1


@dataclass
class FeatureFile:
    path: Path
    rows: int = 0
    report: CleaningReport = field(default_factory=CleaningReport)

    def block_sizes(self, block_rows: int = BLOCK_ROWS) -> list[int]:
        return [min(block_rows, self.rows - s) for s in range(0, self.rows, block_rows)]

    def blocks(
        self, *, rng: np.random.Generator | None = None, block_rows: int = BLOCK_ROWS
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(features, targets) blocks, in a random block order when `rng` is given."""
        starts = np.arange(0, self.rows, block_rows)
        if rng is not None:
            rng.shuffle(starts)
        with self.path.open("rb") as f:
            for start in starts:
                n = min(block_rows, self.rows - int(start))
                f.seek(int(start) * _WIDTH * 4)
                block = np.fromfile(f, dtype=np.float32, count=n * _WIDTH).reshape(n, _WIDTH)
                if rng is not None:
                    block = block[rng.permutation(n)]
                yield block[:, :N_FEATURES], block[:, N_FEATURES]


def build_feature_file(
    store: DataStore,
    name: str,
    path: Path,
    *,
    chunk_size: int,
    rules: CleaningRules = DEFAULT_RULES,
    stats: RunningStats | None = None,
    seed: int = 0,
    progress: Progress = SILENT,
    task: str | None = None,
) -> FeatureFile:
    """Read `name` from `store` in chunks, clean, compute features, append to `path`."""
    out = FeatureFile(path)
    rng = np.random.default_rng(seed)
    task = task or f"reading {name}"
    info = store.describe(name)
    progress.start(task, total=info.rows if info and info.rows else None)
    with path.open("wb") as f:
        for x, y, report in iter_features(store, name, chunk_size=chunk_size, rules=rules):
            STOP.check()
            out.report.add(report)
            progress.advance(task, report.rows_in)
            if len(y) == 0:
                continue
            if stats is not None:
                stats.update(x, y)
            _append(f, x, y, rng)
            out.rows += len(y)
    progress.finish(task)
    _give_back_heap()
    return out


def iter_features(
    store: DataStore,
    name: str,
    *,
    chunk_size: int,
    rules: CleaningRules = DEFAULT_RULES,
    workers: int = WORKERS,
) -> Iterator[tuple[np.ndarray, np.ndarray, CleaningReport]]:
    """(features, float32 fares, cleaning report) of each chunk of `name`, in file order.

    What `build_feature_file` writes, and what the preprocessing benchmark times.
    """
    chunks = read_ahead(_signals_to_main(store.read_chunks(name, chunk_size, rules=rules)))
    yield from map_in_order(
        functools.partial(_prepare, rules=rules),
        chunks,
        workers=workers,
        name="taxifare-features",
        initializer=STOP.defer_signals_to_main,
    )


def _prepare(chunk: pd.DataFrame, rules: CleaningRules) -> tuple[np.ndarray, np.ndarray, CleaningReport]:
    """`clean_chunk` then `compute_features`, without making the cleaned frame: only the
    kept rows of the columns the features need are gathered."""
    keep, report = clean_rows(chunk, rules)
    rows = np.flatnonzero(keep)
    fares = chunk["fare_amount"].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    return compute_features(chunk, rows), fares.astype(np.float32), report


def _signals_to_main(chunks: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """`chunks`, produced on a thread that leaves Ctrl-C and SIGTERM to the main thread."""
    STOP.defer_signals_to_main()  # runs on the reading thread: the generator starts there
    yield from chunks


def _give_back_heap() -> None:
    """Hand the reading phase's freed heap back to the system before the epochs start.

    glibc keeps freed chunk buffers mapped: a 5M-row training peaked at 1,078 MiB
    against 800 MiB with malloc_trim, about what 1M rows needs (benchmarks: memory).
    Arrow's own pool (mimalloc) keeps the reader's buffers too: releasing it took the
    5M-row peak from 835-997 MiB to 812-839 MiB (786 MiB at 100k rows).
    """
    pa.default_memory_pool().release_unused()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): their allocators are left alone
        return None


def _append(f: IO[bytes], x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
    rows = np.empty((len(y), _WIDTH), dtype=np.float32)
    rows[:, :N_FEATURES] = x
    rows[:, N_FEATURES] = y
    rows[rng.permutation(len(y))].tofile(f)
