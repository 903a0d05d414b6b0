"""2. Preprocessing: raw CSV -> clean rows -> feature matrix, against the original and the floor."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import reference_floors, reference_original
from benchmarks.datasets import rows_store
from benchmarks.harness import Comparison, Record, Run, median, timed

MAX_VS_ORIGINAL = 0.1  # at least 10x faster
MAX_VS_FLOOR = 2.5


def product_pipeline(root: Path, chunk_size: int) -> int:
    """The product's path as training runs it: `feature_cache.iter_features` (a reading thread,
    two workers cleaning chunks and computing their features, results in file order)."""
    from taxifare_cli.adapters.storage.local import LocalStore
    from taxifare_cli.services.feature_cache import iter_features

    rows = 0
    for x, _, _ in iter_features(LocalStore(root), "train_all", chunk_size=chunk_size):
        rows += len(x)
    return rows


def stage_times(root: Path, chunk_size: int) -> dict[str, float]:
    """One serial pass (no threads), timing read / clean / features apart (for diagnosis)."""
    from taxifare_cli.adapters.storage.local import LocalStore
    from taxifare_cli.core.cleaning import clean_chunk
    from taxifare_cli.core.features import compute_features

    spent = {"read_s": 0.0, "clean_s": 0.0, "features_s": 0.0}
    t0 = time.perf_counter()
    for chunk in LocalStore(root).read_chunks("train_all", chunk_size):
        t1 = time.perf_counter()
        clean, _ = clean_chunk(chunk)
        t2 = time.perf_counter()
        compute_features(clean)
        clean["fare_amount"].to_numpy(dtype="float32")
        t3 = time.perf_counter()
        spent["read_s"] += t1 - t0
        spent["clean_s"] += t2 - t1
        spent["features_s"] += t3 - t2
        t0 = time.perf_counter()
    return spent


def _interleaved(
    ours: Callable[[], int], floor: Callable[[], int], repeats: int
) -> tuple[list[float], list[float], int]:
    """Samples of both, taken alternately after one warm-up each: (ours, floor, ours' result)."""
    ours(), floor()
    mine: list[float] = []
    base: list[float] = []
    rows = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        rows = ours()
        t1 = time.perf_counter()
        floor()
        t2 = time.perf_counter()
        mine.append(t1 - t0)
        base.append(t2 - t1)
    return mine, base, rows


def measure(run: Run) -> Record:
    s = run.sizes
    root = rows_store(run, s.preprocess_rows, s.memory_val_rows)
    path = root / "train_all.csv"
    n_jobs = -1 if s.reference_parallel else None

    run.log("  product: feature_cache.iter_features (read -> clean_chunk -> compute_features)")
    run.log("  floor: pyarrow.csv.read_csv (interleaved with the product: the machine's load hits both)")
    ours, floor, rows = _interleaved(
        lambda: product_pipeline(root, s.chunk_size),
        lambda: reference_floors.bare_pyarrow_read(path),
        s.preprocess_repeats,
    )
    stages = stage_times(root, s.chunk_size)
    run.log(f"  original: pandas chunks + ColumnTransformer(n_jobs={n_jobs}) + per-row geohash")
    # Start the original's process pool before timing it: the reference gets its best case.
    first = next(reference_original.read_chunks(path, 2_000))
    reference_original.preprocess_features(
        reference_original.clean_data(first).drop(columns=["fare_amount"]), n_jobs
    )
    ref, (ref_rows, ref_width) = timed(
        lambda: reference_original.preprocess_file(path, s.chunk_size, n_jobs), s.reference_repeats
    )

    value, ref_v, floor_v = median(ours), median(ref), median(floor)
    from taxifare_cli.core.features import N_FEATURES

    return Record(
        name="preprocessing",
        title=f"Preprocessing {s.preprocess_rows:,} raw rows to features",
        value=value,
        unit="s",
        comparisons=[
            Comparison(
                reference="original: pandas apply + ColumnTransformer + per-row geohash",
                reference_value=ref_v,
                ratio=value / ref_v,
                target=f"ratio ≤ {MAX_VS_ORIGINAL:g} (≥ {1 / MAX_VS_ORIGINAL:g}× faster)",
                met=value / ref_v <= MAX_VS_ORIGINAL,
            ),
            Comparison(
                reference="floor: bare pyarrow.csv.read_csv",
                reference_value=floor_v,
                ratio=value / floor_v,
                target=f"ratio ≤ {MAX_VS_FLOOR:g}",
                met=value / floor_v <= MAX_VS_FLOOR,
            ),
        ],
        command=run.command("preprocessing"),
        measured=(
            f"in-process: feature_cache.iter_features(LocalStore, 'train_all', chunk_size={s.chunk_size:,}) "
            f"(read -> clean_chunk -> compute_features, threaded) over {s.preprocess_rows:,} rows; "
            f"medians of {s.preprocess_repeats}, interleaved with the floor (original: {s.reference_repeats})"
        ),
        details={
            "rows_in": s.preprocess_rows,
            "rows_kept": rows,
            "features": N_FEATURES,
            "reference_rows_kept": ref_rows,
            "reference_features": ref_width,
            "samples_s": ours,
            "reference_samples_s": ref,
            "floor_samples_s": floor,
            "speedup_vs_original": ref_v / value,
            "product_stages_s": stages,
            "chunk_size": s.chunk_size,
        },
    )
