"""upload_data and reset_sources with the real stores: local files, fake-gcs-server, bqemulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("google.cloud.bigquery", reason="the gcp extra is not installed")

from tests.integration.conftest import CuttingProxy
from tests.integration.emulators import Emulator

from taxifare_cli.adapters.sources.synthetic import SyntheticSource
from taxifare_cli.adapters.storage.bigquery import BigQueryStore
from taxifare_cli.adapters.storage.gcs import GcsStore
from taxifare_cli.adapters.storage.local import LocalStore
from taxifare_cli.errors import NotFoundError, ServiceError, UsageError
from taxifare_cli.files.ride_csv import sha256_file
from taxifare_cli.services.transfer import TransferStep, reset_sources, upload_data

pytestmark = pytest.mark.slow

RidesCsv = Callable[..., Path]


class RecordingProgress:
    """A Progress sink that remembers what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float | None]] = []

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None:
        self.events.append(("start", task, total))

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None:
        self.events.append(("advance", task, amount))

    def finish(self, task: str) -> None:
        self.events.append(("finish", task, None))

    def log(self, message: str) -> None:
        self.events.append(("log", message, None))


@pytest.fixture
def local(tmp_path: Path, rides_csv: RidesCsv) -> LocalStore:
    """A local store holding train_1k (300 rows) and val_1k (200 rows)."""
    store = LocalStore(tmp_path / "data")
    store.put("train_1k", rides_csv("train_1k", 300), source="synthetic (seed 1)")
    store.put("val_1k", rides_csv("val_1k", 200), source="synthetic (seed 1)")
    return store


def actions(steps: list[TransferStep]) -> list[tuple[str, str, str, str]]:
    return [(s.step, s.name, s.destination, s.action) for s in steps]


def test_upload_to_the_bucket_then_again_changes_nothing(
    local: LocalStore, make_gcs_store: Callable[..., GcsStore]
) -> None:
    gcs = make_gcs_store()
    progress = RecordingProgress()

    first = upload_data(["train_1k", "val_1k"], src=local, dest=gcs, chunk_size=1000, progress=progress)
    second = upload_data(["train_1k", "val_1k"], src=local, dest=gcs, chunk_size=1000)

    assert actions(first) == [("upload", "train_1k", "gcs", "create"), ("upload", "val_1k", "gcs", "create")]
    assert [s.action for s in second] == ["unchanged", "unchanged"]
    for name in ("train_1k", "val_1k"):
        held = gcs.describe(name)
        assert held is not None
        assert held.checksum == sha256_file(local.path(name))  # the bytes went unchanged
        assert held.source == "synthetic (seed 1)"  # where the rows came from, not "local"
    total = local.path("train_1k").stat().st_size + local.path("val_1k").stat().st_size
    assert progress.events[0] == ("start", "uploading to gcs", total)
    assert progress.events[-1] == ("finish", "uploading to gcs", None)
    assert first[0].as_dict()["held"]["rows"] == 300


def test_a_changed_local_file_replaces_the_cloud_copy(
    local: LocalStore, rides_csv: RidesCsv, make_bq_store: Callable[..., BigQueryStore]
) -> None:
    bq = make_bq_store()
    upload_data(["train_1k"], src=local, dest=bq, chunk_size=1000)
    local.put("train_1k", rides_csv("train_1k", 350, seed=9), source="synthetic (seed 9)")

    plan = upload_data(["train_1k"], src=local, dest=bq, chunk_size=1000, dry_run=True)
    assert actions(plan) == [("upload", "train_1k", "bigquery", "replace")]
    assert bq.describe("train_1k").rows == 300  # type: ignore[union-attr]  # a dry run touched nothing

    done = upload_data(["train_1k"], src=local, dest=bq, chunk_size=1000)

    assert actions(done) == [("upload", "train_1k", "bigquery", "replace")]
    assert done[0].info is not None and done[0].info.rows == 350


def test_bucket_to_bigquery_keeps_the_bytes(
    local: LocalStore, make_gcs_store: Callable[..., GcsStore], make_bq_store: Callable[..., BigQueryStore]
) -> None:
    gcs, bq = make_gcs_store(), make_bq_store()
    upload_data(["val_1k"], src=local, dest=gcs, chunk_size=1000)

    steps = upload_data(["val_1k"], src=gcs, dest=bq, chunk_size=1000)

    assert actions(steps) == [("upload", "val_1k", "bigquery", "create")]
    assert steps[0].source == "gcs"
    held = bq.describe("val_1k")
    assert held is not None
    assert (held.rows, held.checksum) == (200, sha256_file(local.path("val_1k")))
    # Loaded from the bucket, the same file is recognised when it comes from disk.
    assert [s.action for s in upload_data(["val_1k"], src=local, dest=bq, chunk_size=1000)] == ["unchanged"]


def test_nothing_is_copied_when_the_source_lacks_a_dataset(
    local: LocalStore, make_gcs_store: Callable[..., GcsStore]
) -> None:
    gcs = make_gcs_store()
    with pytest.raises(NotFoundError, match="local store has no train_10k"):
        upload_data(["train_1k", "train_10k"], src=local, dest=gcs, chunk_size=1000)
    assert gcs.list() == []
    with pytest.raises(UsageError):
        upload_data(["train_1k"], src=local, dest=local, chunk_size=1000)


