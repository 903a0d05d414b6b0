"""The DataStore contract (taxifare_cli.ports.DataStore), run against every store.

Each test gets a fresh, empty store of each kind: a directory (LocalStore), a new
bucket on fake-gcs-server (GcsStore), a new dataset on bqemulator (BigQueryStore).
Where a backend legitimately differs from the others, the difference is written
down per backend below, with its reason, and asserted as such.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.factories import ride_frame
from tests.integration.emulators import BQ_PROJECT

from taxifare_cli.core.cleaning import DEFAULT_RULES, clean_chunk
from taxifare_cli.core.schema import RAW_COLUMNS
from taxifare_cli.core.simulator import iter_simulated_dataset
from taxifare_cli.errors import NotFoundError
from taxifare_cli.files.ride_csv import file_opener, iter_csv_chunks, sha256_file, write_csv_atomic
from taxifare_cli.ports import DatasetInfo, DataStore

pytestmark = pytest.mark.slow

BACKENDS = ["local", "gcs", "bigquery"]
GCS_PREFIX = "taxi-fare-ny"  # make_gcs_store's

# What describe().bytes means, per backend.
BYTES_ARE_THE_CSV_FILES = {
    "local": True,  # the file itself
    "gcs": True,  # the blob holds the file's bytes unchanged
    # Rows in a table: BigQuery's storage size, not the CSV's (bqemulator reports 0, given as None).
    "bigquery": False,
}

# The resolution of read_chunks' UTC timestamps, per backend (the values are the same).
TIMESTAMP_UNIT = {
    "local": "s",  # ride_csv reads whole seconds, as the files have them
    "gcs": "s",  # the same reader, on the blob
    "bigquery": "us",  # BigQuery TIMESTAMPs are microseconds
}

WriteRides = Callable[..., Path]


# --- fixtures -----------------------------------------------------------------------------
@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> DataStore:
    """A fresh, empty store of each kind."""
    if request.param == "local":
        from taxifare_cli.adapters.storage.local import LocalStore

        return LocalStore(tmp_path / "store")
    make = request.getfixturevalue("make_gcs_store" if request.param == "gcs" else "make_bq_store")
    made: DataStore = make()
    return made


@pytest.fixture
def location_of(store: DataStore, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """Where describe() must say `name` is, from how the store was built."""
    if store.kind == "local":
        return lambda name: str(tmp_path / "store" / f"{name}.csv")
    if store.kind == "gcs":
        bucket = request.getfixturevalue("bucket")  # the same bucket the store was made on
        return lambda name: f"gs://{bucket}/{GCS_PREFIX}/{name}.csv"
    dataset = request.getfixturevalue("dataset")
    return lambda name: f"{BQ_PROJECT}.{dataset}.{name}"


@pytest.fixture
def write_rides(tmp_path: Path) -> WriteRides:
    """write_rides(rows, seed=1, dirty=False): a raw ride CSV outside every store.

    Simulated rides (a few of them out of town), and with `dirty` a hand-made row for
    each cleaning rule, on and beside each boundary, plus nulls and an exact duplicate.
    """
    made = 0

    def write(rows: int, *, seed: int = 1, dirty: bool = False) -> Path:
        nonlocal made
        made += 1
        frames = [_simulated(rows, seed)]
        if dirty:
            frames.append(_dirty_rows())
        path = tmp_path / "in" / f"rides-{made}.csv"
        write_csv_atomic(frames, path)
        return path

    return write


@functools.cache
def _simulated(rows: int, seed: int) -> pd.DataFrame:
    """Simulated rides, made once per session (the simulator takes a while even for a few rows)."""
    return pd.concat(iter_simulated_dataset("train_1k", chunk_size=50_000, seed=seed, rows=rows))


def _dirty_rows() -> pd.DataFrame:
    nan = float("nan")
    cases: list[tuple[str, dict[str, float]]] = [
        ("clean", {}),
        ("fare-zero", {"fare_amount": 0.0}),
        ("fare-negative", {"fare_amount": -2.5}),
        ("fare-at-max", {"fare_amount": 400.0}),
        ("fare-just-under-max", {"fare_amount": 399.99}),
        ("fare-huge", {"fare_amount": 93_000.0}),
        ("pax-zero", {"passenger_count": 0.0}),
        ("pax-min", {"passenger_count": 1.0}),
        ("pax-max", {"passenger_count": 7.0}),
        ("pax-over", {"passenger_count": 208.0}),
        ("pax-null", {"passenger_count": nan}),
        ("dropoff-lat-null", {"dropoff_latitude": nan}),
        ("fare-null", {"fare_amount": nan}),
        ("coords-zero", {"pickup_longitude": 0.0, "pickup_latitude": 0.0}),
        ("lat-at-min", {"dropoff_latitude": 40.5}),
        ("lat-below-min", {"dropoff_latitude": 40.49}),
        ("lon-at-max", {"pickup_longitude": -73.7}),
        ("lon-over-max", {"pickup_longitude": -73.69}),
        ("swapped", {"pickup_longitude": 40.75, "pickup_latitude": -73.98}),
    ]
    frame = pd.concat(
        [
            ride_frame(1, key=[f"dirty-{label}"], **{c: [v] for c, v in values.items()})
            for label, values in cases
        ],
        ignore_index=True,
    )
    return pd.concat([frame, frame.iloc[[0]]], ignore_index=True)  # and an exact duplicate


# --- helpers ------------------------------------------------------------------------------
def rows_of(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Rows in a comparable form: sorted by key (then every column), timestamps in ns."""
    if not frames:
        return pd.DataFrame(columns=list(RAW_COLUMNS))
    df = pd.concat(frames, ignore_index=True)
    df["pickup_datetime"] = df["pickup_datetime"].dt.as_unit("ns")
    return df.sort_values(list(RAW_COLUMNS), kind="stable", na_position="last").reset_index(drop=True)


