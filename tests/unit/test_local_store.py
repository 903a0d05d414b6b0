import os
from pathlib import Path

import pytest
from tests.factories import ride_frame

from taxifare_cli.adapters.storage.local import LocalStore
from taxifare_cli.errors import ConfigError, NotFoundError
from taxifare_cli.files.ride_csv import write_csv_atomic


def make_csv(path: Path, n: int) -> Path:
    write_csv_atomic([ride_frame(n)], path)
    return path


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
