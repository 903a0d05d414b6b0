"""What train_model refuses, and when: too few rows, a diverged fit, a disk too full; nothing registered."""

import dataclasses
from pathlib import Path

import pytest
from tests.factories import ride_frame
from tests.fakes import FakeRegistry, FakeStore

from taxifare_cli.core.model import HyperParams
from taxifare_cli.errors import DataError, DiskFullError
from taxifare_cli.services.training import DEFAULT_MIN_ROWS, train_model


def stores(tmp_path: Path, train_rows: int, val_rows: int = 50) -> tuple[FakeStore, FakeRegistry]:
    store, registry = FakeStore(tmp_path / "data"), FakeRegistry(tmp_path / "reg")
    store.put_frame("train_1k", ride_frame(train_rows))
    store.put_frame("val_1k", ride_frame(val_rows))
    return store, registry


@pytest.mark.parametrize(("rows", "min_rows"), [(1, DEFAULT_MIN_ROWS), (99, DEFAULT_MIN_ROWS), (40, 41)])
def test_fewer_clean_rows_than_the_minimum_registers_nothing(
    tmp_path: Path, tiny: HyperParams, rows: int, min_rows: int
) -> None:
    store, registry = stores(tmp_path, rows)
    with pytest.raises(
        DataError, match=f"has {rows} clean row\\(s\\), fewer than the {min_rows} needed"
    ) as e:
        train_model(
            store,
            registry,
            train_name="train_1k",
            val_name="val_1k",
            chunk_size=1_000,
            hp=tiny,
            min_rows=min_rows,
        )
    assert "training.min_rows" in str(e.value.hint)
    assert registry.versions == {}


def test_the_minimum_itself_is_enough(tmp_path: Path, tiny: HyperParams) -> None:
    store, registry = stores(tmp_path, 30)
    result = train_model(
        store, registry, train_name="train_1k", val_name="val_1k", chunk_size=1_000, hp=tiny, min_rows=30
    )
    assert result.version.version == 1 and result.metrics["train_rows"] == 30


def test_a_diverged_training_stops_and_registers_nothing(tmp_path: Path, tiny: HyperParams) -> None:
    # The settings and the flag refuse a rate above 1; a caller of the service can still pass one.
    store, registry = stores(tmp_path, 120)
    wild = dataclasses.replace(tiny, learning_rate=1e300, epochs=3)
    with pytest.raises(DataError, match="training diverged") as e:
        train_model(store, registry, train_name="train_1k", val_name="val_1k", chunk_size=1_000, hp=wild)
    assert "--learning-rate" in str(e.value.hint)
    assert registry.versions == {}


def test_a_disk_too_full_for_the_feature_files_is_found_before_training(
    tmp_path: Path, tiny: HyperParams
) -> None:
    store, registry = stores(tmp_path, 120)
    # A dataset that claims more rows than any disk here holds: the check reads the store's description.
    real = store.describe

    def huge(name: str):  # type: ignore[no-untyped-def]
        info = real(name)
        return dataclasses.replace(info, rows=10**16) if info else None

    store.describe = huge  # type: ignore[method-assign]
    with pytest.raises(DiskFullError, match="not enough space for the feature files"):
        train_model(store, registry, train_name="train_1k", val_name="val_1k", chunk_size=1_000, hp=tiny)
    assert registry.versions == {}
