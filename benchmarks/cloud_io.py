"""Upload and chunked-read throughput of GcsStore and BigQueryStore, beside the bare google clients.

Both emulators run on 127.0.0.1 (fake-gcs-server, bqemulator), so the figures say
what our code costs over the clients' own, not what Google's network gives.
Each operation moves the same simulated CSV file (200k rides by default):

    upload  store: GcsStore.put / BigQueryStore.put (digest, precondition or staging + swap)
            bare:  blob.upload_from_filename / client.load_table_from_file into one table
    read    store: read_chunks(name, chunk_size) -> typed DataFrames
            bare:  blob.open("rb") + pandas.read_csv(chunksize=...) /
                   client.query(... ORDER BY pickup_datetime).result(page_size=...).to_dataframe_iterable()
            floor: that query's pages fetched and decoded, rows not converted (BigQuery only)

Run: python benchmarks/cloud_io.py [--rows 200000] [--chunk-size 50000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.integration.emulators when run as a script

import pandas as pd  # noqa: E402
from tests.integration.emulators import BQ_PROJECT, Emulator, start_bqemulator, start_fake_gcs  # noqa: E402

from taxifare_cli.core.cleaning import DEFAULT_RULES  # noqa: E402
from taxifare_cli.core.simulator import iter_simulated_dataset  # noqa: E402
from taxifare_cli.files.ride_csv import write_csv_atomic  # noqa: E402

NAME = "train_500k"  # the dataset name the rows are stored under (any valid name does)


@dataclass
class Measure:
    backend: str  # gcs / bigquery
    operation: str  # upload / read
    impl: str  # store / bare / ...
    rows: int
    bytes: int
    seconds: float  # median of the repeats
    best_s: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": round(self.rows_per_s), "mb_per_s": round(self.mb_per_s, 2)}


def timed(
    repeat: int, run: Callable[[], int], before: Callable[[], None] | None = None
) -> tuple[float, float, int]:
    """Median and best seconds of `repeat` runs of `run` (which returns the rows it saw)."""
    times, rows = [], 0
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        rows = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), rows


def bench_gcs(emulator: Emulator, csv: Path, rows: int, chunk_size: int, repeat: int) -> list[Measure]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    from taxifare_cli.adapters.storage.gcs import GcsStore

    client = storage.Client(
        project="bench", credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator.url}
    )
    bucket = client.create_bucket(f"bench-{uuid.uuid4().hex[:8]}")
    store = GcsStore(bucket.name, endpoint=emulator.url)
    size = csv.stat().st_size
    out: list[Measure] = []

    def clear() -> None:
        for blob in client.list_blobs(bucket.name):
            blob.delete()

    def store_put() -> int:
        info = store.put(NAME, csv, source="bench")
        return info.rows or 0

    def bare_put() -> int:
        bucket.blob(f"bare/{NAME}.csv").upload_from_filename(str(csv), content_type="text/csv")
        return rows

    med, best, n = timed(repeat, store_put, clear)
    out.append(Measure("gcs", "upload", "store (GcsStore.put)", n, size, med, best))
    med, best, n = timed(repeat, bare_put, clear)
    out.append(Measure("gcs", "upload", "bare (upload_from_filename)", n, size, med, best))
    med, best, n = timed(repeat, lambda: store.put(NAME, csv, source="bench").rows or 0)
    out.append(Measure("gcs", "upload again", "store (same bytes: skipped)", n, size, med, best))

    bucket.blob(f"bare/{NAME}.csv").upload_from_filename(str(csv), content_type="text/csv")

    def store_read() -> int:
        return sum(len(df) for df in store.read_chunks(NAME, chunk_size))

    def bare_read() -> int:
        with bucket.blob(f"bare/{NAME}.csv").open("rb") as f:
            return sum(
                len(df) for df in pd.read_csv(f, chunksize=chunk_size, parse_dates=["pickup_datetime"])
            )

    def bare_bytes() -> int:
        bucket.blob(f"bare/{NAME}.csv").download_as_bytes()
        return rows

    med, best, n = timed(repeat, store_read)
    out.append(Measure("gcs", "read", "store (read_chunks)", n, size, med, best))
    med, best, n = timed(repeat, bare_read)
    out.append(Measure("gcs", "read", "bare (blob.open + pandas.read_csv chunks)", n, size, med, best))
    med, best, n = timed(repeat, bare_bytes)
    out.append(Measure("gcs", "read", "bare (download_as_bytes, no parsing)", n, size, med, best))
    return out


def bench_bigquery(emulator: Emulator, csv: Path, rows: int, chunk_size: int, repeat: int) -> list[Measure]:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    from taxifare_cli.adapters.storage.bigquery import SCHEMA, BigQueryStore

    client = bigquery.Client(
        project=BQ_PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=emulator.url),
    )
    dataset = f"bench_{uuid.uuid4().hex[:8]}"
    client.create_dataset(f"{BQ_PROJECT}.{dataset}")
    store = BigQueryStore(BQ_PROJECT, dataset, endpoint=emulator.url)
    bare_table = f"{BQ_PROJECT}.{dataset}.bare"
    size = csv.stat().st_size
    out: list[Measure] = []

    def drop() -> None:
        for table in list(client.list_tables(f"{BQ_PROJECT}.{dataset}")):
            client.delete_table(table)

    def store_put() -> int:
        return store.put(NAME, csv, source="bench").rows or 0

    def bare_put() -> int:
        config = bigquery.LoadJobConfig(
            schema=SCHEMA,
            source_format=bigquery.SourceFormat.CSV,
            skip_leading_rows=1,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )
        with csv.open("rb") as f:
            client.load_table_from_file(f, bare_table, job_config=config).result()
        return int(client.get_table(bare_table).num_rows or 0)

    med, best, n = timed(repeat, store_put, drop)
    out.append(Measure("bigquery", "upload", "store (BigQueryStore.put: stage + swap)", n, size, med, best))
    med, best, n = timed(repeat, bare_put, drop)
    out.append(Measure("bigquery", "upload", "bare (load_table_from_file)", n, size, med, best))
    store_put()
    bare_put()
    med, best, n = timed(repeat, store_put)
    out.append(Measure("bigquery", "upload again", "store (same bytes: skipped)", n, size, med, best))

    def store_read(rules: Any = None) -> int:
        return sum(len(df) for df in store.read_chunks(NAME, chunk_size, rules=rules))

    def bare_read() -> int:
        job = client.query(f"SELECT * FROM `{bare_table}` ORDER BY pickup_datetime")
        frames = job.result(page_size=chunk_size).to_dataframe_iterable()
        return sum(len(df) for df in frames)

    def bare_rows() -> int:
        pages = client.list_rows(bare_table, page_size=chunk_size).to_dataframe_iterable()
        return sum(len(df) for df in pages)

    def bare_pages() -> int:
        job = client.query(f"SELECT * FROM `{bare_table}` ORDER BY pickup_datetime")
        return sum(page.num_items for page in job.result(page_size=chunk_size).pages)

    med, best, n = timed(repeat, bare_pages)
    out.append(Measure("bigquery", "read", "floor (query + pages, rows not converted)", n, size, med, best))
    med, best, n = timed(repeat, store_read)
    out.append(Measure("bigquery", "read", "store (read_chunks, no rules)", n, size, med, best))
    med, best, n = timed(repeat, lambda: store_read(DEFAULT_RULES))
    out.append(Measure("bigquery", "read", "store (read_chunks, rules in WHERE)", n, size, med, best))
    med, best, n = timed(repeat, bare_read)
    out.append(Measure("bigquery", "read", "bare (query ORDER BY + pages to_dataframe)", n, size, med, best))
    med, best, n = timed(repeat, bare_rows)
    out.append(Measure("bigquery", "read", "bare (list_rows pages, unordered)", n, size, med, best))
    return out


def render(measures: list[Measure]) -> str:
    lines = [
        f"{'backend':9} {'operation':13} {'implementation':46} {'rows':>8} {'s (median)':>10} "
        f"{'rows/s':>9} {'MB/s':>7}"
    ]
    for m in measures:
        lines.append(
            f"{m.backend:9} {m.operation:13} {m.impl:46} {m.rows:8d} {m.seconds:10.3f} "
            f"{m.rows_per_s:9.0f} {m.mb_per_s:7.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="simulated rides in the file")
    parser.add_argument("--chunk-size", type=int, default=50_000, help="rows per chunk when reading")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (the median is shown)")
    parser.add_argument("--only", choices=["gcs", "bigquery"], help="one backend only")
    parser.add_argument("--quick", action="store_true", help="20k rows, one run: a smoke test")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeat = 20_000, 1

    with tempfile.TemporaryDirectory(prefix="taxifare-bench-") as tmp:
        work = Path(tmp)
        csv = work / f"{NAME}.csv"
        write_csv_atomic(iter_simulated_dataset(NAME, chunk_size=50_000, rows=args.rows, seed=42), csv)
        print(
            f"{args.rows} rows, {csv.stat().st_size / 1e6:.1f} MB of CSV; chunks of {args.chunk_size}; "
            f"median of {args.repeat}",
            file=sys.stderr,
        )
        measures: list[Measure] = []
        if args.only in (None, "gcs"):
            gcs = start_fake_gcs(work / "gcs")
            try:
                measures += bench_gcs(gcs, csv, args.rows, args.chunk_size, args.repeat)
            finally:
                gcs.stop()
        if args.only in (None, "bigquery"):
            bq = start_bqemulator(work / "bq")
            try:
                measures += bench_bigquery(bq, csv, args.rows, args.chunk_size, args.repeat)
            finally:
                bq.stop()

    print(render(measures))
    result = {
        "benchmark": "cloud_io",
        "rows": args.rows,
        "chunk_size": args.chunk_size,
        "repeat": args.repeat,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "measures": [m.as_dict() for m in measures],
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
