"""upload_data and reset_sources between fake stores."""

from pathlib import Path

import pytest
from tests.fakes import FakeSource, FakeStore, MemoryStore, RecordingProgress

from taxifare_cli.errors import NotFoundError, UsageError
from taxifare_cli.services.data import fetch_data
from taxifare_cli.services.transfer import STANDARD_PARTS, TransferStep, reset_sources, upload_data

NAMES = ["train_1k", "val_1k"]


@pytest.fixture
def local(tmp_path: Path) -> FakeStore:
    store = FakeStore(tmp_path / "local", kind="local")
    fetch_data("1k", store, FakeSource(rows=120, seed=1))
    return store


@pytest.fixture
def gcs(tmp_path: Path) -> FakeStore:
    return FakeStore(tmp_path / "gcs", kind="gcs")


def actions(steps: list[TransferStep]) -> list[tuple[str, str, str, str]]:
    return [(s.step, s.name, s.destination, s.action) for s in steps]


def test_upload_copies_the_bytes_unchanged(local: FakeStore, gcs: FakeStore) -> None:
    progress = RecordingProgress()
    steps = upload_data(NAMES, src=local, dest=gcs, chunk_size=50, progress=progress)
    assert [(s.name, s.source, s.destination, s.action, s.dry_run) for s in steps] == [
        ("train_1k", "local", "gcs", "create", False),
        ("val_1k", "local", "gcs", "create", False),
    ]
    for s in steps:
        src_info, dest_info = local.describe(s.name), gcs.describe(s.name)
        assert src_info and dest_info and s.info == dest_info
        assert dest_info.checksum == src_info.checksum
        assert dest_info.rows == src_info.rows == 120
        assert dest_info.source == "fake (seed 1)"  # where the rows came from, not "local"
        assert gcs.path(s.name).read_bytes() == local.path(s.name).read_bytes()
    total = sum(i.bytes or 0 for i in local.list())
    assert progress.calls[0] == ("start", "uploading to gcs", total, "bytes")
    assert progress.advanced("uploading to gcs") == total
    assert progress.calls[-1] == ("finish", "uploading to gcs")


def test_a_second_upload_is_unchanged_and_puts_nothing(local: FakeStore, gcs: FakeStore) -> None:
    first = upload_data(NAMES, src=local, dest=gcs, chunk_size=50)
    again = upload_data(NAMES, src=local, dest=gcs, chunk_size=50)
    assert [s.action for s in again] == ["unchanged", "unchanged"]
    assert [s.info for s in again] == [s.info for s in first]
    assert gcs.puts == NAMES


def test_changed_local_data_is_replaced(local: FakeStore, gcs: FakeStore) -> None:
    upload_data(NAMES, src=local, dest=gcs, chunk_size=50)
    fetch_data("1k", local, FakeSource(rows=120, seed=2))
    steps = upload_data(NAMES, src=local, dest=gcs, chunk_size=50)
    assert [s.action for s in steps] == ["replace", "replace"]
    assert [i.checksum for i in gcs.list()] == [i.checksum for i in local.list()]


def test_dry_run_plans_without_copying(local: FakeStore, gcs: FakeStore) -> None:
    progress = RecordingProgress()
    plan = upload_data(NAMES, src=local, dest=gcs, chunk_size=50, dry_run=True, progress=progress)
    assert [(s.action, s.dry_run, s.info) for s in plan] == [("create", True, None)] * 2
    assert gcs.list() == [] and gcs.puts == [] and progress.calls == []

    upload_data(NAMES, src=local, dest=gcs, chunk_size=50)
    assert [s.action for s in upload_data(NAMES, src=local, dest=gcs, chunk_size=50, dry_run=True)] == [
        "unchanged",
        "unchanged",
    ]
    fetch_data("1k", local, FakeSource(rows=120, seed=9))
    plan = upload_data(NAMES, src=local, dest=gcs, chunk_size=50, dry_run=True)
    assert [s.action for s in plan] == ["replace", "replace"]
    assert [s.info for s in plan] == gcs.list()  # what the destination holds before
    assert gcs.puts == NAMES  # only the one real upload


def test_a_missing_source_dataset_fails_before_anything_is_copied(tmp_path: Path, gcs: FakeStore) -> None:
    local = FakeStore(tmp_path / "partial")
    fetch_data("1k", local, FakeSource(rows=30))
    local.delete("val_1k")  # train_1k is there and comes first: it must not be copied alone
    with pytest.raises(NotFoundError, match="local store has no val_1k") as e:
        upload_data(NAMES, src=local, dest=gcs, chunk_size=50)
    assert e.value.hint and "--size/--month 1k" in e.value.hint
    assert gcs.puts == [] and gcs.list() == []


def test_same_kind_is_refused(local: FakeStore, tmp_path: Path) -> None:
    other = FakeStore(tmp_path / "other", kind="local")
    with pytest.raises(UsageError, match="both local"):
        upload_data(NAMES, src=local, dest=other, chunk_size=50)
    assert other.puts == []


