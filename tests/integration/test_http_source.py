import socket
from pathlib import Path

import pytest
from tests.factories import ride_frame
from tests.integration.http_fixtures import RideFiles, ride_server  # noqa: F401

from taxifare_cli.adapters.sources.http import HttpSource
from taxifare_cli.adapters.storage.local import LocalStore
from taxifare_cli.errors import DataError, NotFoundError, ServiceError
from taxifare_cli.files.ride_csv import write_csv_atomic
from taxifare_cli.services.data import fetch_data


def csv_bytes(tmp_path: Path, n: int, fare: float = 10.0) -> bytes:
    p = tmp_path / f"src-{n}-{fare}.csv"
    write_csv_atomic([ride_frame(n, fare_amount=[fare + i for i in range(n)])], p)
    return p.read_bytes()


def test_fetch_downloads_both_splits_with_checksums(tmp_path: Path, ride_server: tuple[str, RideFiles]) -> None:
    url, files = ride_server
    files.files["/train_1k.csv"] = csv_bytes(tmp_path, 5)
    files.files["/val_1k.csv"] = csv_bytes(tmp_path, 3)
    store = LocalStore(tmp_path / "data")
    results = fetch_data("1k", store, HttpSource(url + "/{name}.csv", timeout_s=5))
    assert [(r.name, r.info.rows) for r in results if r.info] == [("train_1k", 5), ("val_1k", 3)]
    assert (tmp_path / "data" / "train_1k.csv").read_bytes() == files.files["/train_1k.csv"]
    assert results[0].info and results[0].info.source == url + "/train_1k.csv"
    again = fetch_data("1k", store, HttpSource(url + "/{name}.csv", timeout_s=5))
    assert all(r.unchanged for r in again)


def test_broken_connection_leaves_the_previous_file_and_no_partial(
    tmp_path: Path, ride_server: tuple[str, RideFiles]
) -> None:
    url, files = ride_server
    files.files["/train_1k.csv"] = csv_bytes(tmp_path, 4)
    files.files["/val_1k.csv"] = csv_bytes(tmp_path, 2)
    store = LocalStore(tmp_path / "data")
    fetch_data("1k", store, HttpSource(url + "/{name}.csv", timeout_s=5))
    before = (tmp_path / "data" / "train_1k.csv").read_bytes()

    files.files["/train_1k.csv"] = csv_bytes(tmp_path, 2_000, fare=20.0)
    files.broken.add("/train_1k.csv")
    with pytest.raises(ServiceError, match=r"broke off|stopped after"):
        fetch_data("1k", store, HttpSource(url + "/{name}.csv", timeout_s=5, retries=1))
    assert (tmp_path / "data" / "train_1k.csv").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "data").glob("*.csv*")) == ["train_1k.csv", "val_1k.csv"]
    assert not list((tmp_path / "data").glob(".*part"))
    assert files.requests.count("/train_1k.csv") == 3  # first fetch, then one try and one retry


def test_missing_remote_file_is_not_found(tmp_path: Path, ride_server: tuple[str, RideFiles]) -> None:
    url, _ = ride_server
    with pytest.raises(NotFoundError, match="404"):
        fetch_data("10k", LocalStore(tmp_path), HttpSource(url + "/{name}.csv", timeout_s=5))


def test_html_instead_of_csv_is_refused(tmp_path: Path, ride_server: tuple[str, RideFiles]) -> None:
    url, files = ride_server
    files.files["/train_1k.csv"] = b"<html><body>Sign in</body></html>\n"
    with pytest.raises(DataError, match="not a raw rides CSV"):
        fetch_data("1k", LocalStore(tmp_path / "d"), HttpSource(url + "/{name}.csv", timeout_s=5))
    assert not (tmp_path / "d" / "train_1k.csv").exists()


def test_unreachable_remote_suggests_the_simulator(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = HttpSource(f"http://127.0.0.1:{port}/{{name}}.csv", timeout_s=2, retries=0)
    with pytest.raises(ServiceError, match="cannot reach") as e:
        fetch_data("1k", LocalStore(tmp_path), src)
    assert e.value.hint and "--source synthetic" in e.value.hint
