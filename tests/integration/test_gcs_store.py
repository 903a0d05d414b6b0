"""GcsStore against fake-gcs-server: the bytes, the idempotence, interruptions and errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("google.cloud.storage", reason="the gcp extra is not installed")

from tests.integration.conftest import CuttingProxy
from tests.integration.emulators import Emulator, free_port

from taxifare_cli.adapters.storage.gcs import GcsStore
from taxifare_cli.bootstrap import build_store
from taxifare_cli.errors import ConfigError, NotFoundError, ServiceError
from taxifare_cli.files.ride_csv import file_opener, iter_csv_chunks, sha256_file
from taxifare_cli.settings import load_settings

pytestmark = pytest.mark.slow

MakeStore = Callable[..., GcsStore]
RidesCsv = Callable[..., Path]


def local_rows(path: Path, chunk_size: int = 100_000) -> pd.DataFrame:
    return pd.concat(list(iter_csv_chunks(file_opener(path), chunk_size, name=path.stem)), ignore_index=True)


def blob_generations(client: Any, bucket: str) -> dict[str, int]:
    return {b.name: b.generation for b in client.list_blobs(bucket, versions=True)}


def test_put_twice_keeps_one_blob(
    make_gcs_store: MakeStore, rides_csv: RidesCsv, gcs_client: Any, bucket: str
) -> None:
    csv = rides_csv("train_1k", 1_000)
    store = make_gcs_store()
    first = store.put("train_1k", csv, source="local")
    generations = blob_generations(gcs_client, bucket)

    again = store.put("train_1k", csv, source="local")

    assert again == first
    assert blob_generations(gcs_client, bucket) == generations  # not even rewritten
    digest = sha256_file(csv).removeprefix("sha256:")
    # The name, and its content kept once at its content address.
    assert sorted(generations) == [
        "taxi-fare-ny/train_1k.csv",
        f"taxi-fare-ny/versions/sha256/{digest[:2]}/{digest[2:]}.csv",
    ]
    assert [i.name for i in store.list()] == ["train_1k"]


def test_list_shows_only_ride_files_and_delete_removes_them(
    make_gcs_store: MakeStore, rides_csv: RidesCsv, gcs_client: Any, bucket: str
) -> None:
    store = make_gcs_store()
    store.put("val_jan", rides_csv("val_jan", 100), source="local")
    store.put("train_1k", rides_csv("train_1k", 100), source="local")
    for stray in ("taxi-fare-ny/notes.txt", "taxi-fare-ny/other.csv", "elsewhere/train_1k.csv"):
        gcs_client.bucket(bucket).blob(stray).upload_from_string(b"x")

    assert [i.name for i in store.list()] == ["train_1k", "val_jan"]
    assert store.delete("train_1k") is True
    assert store.delete("train_1k") is False
    assert store.describe("train_1k") is None
    assert [i.name for i in store.list()] == ["val_jan"]


def test_a_blob_written_by_other_tools_is_described_without_metadata(
    make_gcs_store: MakeStore, rides_csv: RidesCsv, gcs_client: Any, bucket: str
) -> None:
    csv = rides_csv("train_1k", 300)
    gcs_client.bucket(bucket).blob("taxi-fare-ny/train_1k.csv").upload_from_filename(str(csv))
    store = make_gcs_store()

    info = store.describe("train_1k")
    assert info is not None
    assert (info.rows, info.checksum, info.bytes) == (None, None, csv.stat().st_size)
    # Same bytes (its md5 says so): a put leaves it alone.
    assert store.put("train_1k", csv, source="local").updated == info.updated
    assert sum(len(c) for c in store.read_chunks("train_1k", 1_000)) == 300


def test_reading_streams_the_blob(
    make_gcs_store: MakeStore,
    rides_csv: RidesCsv,
    gcs_emulator: Emulator,
    proxy_to: Callable[..., CuttingProxy],
    tmp_path: Path,
) -> None:
    block = rides_csv("train_all", 50_000).read_bytes()  # about 5 MB
    header, _, rows = block.partition(b"\n")
    big = tmp_path / "big.csv"
    big.write_bytes(header + b"\n" + rows * 16)  # about 80 MB, quick to make
    make_gcs_store().put("train_all", big, source="local")
    proxy = proxy_to(gcs_emulator)
    store = make_gcs_store(endpoint=proxy.url, read_block_bytes=1 << 20)

    chunks = store.read_chunks("train_all", 1_000)
    first = next(chunks)
    chunks.close()  # type: ignore[attr-defined]  # a generator: stop reading

    assert len(first) == 1_000
    # The CSV reader reads ahead (pyarrow: up to 32 blocks of 1 MiB here), never the whole blob.
    assert proxy.bytes_down < big.stat().st_size * 0.6


@pytest.mark.parametrize("rows", [2_000, 90_000], ids=["multipart", "resumable"])
def test_an_interrupted_upload_keeps_the_previous_blob_and_a_second_run_completes(
    rows: int,
    make_gcs_store: MakeStore,
    rides_csv: RidesCsv,
    gcs_emulator: Emulator,
    proxy_to: Callable[..., CuttingProxy],
    gcs_client: Any,
    bucket: str,
) -> None:
    old_csv = rides_csv("train_500k", 500, seed=1)
    new_csv = rides_csv("train_500k", rows, seed=2)  # 90k rows: over 8 MiB, so a resumable upload
    old = make_gcs_store().put("train_500k", old_csv, source="old")
    proxy = proxy_to(gcs_emulator)
    store = make_gcs_store(endpoint=proxy.url, upload_chunk_bytes=1 << 20, timeout_s=5.0)
    proxy.cut_after(new_csv.stat().st_size // 2 + 20_000)  # past the look-up, mid-file

    with pytest.raises(ServiceError, match="cannot reach Cloud Storage"):
        store.put("train_500k", new_csv, source="new")

    assert proxy.is_cut
    kept = make_gcs_store().describe("train_500k")
    assert kept == old
    pd.testing.assert_frame_equal(
        pd.concat(make_gcs_store().read_chunks("train_500k", 10_000), ignore_index=True), local_rows(old_csv)
    )
    # No half file: the name and the one version it held, nothing of the new content.
    assert sorted(blob_generations(gcs_client, bucket)) == [
        "taxi-fare-ny/train_500k.csv",
        store.version_path(old.checksum or ""),
    ]

    proxy.heal()
    done = store.put("train_500k", new_csv, source="new")

    assert (done.rows, done.checksum) == (rows, sha256_file(new_csv))
    assert make_gcs_store().describe("train_500k") == done


# --- errors -----------------------------------------------------------------------------------
def test_a_missing_bucket_is_a_service_error_that_says_so(
    make_gcs_store: MakeStore, rides_csv: RidesCsv
) -> None:
    store = make_gcs_store(bucket="no-such-bucket-here")
    for call in (
        store.list,
        lambda: store.describe("train_1k"),
        lambda: store.put("train_1k", rides_csv("train_1k", 10), source="x"),
    ):
        with pytest.raises(ServiceError, match=r"bucket gs://no-such-bucket-here does not exist") as err:
            call()
        assert err.value.exit_code == 5
        assert "gcloud storage buckets create" in str(err.value)


def test_an_unreachable_endpoint_is_a_service_error_after_bounded_retries(make_gcs_store: MakeStore) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = make_gcs_store(endpoint=dead, retries=2, timeout_s=1.0)

    with pytest.raises(
        ServiceError, match=f"cannot reach Cloud Storage at {dead}.*connection refused"
    ) as err:
        store.list()
    assert "\n" not in str(err.value)


def test_reading_a_dataset_the_bucket_lacks_is_not_found(make_gcs_store: MakeStore) -> None:
    with pytest.raises(
        NotFoundError, match=r"val_feb is not in gs://.*data upload --to gcs --size/--month feb"
    ):
        make_gcs_store().read_chunks("val_feb", 1_000)


def test_bad_names_and_settings_are_config_errors(home: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid bucket name"):
        GcsStore("Bad_Bucket!")
    with pytest.raises(ConfigError, match="no Cloud Storage bucket configured") as err:
        build_store(load_settings(environ={}).settings, "gcs")
    assert err.value.exit_code == 3


def test_bootstrap_builds_the_store_from_settings_and_the_emulator_variable(
    home: Path, gcs_emulator: Emulator, bucket: str, rides_csv: RidesCsv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    settings = load_settings(environ={"BUCKET_NAME": bucket, "TAXIFARE_STORAGE__PREFIX": "raw"}).settings

    store = build_store(settings, "gcs")

    assert store.kind == "gcs"
    info = store.put("train_1k", rides_csv("train_1k", 50), source="local")
    assert info.location == f"gs://{bucket}/raw/train_1k.csv"