def written(csv: Path) -> pd.DataFrame:
    """The file's rows as ride_csv reads them: what every store must give back."""
    return rows_of(list(iter_csv_chunks(file_opener(csv), 1_000_000, name=csv.stem)))


def assert_typed_like_ride_csv(chunk: pd.DataFrame, kind: str) -> None:
    assert list(chunk.columns) == list(RAW_COLUMNS)
    assert pd.api.types.is_string_dtype(chunk["key"])
    dtype = chunk["pickup_datetime"].dtype
    assert isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC", dtype
    assert dtype.unit == TIMESTAMP_UNIT[kind], dtype
    for column in RAW_COLUMNS:
        if column not in ("key", "pickup_datetime"):
            assert chunk[column].dtype == np.float64, (column, chunk[column].dtype)


# --- the contract -------------------------------------------------------------------------
def test_an_empty_store_holds_nothing(store: DataStore) -> None:
    assert isinstance(store, DataStore)
    assert store.describe("train_1k") is None
    assert store.describe("val_jan") is None
    assert store.list() == []
    assert store.delete("train_1k") is False


def test_put_records_what_was_stored(
    store: DataStore, write_rides: WriteRides, location_of: Callable[[str], str]
) -> None:
    csv = write_rides(300)
    source = "https://example.test/raw/train 10k.csv?sig=a+b/c%3D&x=1"  # kept as given, odd characters too

    info = store.put("train_10k", csv, source=source)

    assert info.name == "train_10k"
    assert info.rows == 300
    assert info.location == location_of("train_10k")
    assert info.source == source
    assert info.checksum == sha256_file(csv)  # every backend records the checksum of the file it stored
    assert info.bytes == (csv.stat().st_size if BYTES_ARE_THE_CSV_FILES[store.kind] else None)
    assert isinstance(info.updated, datetime) and info.updated.utcoffset() is not None
    assert store.describe("train_10k") == info
    assert csv.is_file()  # the caller's file is left where it was


def test_read_chunks_gives_back_the_rows_written_typed_and_bounded(
    store: DataStore, write_rides: WriteRides
) -> None:
    csv = write_rides(300, dirty=True)  # nulls and out-of-range values come back as they are
    info = store.put("val_1k", csv, source="synthetic")

    chunks = list(store.read_chunks("val_1k", 128))

    assert all(len(c) <= 128 for c in chunks), [len(c) for c in chunks]
    assert sum(len(c) for c in chunks) == info.rows == 320
    for chunk in chunks:
        assert_typed_like_ride_csv(chunk, store.kind)
    assert sum(c.attrs.get("malformed_rows", 0) for c in chunks) == 0
    pd.testing.assert_frame_equal(rows_of(chunks), written(csv), check_exact=True)
    assert rows_of(chunks)["passenger_count"].isna().sum() == 1  # a null stays a null


def test_a_file_of_only_a_header_is_a_dataset_of_no_rows(store: DataStore, tmp_path: Path) -> None:
    csv = tmp_path / "header-only.csv"
    csv.write_text(",".join(RAW_COLUMNS) + "\n")

    info = store.put("val_1k", csv, source="x")

    assert (info.rows, info.checksum) == (0, sha256_file(csv))
    assert sum(len(c) for c in store.read_chunks("val_1k", 10)) == 0
    assert sum(len(c) for c in store.read_chunks("val_1k", 10, rules=DEFAULT_RULES)) == 0
    assert store.list() == [info]


def test_putting_the_same_file_again_changes_nothing(store: DataStore, write_rides: WriteRides) -> None:
    csv = write_rides(200)
    first = store.put("train_1k", csv, source="first")
    before = rows_of(list(store.read_chunks("train_1k", 1_000)))

    same = write_rides(200)  # another file with the same bytes: what counts is the content
    assert same != csv and same.read_bytes() == csv.read_bytes()

    again = store.put("train_1k", same, source="second")
    third = store.put("train_1k", csv, source="third")

    # Same bytes: nothing is rewritten, so nothing recorded changes, not even `updated` or `source`.
    assert again == third == first
    assert store.describe("train_1k") == first
    assert store.list() == [first]
    pd.testing.assert_frame_equal(rows_of(list(store.read_chunks("train_1k", 1_000))), before)


