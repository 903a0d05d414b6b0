"""BigQueryStore: one table per raw ride file, `<project>.<dataset>.<name>`.

Tables have an explicit schema (the original project's: TIMESTAMP pickup time,
INTEGER passengers, FLOAT the rest, STRING key). A put loads the CSV into a
staging table, then replaces the target in one statement (CREATE OR REPLACE
TABLE ... AS SELECT), so a failed or interrupted load leaves the previous table
whole. The table's description records the rows, checksum and origin of the
file it holds, and a fingerprint of its rows: a second put of the same file is a no-op.

A table's checksum is true of its rows: the file's sha256 while the rows'
fingerprint (see `_fingerprint`) is the one recorded at load, else the
fingerprint itself, so a table changed by hand never claims a file's checksum.
Describing a table reads it once (a full scan, billed as a query).

Reads run one query with the cleaning rules in its WHERE, ordered by pickup
time, and page through the result `chunk_size` rows at a time over the REST
API, so memory stays flat however large the table.
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from taxifare_cli.adapters.storage.gcp_calls import GoogleCloudStore, emulator_endpoint, scan_csv
from taxifare_cli.core.schema import RAW_COLUMNS, parse_dataset_name
from taxifare_cli.errors import ConfigError, DataError, NotFoundError, ServiceError, TaxifareError
from taxifare_cli.ports import DatasetInfo

if TYPE_CHECKING:
    from taxifare_cli.core.cleaning import CleaningRules
    from taxifare_cli.settings import Settings

_TYPES: dict[str, str] = {
    "key": "STRING",
    "fare_amount": "FLOAT",
    "pickup_datetime": "TIMESTAMP",
    "pickup_longitude": "FLOAT",
    "pickup_latitude": "FLOAT",
    "dropoff_longitude": "FLOAT",
    "dropoff_latitude": "FLOAT",
    "passenger_count": "INTEGER",
}
SCHEMA: list[bigquery.SchemaField] = [bigquery.SchemaField(c, _TYPES[c]) for c in RAW_COLUMNS]
_ID = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
# "taxifare rows=N checksum=sha256:... source=<percent-encoded>": plain characters only,
# so it can sit in a SQL string literal without escaping.
_DESCRIPTION = re.compile(r"^taxifare rows=(\d+) checksum=(\S+)(?: rows_fp=(\S+))? source=(\S*)$")
_STAGING_PREFIX = "_staging_"


class BigQueryStore(GoogleCloudStore):
    """Tables `<project>.<dataset>.{train,val}_{size|month}`, one per raw file."""

    kind = "bigquery"
    service = "BigQuery"
    google_endpoint = "https://bigquery.googleapis.com"
    forbidden_hint = (
        "grant the account roles/bigquery.dataEditor on the dataset and roles/bigquery.jobUser on the project"
    )

    def __init__(
        self,
        project: str,
        dataset: str,
        *,
        endpoint: str | None = None,
        key_file: Path | None = None,
        location: str | None = None,
        timeout_s: float = 120.0,
        retries: int = 5,
    ) -> None:
        if not _ID.match(dataset):
            raise ConfigError(
                f"{dataset!r} is not a valid BigQuery dataset name",
                hint="use letters, digits and underscores; fix storage.bq_dataset (env BQ_DATASET)",
            )
        super().__init__(endpoint=endpoint, key_file=key_file, timeout_s=timeout_s, retries=retries)
        self.project = project
        self.dataset = dataset
        self.location = location
        self._client: bigquery.Client | None = None
        self._dataset_checked = False

    @classmethod
    def from_settings(cls, settings: Settings) -> BigQueryStore:
        if not settings.gcp.project:
            raise ConfigError(
                "no Google Cloud project configured for BigQuery",
                hint="set gcp.project in taxifare.toml, or GCP_PROJECT / TAXIFARE_GCP__PROJECT",
            )
        s = settings.storage
        return cls(
            settings.gcp.project,
            s.bq_dataset,
            endpoint=emulator_endpoint(s.bq_endpoint, "BIGQUERY_EMULATOR_HOST"),
            key_file=settings.gcp.credentials,
            timeout_s=s.timeout_s,
            retries=s.retries,
        )

    # --- naming ---------------------------------------------------------------------
    def table_id(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{parse_dataset_name(name)}"

    # --- the port -------------------------------------------------------------------
    def describe(self, name: str) -> DatasetInfo | None:
        table = self._get_table(name)
        return None if table is None else _info(table, self._fingerprint(self.table_id(name)))

    def list(self) -> list[DatasetInfo]:
        self._check_dataset()
        infos = []
        with self._errors(f"listing {self.project}.{self.dataset}"):
            for item in self.client.list_tables(f"{self.project}.{self.dataset}", **self._call()):
                try:
                    name = str(parse_dataset_name(item.table_id))
                except ValueError:
                    continue  # not one of ours (staging tables start with "_")
                table = self._get_table(name)  # listing does not give row counts
                if table is not None:
                    infos.append(_info(table, self._fingerprint(self.table_id(name))))
        return sorted(infos, key=lambda i: i.name)

    def read_chunks(
        self, name: str, chunk_size: int, *, rules: CleaningRules | None = None
    ) -> Iterator[pd.DataFrame]:
        """Rows in pickup order, filtered by `rules` in SQL, `chunk_size` at a time."""
        table_id = self.table_id(name)
        if self._get_table(name) is None:
            part = str(parse_dataset_name(name)).split("_", 1)[1]
            raise NotFoundError(
                f"table {table_id} does not exist",
                hint=f"load it first: taxifare data upload --to bigquery --size/--month {part}",
            )
        where, params = _where(rules)
        columns = ", ".join(RAW_COLUMNS)
        # The key breaks ties so that the order, and so the chunks, are the same every time.
        sql = f"SELECT {columns} FROM `{table_id}`{where} ORDER BY pickup_datetime, key"
        config = bigquery.QueryJobConfig(query_parameters=params)

        def chunks() -> Iterator[pd.DataFrame]:
            with self._errors(f"reading {table_id}", not_found=self._gone(table_id)):
                job = self.client.query(sql, job_config=config, **self._call())
                # Page by page over REST (the Storage Read API is Google's only), one page a chunk.
                rows = job.result(page_size=chunk_size, **self._call())
                if [(f.name, f.field_type) for f in rows.schema] == [(c, _TYPES[c]) for c in RAW_COLUMNS]:
                    for page in rows.pages:
                        if page.raw_page.get("rows"):
                            yield _page_frame(page.raw_page["rows"])
                    return
                # A table of ours with other types (made by hand?): the client's slower conversion.
                for frame in cast("Iterator[pd.DataFrame]", rows.to_dataframe_iterable()):
                    if len(frame):
                        yield _typed(frame)

        return chunks()

    def dropped_at_source(self, name: str, rules: CleaningRules) -> dict[str, int]:
        """Rows `read_chunks(name, ..., rules=rules)` leaves out, by cleaning reason.

        The reasons and their order are core.cleaning's (a row counts under the
        first rule it breaks), so a caller can add these to its CleaningReport
        and nothing is dropped without a count. One aggregate query.
        """
        table_id = self.table_id(name)
        _, params = _where(rules)
        present = " AND ".join(f"{c} IS NOT NULL" for c in RAW_COLUMNS if c != "key")
        sql = f"""
            SELECT reason, COUNT(*) AS n FROM (
              SELECT CASE
                WHEN NOT ({present}) THEN 'missing or unparseable value'
                WHEN NOT (fare_amount > @fare_min AND fare_amount < @fare_max) THEN 'fare out of range'
                WHEN NOT (passenger_count BETWEEN @pax_min AND @pax_max) THEN 'passenger count out of range'
                WHEN NOT (pickup_latitude BETWEEN @lat_min AND @lat_max
                          AND dropoff_latitude BETWEEN @lat_min AND @lat_max
                          AND pickup_longitude BETWEEN @lon_min AND @lon_max
                          AND dropoff_longitude BETWEEN @lon_min AND @lon_max) THEN 'outside New York'
              END AS reason
              FROM `{table_id}`
            ) WHERE reason IS NOT NULL GROUP BY reason
        """
        config = bigquery.QueryJobConfig(query_parameters=params)
        with self._errors(f"counting the rows {table_id} filters out", not_found=self._gone(table_id)):
            job = self.client.query(sql, job_config=config, **self._call())
            return {row["reason"]: int(row["n"]) for row in job.result(**self._call())}

    def put(self, name: str, csv_path: Path, *, source: str) -> DatasetInfo:
        """Load `csv_path` into a staging table, then swap it in; a no-op if already held."""
        table_id = self.table_id(name)
        facts = scan_csv(csv_path)
        current = self._get_table(name)
        if current is not None and _recorded(current)[:2] == (facts.rows, facts.sha256):
            now = self._fingerprint(table_id)
            if now == _recorded(current)[2]:  # rows not changed since (DML keeps the description)
                return _info(current, now)
        header = _csv_header(csv_path)
        missing = [c for c in RAW_COLUMNS if c not in header]
        if missing:
            raise DataError(
                f"{csv_path.name} lacks column(s) {', '.join(missing)}",
                hint=f"raw ride files have the columns {','.join(RAW_COLUMNS)}",
            )
        suffix = f"{parse_dataset_name(name)}_{uuid.uuid4().hex[:12]}"
        staging = f"{self.project}.{self.dataset}.{_STAGING_PREFIX}{suffix}"
        try:
            self._load(csv_path, staging, header)
            fingerprint = self._fingerprint(staging)  # the target's, once swapped: same rows, same types
            description = (
                f"taxifare rows={facts.rows} checksum={facts.sha256} rows_fp={fingerprint} "
                f"source={urllib.parse.quote(source, safe='')}"
            )
            columns = ", ".join(RAW_COLUMNS)  # by name: the file's column order may differ
            swap = (
                f"CREATE OR REPLACE TABLE `{table_id}` OPTIONS(description='{description}') "
                f"AS SELECT {columns} FROM `{staging}`"
            )
            with self._errors(f"replacing {table_id}"):
                self.client.query(swap, **self._call()).result(**self._call())
        finally:
            self._drop(staging)
        info = self.describe(name)
        if info is None:
            raise ServiceError(
                f"{table_id} is missing right after it was written", hint="run the command again"
            )
        return info

    def delete(self, name: str) -> bool:
        table_id = self.table_id(name)
        self._check_dataset()
        with self._errors(f"deleting {table_id}"):
            try:
                self.client.delete_table(table_id, **self._call())
            except gexc.NotFound:
                return False
        return True

    # --- plumbing -------------------------------------------------------------------
    @property
    def client(self) -> bigquery.Client:
        """Made on first use, so that building the store never calls anyone."""
        if self._client is None:
            with self._errors("connecting"):
                self._client = bigquery.Client(
                    project=self.project,
                    credentials=self._credentials(),
                    client_options=self._client_options(),
                    location=self.location,
                )
        return self._client

    def _missing_container(self, _: gexc.NotFound) -> TaxifareError:
        return ServiceError(
            f"BigQuery dataset {self.project}.{self.dataset} does not exist",
            hint=f"create it (bq mk --dataset {self.project}:{self.dataset}) "
            "or set storage.bq_dataset / BQ_DATASET and gcp.project to an existing one",
        )

    def _gone(self, table_id: str) -> Any:
        def error(_: gexc.NotFound) -> TaxifareError:
            return ServiceError(f"table {table_id} was deleted while it was being read", hint="run again")

        return error

    def _check_dataset(self) -> None:
        """Once per store: a missing dataset is one clear error, not tables that are 'not there'."""
        if self._dataset_checked:
            return
        with self._errors(f"opening dataset {self.project}.{self.dataset}"):
            self.client.get_dataset(f"{self.project}.{self.dataset}", **self._call())
        self._dataset_checked = True

    def _get_table(self, name: str) -> bigquery.Table | None:
        self._check_dataset()
        table_id = self.table_id(name)
        with self._errors(f"looking up {table_id}"):
            try:
                table: bigquery.Table = self.client.get_table(table_id, **self._call())
            except gexc.NotFound:
                return None
        return table

    def _fingerprint(self, table_id: str) -> str:
        """`bqrows:<rows>:<hex>`: the row count and the XOR of each row's FARM_FINGERPRINT (of its
        columns' JSON in RAW_COLUMNS order): the same however BigQuery orders or lays out the rows."""
        row_sql = f"TO_JSON_STRING(STRUCT({', '.join(RAW_COLUMNS)}))"
        sql = f"SELECT COUNT(*) AS n, BIT_XOR(FARM_FINGERPRINT({row_sql})) AS x FROM `{table_id}`"
        with self._errors(f"reading the rows of {table_id}", not_found=self._gone(table_id)):
            job = self.client.query(sql, **self._call())
            row = next(iter(job.result(**self._call())))
        return f"bqrows:{int(row['n'])}:{int(row['x'] or 0) & 0xFFFFFFFFFFFFFFFF:016x}"

    def _load(self, csv_path: Path, staging: str, header: Sequence[str]) -> None:
        # Columns are matched by position in a CSV load: describe the file as it is.
        schema = [bigquery.SchemaField(c, _TYPES.get(c, "STRING")) for c in header]
        table = bigquery.Table(staging, schema=schema)
        table.expires = datetime.now(timezone.utc) + timedelta(days=1)  # a leftover vanishes by itself
        config = bigquery.LoadJobConfig(
            schema=schema,
            source_format=bigquery.SourceFormat.CSV,
            skip_leading_rows=1,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )
        with self._errors(f"loading {csv_path.name} into {staging}"):
            self.client.create_table(table, **self._call())
            with csv_path.open("rb") as f:
                # No size=: a resumable upload (the emulator refuses small multipart ones).
                job = self.client.load_table_from_file(
                    f, staging, job_config=config, num_retries=self.retries, timeout=self.timeout_s
                )
            try:
                job.result(**self._call())
            except gexc.BadRequest as e:
                first = (job.errors or [{}])[0].get("message") or e.message
                raise DataError(
                    f"BigQuery rejected {csv_path.name}: {' '.join(str(first).split())[:200]}",
                    hint="check the file with `taxifare data ls` / re-fetch it; the table was left as it was",
                ) from e

    def _drop(self, staging: str) -> None:
        with contextlib.suppress(Exception):  # best effort: a leftover expires by itself
            self.client.delete_table(staging, not_found_ok=True, **self._call())


