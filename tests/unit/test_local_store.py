import os
from pathlib import Path

import pytest
from tests.factories import ride_frame

from taxifare_cli.adapters.storage.csv_chunks import write_csv_atomic
from taxifare_cli.adapters.storage.local import LocalStore
from taxifare_cli.errors import ConfigError, NotFoundError


def make_csv(path: Path, n: int) -> Path:
    write_csv_atomic([ride_frame(n)], path)
    return path


def test_put_describe_list_read_delete(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "data")
    info = store.put("train_1k", make_csv(tmp_path / "in.csv", 4), source="test")
    assert (info.name, info.rows, info.source) == ("train_1k", 4, "test")
    assert info.checksum and info.bytes == (tmp_path / "data" / "train_1k.csv").stat().st_size
    assert [i.name for i in store.list()] == ["train_1k"]
    assert sum(len(c) for c in store.read_chunks("train_1k", 1000)) == 4
    assert store.delete("train_1k") and store.describe("train_1k") is None
    assert not store.delete("train_1k")


def test_putting_the_same_file_twice_is_a_no_op(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "data")
    first = store.put("val_1k", make_csv(tmp_path / "a.csv", 3), source="a")
    again = store.put("val_1k", make_csv(tmp_path / "b.csv", 3), source="b")
    assert again.checksum == first.checksum and again.source == "a"


def test_reading_what_is_not_there_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="taxifare data fetch"):
        LocalStore(tmp_path).read_chunks("train_10k", 10)


def test_a_file_changed_behind_our_back_is_described_as_it_is(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("train_1k", make_csv(tmp_path / "in.csv", 3), source="x")
    make_csv(tmp_path / "train_1k.csv", 7)
    info = store.describe("train_1k")
    assert info is not None and info.rows == 7 and info.source == "local"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere, so permissions cannot be tested")
def test_unwritable_directory_is_a_config_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(ConfigError, match="not writable"):
        LocalStore(ro / "data").ensure_writable()


def test_a_file_in_place_of_the_directory_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    with pytest.raises(ConfigError, match="not writable"):
        LocalStore(tmp_path / "data").ensure_writable()