def test_putting_other_rows_under_the_same_name_replaces_them(
    store: DataStore, write_rides: WriteRides
) -> None:
    old = store.put("val_1k", write_rides(250, seed=1), source="a")
    new_csv = write_rides(180, seed=2)

    new = store.put("val_1k", new_csv, source="b")

    assert (new.name, new.rows, new.checksum, new.source) == ("val_1k", 180, sha256_file(new_csv), "b")
    assert new.checksum != old.checksum
    assert new.location == old.location
    assert new.updated is not None and old.updated is not None and new.updated >= old.updated
    assert store.describe("val_1k") == new
    assert store.list() == [new]
    pd.testing.assert_frame_equal(rows_of(list(store.read_chunks("val_1k", 100))), written(new_csv))


def test_list_holds_what_was_put_sorted_by_name(store: DataStore, write_rides: WriteRides) -> None:
    for name, rows in (("val_jan", 40), ("train_1k", 60), ("val_1k", 50), ("train_feb", 30)):
        store.put(name, write_rides(rows), source=f"src-{name}")

    listed = store.list()

    assert [(i.name, i.rows, i.source) for i in listed] == [
        ("train_1k", 60, "src-train_1k"),
        ("train_feb", 30, "src-train_feb"),
        ("val_1k", 50, "src-val_1k"),
        ("val_jan", 40, "src-val_jan"),
    ]
    assert listed == [store.describe(i.name) for i in listed]
    assert all(isinstance(i, DatasetInfo) for i in listed)


def test_names_are_read_as_dataset_names(store: DataStore, write_rides: WriteRides) -> None:
    info = store.put(" Train_1K ", write_rides(20), source="x")

    assert info.name == "train_1k"
    assert store.describe("TRAIN_1K") == info
    assert [i.name for i in store.list()] == ["train_1k"]
    assert sum(len(c) for c in store.read_chunks("train_1k ", 100)) == 20
    assert store.delete("train_1K") is True
    assert store.describe("train_1k") is None


@pytest.mark.parametrize("name", ["notes", "train_2k", "test_1k", "train_1k.csv", "../train_1k", ""])
def test_names_that_are_not_datasets_are_refused(
    store: DataStore, write_rides: WriteRides, name: str
) -> None:
    csv = write_rides(10)
    for call in (
        lambda: store.describe(name),
        lambda: store.put(name, csv, source="x"),
        lambda: store.read_chunks(name, 100),
        lambda: store.delete(name),
    ):
        with pytest.raises(ValueError, match="unknown dataset"):
            call()
    assert store.list() == []


def test_reading_what_is_not_held_is_not_found(store: DataStore, write_rides: WriteRides) -> None:
    with pytest.raises(NotFoundError):
        store.read_chunks("val_feb", 100)  # at the call, before the first chunk is asked for
    store.put("val_jan", write_rides(10), source="x")
    with pytest.raises(NotFoundError, match="val_feb"):
        store.read_chunks("val_feb", 100)


def test_delete_removes_the_dataset_once(store: DataStore, write_rides: WriteRides) -> None:
    store.put("train_1k", write_rides(30), source="x")
    kept = store.put("val_1k", write_rides(20), source="y")

    assert store.delete("train_1k") is True
    assert store.delete("train_1k") is False

    assert store.describe("train_1k") is None
    assert store.list() == [kept]
    with pytest.raises(NotFoundError):
        store.read_chunks("train_1k", 100)
    again = store.put("train_1k", write_rides(15, seed=5), source="z")  # the name can be used again
    assert (again.rows, again.source) == (15, "z")


def test_rules_given_to_read_chunks_change_nothing_after_cleaning(
    store: DataStore, write_rides: WriteRides
) -> None:
    store.put("train_10k", write_rides(300, dirty=True), source="x")
    plain = rows_of(list(store.read_chunks("train_10k", 128)))
    filtered = rows_of(list(store.read_chunks("train_10k", 128, rules=DEFAULT_RULES)))

    cleaned_plain, report = clean_chunk(plain, DEFAULT_RULES)
    cleaned_filtered, _ = clean_chunk(filtered, DEFAULT_RULES)

    assert set(report.dropped) >= {
        "missing or unparseable value",
        "duplicate",
        "fare out of range",
        "passenger count out of range",
        "outside New York",
    }  # the data does break every rule
    # A store may filter at the source or not: it only ever leaves rows out, never adds or alters one...
    assert multiset(filtered) <= multiset(plain)
    # ...and after cleaning, the rows are the same either way.
    pd.testing.assert_frame_equal(
        cleaned_filtered.reset_index(drop=True), cleaned_plain.reset_index(drop=True), check_exact=True
    )
    assert 0 < len(cleaned_plain) < len(plain)


def multiset(df: pd.DataFrame) -> Counter[tuple[object, ...]]:
    """The rows as a multiset of tuples, nulls made comparable."""
    return Counter(tuple("<null>" if pd.isna(v) else v for v in row) for row in df.itertuples(index=False))