def test_upload_from_a_store_without_files_goes_through_its_reader(local: FakeStore, gcs: FakeStore) -> None:
    bq = MemoryStore(kind="bigquery")
    upload_data(NAMES, src=local, dest=bq, chunk_size=50)
    assert bq.list() and bq.reads == []  # from a FileStore: its file, not its reader
    steps = upload_data(NAMES, src=bq, dest=gcs, chunk_size=50)
    assert [s.action for s in steps] == ["create", "create"]
    assert bq.reads == NAMES  # re-encoded through read_chunks
    for name in NAMES:
        src_info, dest_info = bq.describe(name), gcs.describe(name)
        assert src_info and dest_info and dest_info.rows == src_info.rows == 120
        if dest_info.checksum == src_info.checksum:
            assert dest_info.source == "fake (seed 1)"
        else:
            assert dest_info.source == "fake (seed 1) (via bigquery)"


def test_reset_fetches_the_standard_parts_then_uploads_to_each_store_in_order(tmp_path: Path) -> None:
    local, gcs, bq = FakeStore(tmp_path / "local"), FakeStore(tmp_path / "gcs", kind="gcs"), MemoryStore()
    source = FakeSource(rows=40)
    steps = reset_sources(local=local, source=source, dests=[gcs, bq], chunk_size=1_000)
    names = [f"{split}_{part}" for part in STANDARD_PARTS for split in ("train", "val")]
    assert STANDARD_PARTS == ("1k", "10k", "100k", "500k")
    assert source.fetches == names
    assert actions(steps) == (
        [("fetch", n, "local", "create") for n in names]
        + [("upload", n, "gcs", "create") for n in names]
        + [("upload", n, "bigquery", "create") for n in names]
    )
    assert [s.source for s in steps[:2]] == ["fake (seed 1)"] * 2
    assert [i.checksum for i in gcs.list()] == [i.checksum for i in local.list()]
    assert sorted(bq.frames) == sorted(names)
    assert gcs.puts == names


def test_a_second_reset_is_unchanged_everywhere(tmp_path: Path) -> None:
    local, gcs, bq = FakeStore(tmp_path / "local"), FakeStore(tmp_path / "gcs", kind="gcs"), MemoryStore()
    source = FakeSource(rows=40)
    first = reset_sources(local=local, source=source, dests=[gcs, bq], chunk_size=1_000, parts=["1k"])
    again = reset_sources(local=local, source=source, dests=[gcs, bq], chunk_size=1_000, parts=["1k"])
    assert [s.action for s in again] == ["unchanged"] * 6
    assert [s.info for s in again] == [s.info for s in first]
    assert len(source.fetches) == 4 and gcs.puts == bq.puts == ["train_1k", "val_1k"]


def test_reset_replaces_what_changed(tmp_path: Path) -> None:
    local, gcs = FakeStore(tmp_path / "local"), FakeStore(tmp_path / "gcs", kind="gcs")
    reset_sources(
        local=local, source=FakeSource(rows=40, seed=1), dests=[gcs], chunk_size=1_000, parts=["1k"]
    )
    steps = reset_sources(
        local=local, source=FakeSource(rows=40, seed=2), dests=[gcs], chunk_size=1_000, parts=["1k"]
    )
    assert actions(steps) == [
        ("fetch", "train_1k", "local", "replace"),
        ("fetch", "val_1k", "local", "replace"),
        ("upload", "train_1k", "gcs", "replace"),
        ("upload", "val_1k", "gcs", "replace"),
    ]


def test_reset_dry_run_plans_every_step_and_does_nothing(tmp_path: Path) -> None:
    local, gcs = FakeStore(tmp_path / "local"), FakeStore(tmp_path / "gcs", kind="gcs")
    source = FakeSource(rows=40)
    plan = reset_sources(
        local=local, source=source, dests=[gcs], chunk_size=1_000, parts=["1k"], dry_run=True
    )
    assert actions(plan) == [
        ("fetch", "train_1k", "local", "create"),
        ("fetch", "val_1k", "local", "create"),
        ("upload", "train_1k", "gcs", "create"),
        ("upload", "val_1k", "gcs", "create"),
    ]
    assert all(s.dry_run for s in plan)
    assert source.fetches == [] and local.list() == [] and gcs.list() == []

    reset_sources(local=local, source=source, dests=[gcs], chunk_size=1_000, parts=["1k"])
    plan = reset_sources(
        local=local, source=source, dests=[gcs], chunk_size=1_000, parts=["1k"], dry_run=True
    )
    # Local files are fetched again and replaced only if they differ; the uploads would change nothing.
    assert [s.action for s in plan] == ["refresh", "refresh", "unchanged", "unchanged"]
    assert len(source.fetches) == 2


def test_reset_with_no_destinations_only_fetches(tmp_path: Path) -> None:
    local = FakeStore(tmp_path / "local")
    steps = reset_sources(local=local, source=FakeSource(rows=10), chunk_size=1_000, parts=["jan"])
    assert actions(steps) == [
        ("fetch", "train_jan", "local", "create"),
        ("fetch", "val_jan", "local", "create"),
    ]
