"""Simulated ride files for the benchmarks, made with the product's own simulator and store.

Each data directory is a local store (the layout `taxifare data fetch` leaves, manifest
included), so the CLI can be pointed at it with TAXIFARE_DATA__LOCAL_PATH. Files are
kept in the work directory and made again only when missing or of another size.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.harness import Run


def _store(root: Path):  # type: ignore[no-untyped-def]
    from taxifare_cli.adapters.storage.local import LocalStore

    return LocalStore(root)


def _ensure(run: Run, root: Path, name: str, rows: int) -> Path:
    """`<root>/<name>.csv` holding `rows` simulated rows (an `all` draw, or a named size)."""
    from taxifare_cli.adapters.sources.synthetic import SyntheticSource

    store = _store(root)
    info = store.describe(name)
    if info is not None and info.rows == rows:
        return store.path(name)
    run.log(f"  simulating {name} ({rows:,} rows) in {root}")
    source = SyntheticSource(seed=run.sizes.seed, chunk_size=100_000, month_rows=100_000, all_rows=rows)
    staging = store.staging_path(name)
    try:
        source.fetch(name, staging)
        store.put(name, staging, source=f"synthetic (seed {run.sizes.seed})")
    finally:
        staging.unlink(missing_ok=True)
    return store.path(name)


def rows_store(run: Run, rows: int, val_rows: int) -> Path:
    """A store holding `train_all` of `rows` rows and `val_all` of `val_rows` rows."""
    root = run.work / "data" / f"all_{rows}_{val_rows}"
    _ensure(run, root, "train_all", rows)
    _ensure(run, root, "val_all", val_rows)
    return root


def sized_store(run: Run, part: str) -> Path:
    """A store holding `train_<part>` and `val_<part>` exactly as `taxifare data fetch --size` makes them."""
    from taxifare_cli.core.schema import SIZES

    rows = SIZES[part]
    assert rows is not None
    root = run.work / "data" / f"size_{part}"
    _ensure(run, root, f"train_{part}", rows)
    _ensure(run, root, f"val_{part}", rows)
    return root