def _csv_header(path: Path) -> list[str]:
    with path.open("rb") as f:
        line = f.readline(1 << 16)
    if not line.strip():
        raise DataError(f"{path.name} is empty: expected a CSV header with {', '.join(RAW_COLUMNS)}")
    return [c.strip().strip('"') for c in line.decode("utf-8", "replace").strip().split(",")]


def _recorded(table: bigquery.Table) -> tuple[int | None, str | None, str | None]:
    """(rows, file checksum, rows fingerprint) the description records; Nones if it records none."""
    m = _DESCRIPTION.match(table.description or "")
    return (int(m.group(1)), m.group(2), m.group(3)) if m else (None, None, None)


def _info(table: bigquery.Table, fingerprint: str) -> DatasetInfo:
    """The table as a DatasetInfo whose checksum is true of the rows it holds now (see the module)."""
    m = _DESCRIPTION.match(table.description or "")
    _, file_checksum, recorded_fp = _recorded(table)
    return DatasetInfo(
        name=table.table_id,
        rows=table.num_rows,
        bytes=table.num_bytes or None,  # the emulator reports 0
        updated=table.modified,
        location=f"{table.project}.{table.dataset_id}.{table.table_id}",
        checksum=file_checksum if recorded_fp == fingerprint else fingerprint,
        source=urllib.parse.unquote(m.group(4)) if m else None,
    )


