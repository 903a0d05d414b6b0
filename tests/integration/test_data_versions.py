"""Data versions in the bucket and pulling data back, against fake-gcs-server and the BigQuery emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("google.cloud.storage", reason="the gcp extra is not installed")

from taxifare_cli.adapters.storage.bigquery import BigQueryStore
from taxifare_cli.adapters.storage.gcs import GcsStore
from taxifare_cli.adapters.storage.local import LocalStore
from taxifare_cli.errors import DataError, NotFoundError, UsageError
from taxifare_cli.files.ride_csv import file_opener, iter_csv_chunks, sha256_file
from taxifare_cli.services.data import list_versions
from taxifare_cli.services.transfer import pull_data, upload_data

pytestmark = pytest.mark.slow

RidesCsv = Callable[..., Path]


class Recorded:
    """A Progress that remembers what it was told."""

    def __init__(self) -> None:
        self.totals: dict[str, float | None] = {}
        self.done: dict[str, float] = {}

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None:
        self.totals[task] = total
        self.done[task] = 0.0

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None:
        self.done[task] += amount

    def finish(self, task: str) -> None:
        pass

    def log(self, message: str) -> None:
        pass


def generations(client: Any, bucket: str) -> dict[str, int]:
    return {b.name: b.generation for b in client.list_blobs(bucket)}


def rows_of(path: Path) -> pd.DataFrame:
    return pd.concat(list(iter_csv_chunks(file_opener(path), 100_000, name=path.stem)), ignore_index=True)


def test_two_contents_under_one_name_are_kept_and_both_pulled_back_by_checksum(
    make_gcs_store: Callable[..., GcsStore], rides_csv: RidesCsv, gcs_client: Any, bucket: str, tmp_path: Path
) -> None:
    gcs = make_gcs_store()
    first, second = rides_csv("train_1k", 300, seed=1), rides_csv("train_1k", 400, seed=2)
    a, b = sha256_file(first), sha256_file(second)
    assert a != b

    gcs.put("train_1k", first, source="january")
    gcs.put("train_1k", second, source="february")
    held = generations(gcs_client, bucket)
    gcs.put("train_1k", second, source="february")  # the same content again: nothing is written

    assert generations(gcs_client, bucket) == held
    hexa = a.removeprefix("sha256:")
    assert f"taxi-fare-ny/versions/sha256/{hexa[:2]}/{hexa[2:]}.csv" in held
    assert len(held) == 3  # the name, and one object per distinct content
    versions = gcs.versions()
    assert sorted(v.checksum for v in versions if v.checksum) == sorted([a, b])
    assert {(v.name, v.rows, v.source) for v in versions} == {
        ("train_1k", 300, "january"),
        ("train_1k", 400, "february"),
    }
    current = gcs.describe("train_1k")
    assert current is not None and current.checksum == b

    local = LocalStore(tmp_path / "data")
    progress = Recorded()
    for checksum, source in ((a, first), (b, second), (a, first)):
        [step] = pull_data(
            ["train_1k", "val_1k"],
            src=gcs,
            dest=local,
            checksums=[checksum],
            chunk_size=1000,
            progress=progress,
        )
        assert step.name == "train_1k" and step.action in ("create", "replace")
        assert sha256_file(local.path("train_1k")) == checksum
        assert local.path("train_1k").read_bytes() == source.read_bytes()
    assert progress.totals["downloading train_1k"] == first.stat().st_size
    assert progress.done["downloading train_1k"] == first.stat().st_size
    [again] = pull_data(["train_1k"], src=gcs, dest=local, checksums=[a], chunk_size=1000)
    assert again.action == "unchanged"
    assert [p.name for p in local.root.iterdir() if p.suffix == ".csv"] == ["train_1k.csv"]  # no leftovers

    listed = list_versions([local, gcs])
    assert [i.checksum for i in listed["local"]] == [a]
    assert len(listed["gcs"]) == 2


def test_a_version_of_another_dataset_or_one_not_held_is_refused(
    make_gcs_store: Callable[..., GcsStore], rides_csv: RidesCsv, tmp_path: Path
) -> None:
    gcs = make_gcs_store()
    val = rides_csv("val_1k", 100)
    gcs.put("val_1k", val, source="local")
    local = LocalStore(tmp_path / "data")

    with pytest.raises(UsageError, match="is a version of val_1k, not of train_10k or val_10k"):
        pull_data(["train_10k", "val_10k"], src=gcs, dest=local, checksums=[sha256_file(val)], chunk_size=10)
    missing = "sha256:" + "0" * 64
    with pytest.raises(NotFoundError, match=f"gcs holds no version {missing}"):
        pull_data(["train_1k", "val_1k"], src=gcs, dest=local, checksums=[missing], chunk_size=10)
    with pytest.raises(DataError, match="not a sha256 checksum"):
        gcs.describe_version("md5:abc")
    assert local.list() == []


def test_a_damaged_version_is_not_renamed_into_place(
    make_gcs_store: Callable[..., GcsStore],
    rides_csv: RidesCsv,
    gcs_client: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    gcs = make_gcs_store()
    csv = rides_csv("train_1k", 200)
    gcs.put("train_1k", csv, source="local")
    checksum = sha256_file(csv)
    # Someone overwrites the content address behind the store's back.
    damaged = gcs_client.bucket(bucket).blob(gcs.version_path(checksum))
    damaged.metadata = {"dataset": "train_1k", "sha256": checksum}
    damaged.upload_from_string(b"key,fare_amount\n1,2\n")
    local = LocalStore(tmp_path / "data")
    local.put("train_1k", rides_csv("train_1k", 50, seed=9), source="before")
    before = local.path("train_1k").read_bytes()

    with pytest.raises(DataError, match="checksum"):
        pull_data(["train_1k"], src=gcs, dest=local, checksums=[checksum], chunk_size=100)

    assert local.path("train_1k").read_bytes() == before
    assert sorted(p.name for p in local.root.iterdir() if not p.name.startswith(".manifest")) == [
        "train_1k.csv"
    ]


def test_the_current_dataset_is_pulled_from_the_bucket_and_from_bigquery(
    make_gcs_store: Callable[..., GcsStore],
    make_bq_store: Callable[..., BigQueryStore],
    rides_csv: RidesCsv,
    tmp_path: Path,
) -> None:
    origin = LocalStore(tmp_path / "origin")
    origin.put("train_1k", rides_csv("train_1k", 500, seed=3), source="synthetic")
    origin.put("val_1k", rides_csv("val_1k", 120, seed=4), source="synthetic")
    gcs, bq = make_gcs_store(), make_bq_store()
    upload_data(["train_1k", "val_1k"], src=origin, dest=gcs, chunk_size=1000)
    upload_data(["train_1k", "val_1k"], src=origin, dest=bq, chunk_size=1000)

    from_gcs = LocalStore(tmp_path / "from-gcs")
    steps = pull_data(["train_1k", "val_1k"], src=gcs, dest=from_gcs, chunk_size=1000)
    assert [s.action for s in steps] == ["create", "create"]
    for name in ("train_1k", "val_1k"):
        assert from_gcs.path(name).read_bytes() == origin.path(name).read_bytes()
    assert [s.action for s in pull_data(["train_1k"], src=gcs, dest=from_gcs, chunk_size=1000)] == [
        "unchanged"
    ]

    from_bq = LocalStore(tmp_path / "from-bq")
    progress = Recorded()
    pull_data(["train_1k", "val_1k"], src=bq, dest=from_bq, chunk_size=100, progress=progress)
    info = from_bq.describe("train_1k")
    assert info is not None and info.rows == 500 and info.source == bq.table_id("train_1k")
    assert progress.done["pulling train_1k"] == 500
    pulled = rows_of(from_bq.path("train_1k")).sort_values("key", ignore_index=True)
    original = rows_of(origin.path("train_1k")).sort_values("key", ignore_index=True)
    pd.testing.assert_frame_equal(pulled, original, check_exact=False)

    with pytest.raises(UsageError, match="--checksum needs --source gcs"):
        pull_data(["train_1k"], src=bq, dest=from_bq, checksums=["sha256:" + "1" * 64], chunk_size=10)


def test_a_bigquery_table_changed_by_hand_no_longer_claims_its_file_checksum(
    make_bq_store: Callable[..., BigQueryStore], bq_client: Any, rides_csv: RidesCsv
) -> None:
    bq = make_bq_store()
    csv = rides_csv("train_1k", 200)
    loaded = bq.put("train_1k", csv, source="local")
    assert loaded.checksum == sha256_file(csv)
    assert loaded.location == bq.table_id("train_1k")

    bq_client.query(
        f"UPDATE `{bq.table_id('train_1k')}` SET fare_amount = fare_amount + 1 WHERE TRUE"
    ).result()

    changed = bq.describe("train_1k")
    assert changed is not None and changed.checksum is not None
    assert changed.checksum.startswith("bqrows:200:")
    # The fingerprint is of the content: the same rows give the same one.
    assert bq.describe("train_1k") == changed
    again = bq.put("train_1k", csv, source="local")  # the file again: the table is replaced, and claims it
    assert again.checksum == sha256_file(csv)