def test_an_interrupted_upload_of_several_files_completes_on_the_second_run(
    local: LocalStore,
    make_gcs_store: Callable[..., GcsStore],
    gcs_emulator: Emulator,
    proxy_to: Callable[..., CuttingProxy],
) -> None:
    proxy = proxy_to(gcs_emulator)
    gcs = make_gcs_store(endpoint=proxy.url, timeout_s=5.0)
    # Past train_1k's upload and into val_1k's.
    proxy.cut_after(local.path("train_1k").stat().st_size + 8_000)

    with pytest.raises(ServiceError, match="cannot reach Cloud Storage"):
        upload_data(["train_1k", "val_1k"], src=local, dest=gcs, chunk_size=1000)

    direct = make_gcs_store()
    assert direct.describe("train_1k") is not None
    assert direct.describe("val_1k") is None  # no half file
    proxy.heal()
    again = upload_data(["train_1k", "val_1k"], src=local, dest=gcs, chunk_size=1000)
    assert [s.action for s in again] == ["unchanged", "create"]


def test_reset_sources_plans_then_fills_every_place(
    tmp_path: Path,
    make_gcs_store: Callable[..., GcsStore],
    make_bq_store: Callable[..., BigQueryStore],
    gcs_client: Any,
    bucket: str,
) -> None:
    local = LocalStore(tmp_path / "data")
    source = SyntheticSource(seed=7, chunk_size=50_000, month_rows=1_000, all_rows=1_000)
    gcs, bq = make_gcs_store(), make_bq_store()

    plan = reset_sources(
        local=local, source=source, chunk_size=1000, dests=[gcs, bq], parts=["1k"], dry_run=True
    )

    assert actions(plan) == [
        ("fetch", "train_1k", "local", "create"),
        ("fetch", "val_1k", "local", "create"),
        ("upload", "train_1k", "gcs", "create"),
        ("upload", "val_1k", "gcs", "create"),
        ("upload", "train_1k", "bigquery", "create"),
        ("upload", "val_1k", "bigquery", "create"),
    ]
    assert all(s.dry_run for s in plan)
    assert plan[0].source == "synthetic (seed 7)"
    assert local.list() == [] and gcs.list() == [] and bq.list() == []

    done = reset_sources(local=local, source=source, chunk_size=1000, dests=[gcs, bq], parts=["1k"])

    assert [s.action for s in done] == ["create"] * 6
    for name in ("train_1k", "val_1k"):
        checksums = {store.kind: store.describe(name).checksum for store in (local, gcs, bq)}  # type: ignore[union-attr]
        assert len(set(checksums.values())) == 1, checksums
        assert bq.describe(name).rows == 1_000  # type: ignore[union-attr]

    replan = reset_sources(
        local=local, source=source, chunk_size=1000, dests=[gcs, bq], parts=["1k"], dry_run=True
    )
    assert [s.action for s in replan] == ["refresh", "refresh"] + ["unchanged"] * 4
    again = reset_sources(local=local, source=source, chunk_size=1000, dests=[gcs, bq], parts=["1k"])
    assert [s.action for s in again] == ["unchanged"] * 6
    assert len(list(gcs_client.list_blobs(bucket))) == 4  # two names, and one version of each
    assert [s.as_dict()["step"] for s in again] == ["fetch", "fetch", "upload", "upload", "upload", "upload"]


def test_reset_of_the_local_files_only(tmp_path: Path) -> None:
    local = LocalStore(tmp_path / "data")
    source = SyntheticSource(seed=7, chunk_size=50_000, month_rows=1_000, all_rows=1_000)

    steps = reset_sources(local=local, source=source, chunk_size=1000, parts=["1k"])

    assert actions(steps) == [
        ("fetch", "train_1k", "local", "create"),
        ("fetch", "val_1k", "local", "create"),
    ]
    assert [i.rows for i in local.list()] == [1_000, 1_000]


def test_from_bigquery_the_rows_are_written_out_again(
    local: LocalStore, make_gcs_store: Callable[..., GcsStore], make_bq_store: Callable[..., BigQueryStore]
) -> None:
    gcs, bq = make_gcs_store(), make_bq_store()
    upload_data(["val_1k"], src=local, dest=bq, chunk_size=1000)

    steps = upload_data(["val_1k"], src=bq, dest=gcs, chunk_size=1000)

    assert actions(steps) == [("upload", "val_1k", "gcs", "create")]
    assert steps[0].info is not None and steps[0].info.rows == 200
    assert steps[0].info.source == "synthetic (seed 1) (via bigquery)"  # re-encoded: not the same bytes
    order = ["pickup_datetime", "key"]
    from_gcs = pd.concat(gcs.read_chunks("val_1k", 1_000)).sort_values(order, ignore_index=True)
    from_disk = pd.concat(local.read_chunks("val_1k", 1_000)).sort_values(order, ignore_index=True)
    for frame in (from_gcs, from_disk):
        frame["pickup_datetime"] = frame["pickup_datetime"].dt.as_unit("ns")
    pd.testing.assert_frame_equal(from_gcs, from_disk)
