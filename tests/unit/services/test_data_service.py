"""fetch_data and list_data against fake stores and a fake ride source."""

from pathlib import Path

import pytest
from tests.fakes import FakeSource, FakeStore, MemoryStore

from taxifare_cli.errors import DataError, UsageError
from taxifare_cli.files.ride_csv import sha256_file
from taxifare_cli.ports import SILENT, Progress
from taxifare_cli.services.data import dataset_names, fetch_data, list_data


def files_in(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_file())


def test_first_fetch_puts_train_and_val_from_the_source(tmp_path: Path) -> None:
    store, source = FakeStore(tmp_path / "data"), FakeSource(rows=300, seed=5)
    results = fetch_data("1k", store, source)
    assert [r.name for r in results] == ["train_1k", "val_1k"]
    assert source.fetches == ["train_1k", "val_1k"]
    for r in results:
        assert r.origin == "fake (seed 5)" and not r.unchanged
        assert r.info is not None and r.info == store.describe(r.name)
        assert r.info.rows == 300 and len(store.frames[r.name]) == 300
        assert r.info.source == "fake (seed 5)"
        assert r.info.checksum == sha256_file(store.path(r.name))
    assert store.puts == ["train_1k", "val_1k"]
    # Each fetch went through its own staging file, and each was removed.
    assert len(store.staged) == 2 and store.leftovers() == []
    assert files_in(tmp_path / "data") == ["train_1k.csv", "val_1k.csv"]


def test_month_and_case_are_normalised(tmp_path: Path) -> None:
    results = fetch_data("FEB", FakeStore(tmp_path), FakeSource(rows=100))
    assert [r.name for r in results] == ["train_feb", "val_feb"]
    assert [r.info.rows for r in results if r.info] == [80, 20]  # months split 80/20


def test_fetching_the_same_content_again_reports_unchanged(tmp_path: Path) -> None:
    store, source = FakeStore(tmp_path / "data"), FakeSource(rows=200)
    first = fetch_data("1k", store, source)
    again = fetch_data("1k", store, source)
    assert [r.unchanged for r in again] == [True, True]
    assert [r.info for r in again] == [r.info for r in first]  # the same dataset, same `updated`
    assert source.fetches == ["train_1k", "val_1k"] * 2  # fetched again, but not put again
    assert store.puts == ["train_1k", "val_1k"]
    assert store.leftovers() == [] and len(store.staged) == 4


def test_fetching_different_content_replaces_and_is_not_unchanged(tmp_path: Path) -> None:
    store, source = FakeStore(tmp_path / "data"), FakeSource(rows=200, seed=1)
    first = fetch_data("1k", store, source)
    source.seed = 2
    second = fetch_data("1k", store, source)
    assert [r.unchanged for r in second] == [False, False]
    assert all(
        a.info and b.info and a.info.checksum != b.info.checksum for a, b in zip(first, second, strict=True)
    )
    assert store.puts == ["train_1k", "val_1k"] * 2


def test_dry_run_changes_nothing_and_says_what_is_held(tmp_path: Path) -> None:
    store, source = FakeStore(tmp_path / "data"), FakeSource(rows=100)
    planned = fetch_data("1k", store, source, dry_run=True)
    assert [(r.name, r.origin, r.info, r.unchanged) for r in planned] == [
        ("train_1k", "fake (seed 1)", None, False),
        ("val_1k", "fake (seed 1)", None, False),
    ]
    assert source.fetches == [] and store.staged == [] and store.list() == []
    assert files_in(tmp_path / "data") == []

    fetch_data("1k", store, source)
    held = fetch_data("1k", store, source, dry_run=True)
    assert [r.info for r in held] == store.list()
    assert source.fetches == ["train_1k", "val_1k"]  # the dry run fetched nothing


def test_a_source_serving_something_else_is_a_data_error_and_leaves_nothing(tmp_path: Path) -> None:
    store = FakeStore(tmp_path / "data")
    source = FakeSource(text="<html><body>Service Unavailable</body></html>\n")
    with pytest.raises(DataError, match="not a raw rides CSV: missing key, fare_amount") as e:
        fetch_data("1k", store, source)
    assert e.value.hint == "check data.remote_url"
    assert not isinstance(e.value, UsageError)
    assert source.fetches == ["train_1k"]  # stopped at the first file
    assert store.list() == [] and store.puts == []
    assert len(store.staged) == 1 and store.leftovers() == []
    assert files_in(tmp_path / "data") == []


def test_a_failing_source_leaves_what_was_held_and_no_staging_file(tmp_path: Path) -> None:
    store, source = FakeStore(tmp_path / "data"), FakeSource(rows=100)
    before = fetch_data("1k", store, source)

    class Broken(FakeSource):
        def fetch(self, name: str, dest: Path, *, progress: Progress = SILENT) -> None:
            dest.write_text("key,fare_amount,pick")  # half a file, then the connection drops
            raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        fetch_data("1k", store, Broken())
    assert store.list() == [r.info for r in before]
    assert store.leftovers() == []


def test_unknown_part_is_a_usage_error_before_anything_is_fetched(tmp_path: Path) -> None:
    store, source = FakeStore(tmp_path), FakeSource()
    with pytest.raises(UsageError, match="unknown size or month '2k'"):
        fetch_data("2k", store, source)
    assert source.fetches == [] and store.staged == []


def test_dataset_names() -> None:
    assert dataset_names(" 10K ") == ["train_10k", "val_10k"]
    assert dataset_names("jun") == ["train_jun", "val_jun"]
    with pytest.raises(UsageError):
        dataset_names("jul")


def test_list_data_is_by_store_kind_and_sorted_by_name(tmp_path: Path) -> None:
    local, bq = FakeStore(tmp_path / "local"), MemoryStore(kind="bigquery")
    fetch_data("10k", local, FakeSource(rows=50))
    fetch_data("1k", local, FakeSource(rows=50))
    bq.put("val_1k", local.path("val_1k"), source="local")
    listed = list_data([local, bq])
    assert list(listed) == ["local", "bigquery"]
    assert [i.name for i in listed["local"]] == ["train_10k", "train_1k", "val_10k", "val_1k"]
    assert [(i.name, i.rows, i.checksum) for i in listed["bigquery"]] == [
        ("val_1k", 50, sha256_file(local.path("val_1k")))
    ]
    assert list_data([]) == {}
