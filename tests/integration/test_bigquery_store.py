"""BigQueryStore against bqemulator: schema, pushdown, paging, idempotence, interruptions, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("google.cloud.bigquery", reason="the gcp extra is not installed")

from tests.integration.conftest import CuttingProxy
from tests.integration.emulators import BQ_PROJECT, Emulator, free_port

from taxifare_cli.adapters.storage.bigquery import BigQueryStore
from taxifare_cli.bootstrap import build_store
from taxifare_cli.core.cleaning import DEFAULT_RULES, CleaningRules, clean_chunk
from taxifare_cli.core.schema import RAW_COLUMNS
from taxifare_cli.errors import ConfigError, DataError, NotFoundError, ServiceError
from taxifare_cli.files.ride_csv import file_opener, iter_csv_chunks, sha256_file
from taxifare_cli.settings import load_settings

pytestmark = pytest.mark.slow

MakeStore = Callable[..., BigQueryStore]
RidesCsv = Callable[..., Path]


TYPES = {
    "key": "STRING",
    "fare_amount": "FLOAT",
    "pickup_datetime": "TIMESTAMP",
    "pickup_longitude": "FLOAT",
    "pickup_latitude": "FLOAT",
    "dropoff_longitude": "FLOAT",
    "dropoff_latitude": "FLOAT",
    "passenger_count": "INTEGER",
}


def local_rows(path: Path) -> pd.DataFrame:
    return pd.concat(list(iter_csv_chunks(file_opener(path), 100_000, name=path.stem)), ignore_index=True)


def in_pickup_order(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["pickup_datetime", "key"], kind="stable").reset_index(drop=True)


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    """Same rows whatever the timestamp unit (the CSV reader: s or ns; BigQuery: us)."""
    out = df.reset_index(drop=True).copy()
    out["pickup_datetime"] = out["pickup_datetime"].dt.as_unit("ns")
    return out


def count_rows(client: Any, table_id: str) -> int:
    return int(next(iter(client.query(f"SELECT COUNT(*) AS n FROM `{table_id}`").result())).n)


def table_names(client: Any, dataset: str) -> list[str]:
    return sorted(t.table_id for t in client.list_tables(f"{BQ_PROJECT}.{dataset}"))


def test_put_then_read_back_the_same_rows_in_pickup_order(
    make_bq_store: MakeStore, rides_csv: RidesCsv, bq_client: Any, dataset: str
) -> None:
    csv = rides_csv("train_10k", 2_500)
    store = make_bq_store()

    info = store.put("train_10k", csv, source="https://example.test/train_10k.csv?x=1 2")

    assert (info.name, info.rows, info.checksum) == ("train_10k", 2_500, sha256_file(csv))
    assert info.source == "https://example.test/train_10k.csv?x=1 2"
    assert info.location == f"{BQ_PROJECT}.{dataset}.train_10k"
    schema = {f.name: f.field_type for f in bq_client.get_table(info.location).schema}
    assert schema == TYPES
    chunks = list(store.read_chunks("train_10k", 1_000))
    assert [len(c) for c in chunks] == [1_000, 1_000, 500]
    got = pd.concat(chunks, ignore_index=True)
    # Typed as the CSV reader types them.
    assert list(got.columns) == list(RAW_COLUMNS)
    assert str(got["pickup_datetime"].dt.tz) == "UTC"
    assert all(got[c].dtype == np.float64 for c in RAW_COLUMNS if c not in ("key", "pickup_datetime"))
    assert pd.api.types.is_string_dtype(got["key"])
    assert all(c.attrs.get("malformed_rows") == 0 for c in chunks)
    assert got["pickup_datetime"].is_monotonic_increasing
    pd.testing.assert_frame_equal(comparable(got), comparable(in_pickup_order(local_rows(csv))))


def test_a_table_made_with_other_types_still_reads_typed(
    make_bq_store: MakeStore, rides_csv: RidesCsv, bq_client: Any, dataset: str
) -> None:
    from google.cloud import bigquery

    csv = rides_csv("train_1k", 500)
    loose = [bigquery.SchemaField(c, "FLOAT" if c == "passenger_count" else t) for c, t in TYPES.items()]
    config = bigquery.LoadJobConfig(schema=loose, source_format="CSV", skip_leading_rows=1)
    with csv.open("rb") as f:
        bq_client.load_table_from_file(f, f"{BQ_PROJECT}.{dataset}.train_1k", job_config=config).result()

    got = pd.concat(make_bq_store().read_chunks("train_1k", 200), ignore_index=True)

    assert got["passenger_count"].dtype == np.float64
    pd.testing.assert_frame_equal(comparable(got), comparable(in_pickup_order(local_rows(csv))))


def test_cleaning_rules_are_applied_in_sql(make_bq_store: MakeStore, rides_csv: RidesCsv) -> None:
    csv = rides_csv("train_10k", 4_000)  # the simulator's dirty rows: nulls, zeros, far away, odd fares
    store = make_bq_store()
    store.put("train_10k", csv, source="local")
    expected, report = clean_chunk(local_rows(csv), DEFAULT_RULES, dedupe=False)
    assert report.rows_dropped > 0  # the data does have rows to drop

    got = pd.concat(store.read_chunks("train_10k", 1_500, rules=DEFAULT_RULES), ignore_index=True)

    pd.testing.assert_frame_equal(comparable(got), comparable(in_pickup_order(expected)))
    # What SQL left out is counted by reason, as clean_chunk counts it.
    assert store.dropped_at_source("train_10k", DEFAULT_RULES) == dict(report.dropped)
    narrow = CleaningRules(fare_min=10.0, fare_max=20.0, passengers_min=2, passengers_max=3)
    got = pd.concat(store.read_chunks("train_10k", 10_000, rules=narrow), ignore_index=True)
    assert len(got) == len(clean_chunk(local_rows(csv), narrow, dedupe=False)[0]) > 0
    assert got["fare_amount"].between(10.0, 20.0, inclusive="neither").all()


def test_put_twice_keeps_one_set_of_rows(
    make_bq_store: MakeStore, rides_csv: RidesCsv, bq_client: Any, dataset: str
) -> None:
    csv = rides_csv("train_1k", 1_000)
    store = make_bq_store()
    first = store.put("train_1k", csv, source="local")

    again = store.put("train_1k", csv, source="local")

    assert again == first  # same modification time: not reloaded
    assert count_rows(bq_client, first.location) == 1_000
    assert table_names(bq_client, dataset) == ["train_1k"]  # no staging table left behind
    assert [i.name for i in store.list()] == ["train_1k"]


def test_a_table_changed_behind_our_back_is_reloaded(
    make_bq_store: MakeStore, rides_csv: RidesCsv, bq_client: Any
) -> None:
    csv = rides_csv("val_1k", 300)
    store = make_bq_store()
    info = store.put("val_1k", csv, source="local")
    bq_client.query(f"DELETE FROM `{info.location}` WHERE passenger_count = 1").result()
    assert count_rows(bq_client, info.location) < 300

    again = store.put("val_1k", csv, source="local")

    assert again.rows == count_rows(bq_client, info.location) == 300


def test_list_and_delete(make_bq_store: MakeStore, rides_csv: RidesCsv, bq_client: Any, dataset: str) -> None:
    store = make_bq_store()
    store.put("val_feb", rides_csv("val_feb", 100), source="local")
    store.put("train_1k", rides_csv("train_1k", 100), source="local")
    bq_client.query(f"CREATE TABLE `{BQ_PROJECT}.{dataset}.notes` AS SELECT 1 AS x").result()

    assert [(i.name, i.rows) for i in store.list()] == [("train_1k", 100), ("val_feb", 100)]
    assert store.delete("val_feb") is True
    assert store.delete("val_feb") is False
    assert store.describe("val_feb") is None
    assert table_names(bq_client, dataset) == ["notes", "train_1k"]


def test_an_interrupted_load_keeps_the_previous_table_and_a_second_run_completes(
    make_bq_store: MakeStore,
    rides_csv: RidesCsv,
    bq_emulator: Emulator,
    proxy_to: Callable[..., CuttingProxy],
    bq_client: Any,
) -> None:
    old_csv = rides_csv("train_100k", 500, seed=1)
    new_csv = rides_csv("train_100k", 20_000, seed=2)  # about 2 MB
    old = make_bq_store().put("train_100k", old_csv, source="old")
    proxy = proxy_to(bq_emulator)
    store = make_bq_store(endpoint=proxy.url, timeout_s=5.0)
    proxy.cut_after(new_csv.stat().st_size // 2)  # mid-file

    with pytest.raises(ServiceError, match="cannot reach BigQuery"):
        store.put("train_100k", new_csv, source="new")

    assert proxy.is_cut
    assert make_bq_store().describe("train_100k") == old
    assert count_rows(bq_client, old.location) == 500
    kept = pd.concat(make_bq_store().read_chunks("train_100k", 10_000), ignore_index=True)
    pd.testing.assert_frame_equal(comparable(kept), comparable(in_pickup_order(local_rows(old_csv))))
    # The cut also kept the store from dropping its staging table; list() does not show it.
    assert [i.name for i in make_bq_store().list()] == ["train_100k"]

    proxy.heal()
    done = store.put("train_100k", new_csv, source="new")

    assert (done.rows, done.checksum) == (20_000, sha256_file(new_csv))
    assert count_rows(bq_client, done.location) == 20_000


def test_a_file_bigquery_cannot_parse_is_a_data_error_and_keeps_the_table(
    make_bq_store: MakeStore, rides_csv: RidesCsv, tmp_path: Path, bq_client: Any
) -> None:
    store = make_bq_store()
    old = store.put("train_1k", rides_csv("train_1k", 200), source="old")
    lines = rides_csv("train_1k", 200, seed=3).read_text().splitlines()
    cells = lines[5].split(",")
    cells[1] = "twelve dollars"
    lines[5] = ",".join(cells)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")

    with pytest.raises(DataError, match=r"BigQuery rejected bad\.csv") as err:
        store.put("train_1k", bad, source="bad")

    assert err.value.exit_code == 4
    assert "\n" not in str(err.value)
    assert store.describe("train_1k") == old
    assert count_rows(bq_client, old.location) == 200


def test_a_file_without_the_raw_columns_is_a_data_error(make_bq_store: MakeStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("key,fare_amount\nk,1.0\n")
    with pytest.raises(DataError, match=r"lacks column.*pickup_datetime"):
        make_bq_store().put("train_1k", bad, source="x")


def test_columns_in_another_order_load_by_name(
    make_bq_store: MakeStore, rides_csv: RidesCsv, tmp_path: Path
) -> None:
    csv = rides_csv("train_1k", 300)
    frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    shuffled = tmp_path / "shuffled.csv"
    frame[list(reversed(frame.columns))].to_csv(shuffled, index=False)

    make_bq_store().put("train_1k", shuffled, source="x")

    got = pd.concat(make_bq_store().read_chunks("train_1k", 1_000), ignore_index=True)
    pd.testing.assert_frame_equal(comparable(got), comparable(in_pickup_order(local_rows(csv))))


# --- errors -----------------------------------------------------------------------------------
def test_a_missing_dataset_is_a_service_error_that_says_so(
    make_bq_store: MakeStore, rides_csv: RidesCsv
) -> None:
    store = make_bq_store(dataset="no_such_dataset")
    csv = rides_csv("train_1k", 10)
    for call in (
        store.list,
        lambda: store.describe("train_1k"),
        lambda: store.put("train_1k", csv, source="x"),
    ):
        with pytest.raises(ServiceError, match=f"dataset {BQ_PROJECT}.no_such_dataset does not exist") as err:
            call()
        assert err.value.exit_code == 5
        assert "bq mk --dataset" in str(err.value)


def test_an_unreachable_endpoint_is_a_service_error(make_bq_store: MakeStore) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceError, match=f"cannot reach BigQuery at {dead}.*connection refused"):
        make_bq_store(endpoint=dead, retries=1, timeout_s=1.0).list()


def test_reading_a_missing_table_is_not_found(make_bq_store: MakeStore) -> None:
    with pytest.raises(NotFoundError, match=r"train_500k does not exist.*--to bigquery --size/--month 500k"):
        make_bq_store().read_chunks("train_500k", 1_000)


def test_settings_mistakes_are_config_errors(home: Path) -> None:
    with pytest.raises(ConfigError, match="no Google Cloud project configured") as err:
        build_store(load_settings(environ={}).settings, "bigquery")
    assert err.value.exit_code == 3
    with pytest.raises(ConfigError, match="not a valid BigQuery dataset name"):
        BigQueryStore("p", "my-dataset")


def test_bootstrap_builds_the_store_from_settings_and_the_emulator_variable(
    home: Path, bq_emulator: Emulator, dataset: str, rides_csv: RidesCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bq_emulator.url.removeprefix("http://"))
    settings = load_settings(environ={"GCP_PROJECT": BQ_PROJECT, "BQ_DATASET": dataset}).settings

    store = build_store(settings, "bigquery")

    assert store.kind == "bigquery"
    assert store.put("val_1k", rides_csv("val_1k", 40), source="local").rows == 40