def _where(rules: CleaningRules | None) -> tuple[str, list[bigquery.ScalarQueryParameter]]:
    """The SQL form of core.cleaning.clean_chunk, minus the within-chunk duplicate check."""
    if rules is None:
        return "", []
    p = bigquery.ScalarQueryParameter
    params = [
        p("fare_min", "FLOAT64", rules.fare_min),
        p("fare_max", "FLOAT64", rules.fare_max),
        p("pax_min", "INT64", rules.passengers_min),
        p("pax_max", "INT64", rules.passengers_max),
        p("lat_min", "FLOAT64", rules.lat_min),
        p("lat_max", "FLOAT64", rules.lat_max),
        p("lon_min", "FLOAT64", rules.lon_min),
        p("lon_max", "FLOAT64", rules.lon_max),
    ]
    conditions = [f"{c} IS NOT NULL" for c in RAW_COLUMNS if c != "key"]
    conditions += [
        "fare_amount > @fare_min",
        "fare_amount < @fare_max",
        "passenger_count BETWEEN @pax_min AND @pax_max",
        "pickup_latitude BETWEEN @lat_min AND @lat_max",
        "dropoff_latitude BETWEEN @lat_min AND @lat_max",
        "pickup_longitude BETWEEN @lon_min AND @lon_max",
        "dropoff_longitude BETWEEN @lon_min AND @lon_max",
    ]
    return " WHERE " + " AND ".join(conditions), params


