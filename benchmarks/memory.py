"""3. Memory: peak RSS of `taxifare model train --epochs 1` as the training data grows.

The same runs give the growth plot's seconds: preparing the data (read, clean, features)
and the one epoch, as the CLI reports them (`metrics.prepare_s`, `metrics.fit_s`).
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

from benchmarks.datasets import rows_store
from benchmarks.harness import (
    Comparison,
    ProcessRun,
    Record,
    Run,
    clean_env,
    mib,
    run_process,
    shell_line,
    taxifare_exe,
)

MAX_RATIO = 1.1  # the peak at 5M rows within 10 % of the peak at 100k (report.plot_growth draws it)


def train_argv() -> list[str]:
    return [taxifare_exe(), "--json", "model", "train", "--size", "all", "--epochs", "1"]


def train_env(run: Run, rows: int) -> dict[str, str]:
    return {
        "TAXIFARE_DATA__LOCAL_PATH": str(rows_store(run, rows, run.sizes.memory_val_rows)),
        "TAXIFARE_REGISTRY__LOCAL_PATH": str(run.work / "registry"),
        "TAXIFARE_DATA__CHUNK_SIZE": str(run.sizes.chunk_size),
    }


def measure(run: Run) -> Record:
    s = run.sizes
    for rows in s.memory_rows:
        rows_store(run, rows, s.memory_val_rows)  # make the data first: not part of what is measured
    shutil.rmtree(run.work / "registry", ignore_errors=True)

    def train(rows: int) -> ProcessRun:
        run.log(f"  taxifare model train --epochs 1 on {rows:,} rows")
        done = run_process(train_argv(), env=clean_env(**train_env(run, rows)), cwd=run.work).check()
        run.log(f"    {rows:,} rows: peak {mib(done.peak_rss_bytes):,.0f} MiB, {done.wall_s:.1f} s")
        return done

    if run.quick:
        # Peak RSS is per process, so the quick run may train side by side (wall times then overlap).
        with ThreadPoolExecutor(max_workers=len(s.memory_rows)) as pool:
            runs = dict(zip(s.memory_rows, pool.map(train, s.memory_rows), strict=True))
    else:
        runs = {rows: train(rows) for rows in s.memory_rows}
    small, large = min(s.memory_rows), max(s.memory_rows)
    value, ref = mib(runs[large].peak_rss_bytes), mib(runs[small].peak_rss_bytes)
    ratio = value / ref
    points = [
        {
            "rows": rows,
            "peak_rss_mib": mib(r.peak_rss_bytes),
            "polled_peak_mib": mib(r.polled_peak_bytes),
            "wall_s": r.wall_s,
            "train_rows_used": r.json()["metrics"]["train_rows"],
            # What the CLI reports of its own time: the feature files (train and val), the epoch.
            "prepare_s": r.json()["metrics"].get("prepare_s"),
            "epoch_s": r.json()["metrics"].get("fit_s"),
        }
        for rows, r in runs.items()
    ]
    shown_env = {k: v for k, v in train_env(run, large).items() if k == "TAXIFARE_DATA__CHUNK_SIZE"}
    return Record(
        name="memory",
        title=f"Peak RSS of model train, {large:,} rows",
        value=value,
        unit="MiB",
        comparisons=[
            Comparison(
                reference=f"the same at {small:,} rows",
                reference_value=ref,
                ratio=ratio,
                target=f"ratio ≤ {MAX_RATIO:g}",
                met=ratio <= MAX_RATIO,
            )
        ],
        command=run.command("memory"),
        measured=(
            f"{shell_line(train_argv(), shown_env)} with train_all of "
            + ", ".join(f"{r:,}" for r in s.memory_rows)
            + f" rows (val_all {s.memory_val_rows:,}); peak = kernel ru_maxrss"
        ),
        details={"points": points, "chunk_size": s.chunk_size, "val_rows": s.memory_val_rows},
    )