def _page_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One page of REST rows (`{"f": [{"v": "..."}]}`, in RAW_COLUMNS order), typed as ride_csv types them.

    The client's own conversion goes value by value through Python objects;
    this builds each column in one pass, several times faster.
    """
    n = len(rows)
    cells = [row["f"] for row in rows]
    columns: dict[str, Any] = {}
    for i, name in enumerate(RAW_COLUMNS):
        values = [cell[i]["v"] for cell in cells]
        if name == "key":
            columns[name] = pa.array(values, type=pa.string())
        elif name == "pickup_datetime":
            micros = np.fromiter((_micros(v) for v in values), dtype=np.int64, count=n)
            columns[name] = pa.array(micros, type=pa.timestamp("us", tz="UTC"), mask=micros == _NULL_MICROS)
        else:  # FLOAT and INTEGER alike: float64, as the CSV reader gives them
            columns[name] = np.fromiter((_float(v) for v in values), dtype=np.float64, count=n)
    frame = pa.table(columns).to_pandas()
    frame.attrs["malformed_rows"] = 0
    return frame


_NULL_MICROS = np.iinfo(np.int64).min


def _micros(value: str | None) -> int:
    """A REST TIMESTAMP: int64 microseconds (what the client asks for), or float seconds."""
    if value is None:
        return int(_NULL_MICROS)
    try:
        return int(value)
    except ValueError:
        return round(float(value) * 1_000_000)


def _float(value: str | None) -> float:
    return float("nan") if value is None else float(value)  # float() reads "NaN", "Infinity" too


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Types as ride_csv gives them: UTC timestamps, float64 numbers, str keys."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for c in RAW_COLUMNS:
        col = frame[c]
        if c == "key":
            out[c] = col.astype("str")
        elif c == "pickup_datetime":
            out[c] = pd.to_datetime(col, utc=True)
        else:
            out[c] = pd.to_numeric(col).astype("float64")
    out.attrs["malformed_rows"] = 0
    return out
