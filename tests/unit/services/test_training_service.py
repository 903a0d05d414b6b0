"""train_model on simulated rides in a fake store, registering into a fake registry.

Most tests look at the one training run the `trained` fixture makes per session.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from tests.factories import ride_frame
from tests.fakes import FakeRegistry, FakeStore
from tests.unit.services.support import RIDES, TINY, Trained

from taxifare_cli import __version__
from taxifare_cli.artifact import FareModel
from taxifare_cli.core.cleaning import clean_chunk
from taxifare_cli.core.model import COSINE_FLOOR, HyperParams
from taxifare_cli.errors import DataError, NotFoundError
from taxifare_cli.ports import ModelRef
from taxifare_cli.services.training import train_model


def test_training_registers_a_version_with_its_metrics(trained: Trained) -> None:
    result, registry = trained.result, trained.registry
    assert result.version.version == 1 and result.version.stage == "None"
    held = registry.get(ModelRef(version=1))
    assert held.metrics == result.metrics == result.version.metrics
    assert set(result.metrics) == {
        "val_mae",
        "val_rmse",
        "train_rows",
        "val_rows",
        "epochs_run",
        "best_epoch",
        "duration_s",
        "prepare_s",
        "fit_s",
    }
    assert result.metrics["prepare_s"] > 0 and result.metrics["fit_s"] > 0
    # The rate decays along a cosine over the epochs, to COSINE_FLOOR of its start at the last.
    assert held.params["schedule"] == "cosine"
    rates = result.history["learning_rate"]
    assert len(rates) == result.epochs_run == 2
    assert rates[0] < TINY.learning_rate
    assert rates[1] == pytest.approx(TINY.learning_rate * COSINE_FLOOR, rel=1e-4)
    # Each rounded to the hundredth: together within a rounding of the whole.
    assert result.metrics["prepare_s"] + result.metrics["fit_s"] <= result.metrics["duration_s"] + 0.01
    assert (
        math.isfinite(result.metrics["val_mae"])
        and 0 < result.metrics["val_mae"] <= result.metrics["val_rmse"]
    )
    assert result.metrics["train_rows"] == result.train_report.rows_out
    assert result.metrics["val_rows"] == result.val_report.rows_out
    assert result.train_report.rows_in == result.val_report.rows_in == RIDES
    # The simulator makes a few dirty rides; cleaning drops them and only them.
    assert 0.9 * RIDES < result.train_report.rows_out < RIDES
    assert result.train_report.rows_out + result.train_report.rows_dropped == RIDES
    assert result.parent_version is None and held.parent_version is None
    assert held.package_version == __version__


def test_epochs_and_history_agree(trained: Trained, tiny: HyperParams) -> None:
    result = trained.result
    assert result.epochs_run >= 1 and result.epochs_run <= tiny.epochs
    assert result.metrics["epochs_run"] == result.epochs_run == len(result.history["loss"])
    assert result.best_epoch >= 1 and result.best_epoch <= result.epochs_run
    assert {"loss", "mae", "val_loss", "val_mae"} <= set(result.history)
    assert trained.registry.records[1].history == result.history


def test_params_and_data_seen_are_recorded(trained: Trained, tiny: HyperParams) -> None:
    held = trained.registry.get(ModelRef(version=1))
    assert held.params == tiny.as_dict() | {
        "chunk_size": 700,
        "train_dataset": "train_1k",
        "val_dataset": "val_1k",
    }
    assert held.params["hidden_layers"] == [16]
    for split, name in (("train", "train_1k"), ("val", "val_1k")):
        info = trained.store.describe(name)
        assert info is not None
        assert held.data[split] == {
            "dataset": name,
            "source": "local",
            "location": str(trained.store.path(name)),
            "checksum": info.checksum,
            "rows_read": RIDES,
            "rows_used": int(trained.result.metrics[f"{split}_rows"]),
        }


def test_the_artifact_loads_and_prices_the_validation_rides(trained: Trained) -> None:
    model = FareModel.load(trained.artifact)
    assert model.meta["trained_on"] == "train_1k"
    val, _ = clean_chunk(trained.store.frames["val_1k"])
    pred = model.predict(val)
    assert pred.shape == (len(val),) and np.isfinite(pred).all()
    # Its MAE on these rides is the one recorded (features computed the same way, in float32).
    assert np.abs(pred - val["fare_amount"].to_numpy()).mean() == pytest.approx(
        trained.result.metrics["val_mae"], rel=1e-4
    )
    truth, predicted = trained.registry.records[1].val_predictions or ([], [])
    assert len(truth) == len(predicted) == int(trained.result.metrics["val_rows"])


def test_progress_is_reported_per_dataset_and_epoch(trained: Trained) -> None:
    p = trained.progress
    assert ("start", "reading train_1k", RIDES, "rows") in p.calls
    assert ("start", "reading val_1k", RIDES, "rows") in p.calls
    assert p.advanced("reading train_1k") == RIDES and p.advanced("reading val_1k") == RIDES
    assert ("start", "training", 2, "epochs") in p.calls
    assert sum(1 for c in p.calls if c[:2] == ("advance", "training")) == trained.result.epochs_run
    assert p.tasks("finish") == ["reading train_1k", "reading val_1k", "training"]


def test_fine_tuning_from_a_stage_records_the_parent(
    store: FakeStore, registry: FakeRegistry, tiny: HyperParams
) -> None:
    registry.promote(1, "Production", by="test")
    result = train_model(
        store,
        registry,
        train_name="train_1k",
        val_name="val_1k",
        chunk_size=5_000,
        hp=tiny,
        from_stage="Production",
    )
    assert result.version.version == 2 and result.parent_version == 1
    assert registry.get(ModelRef(version=2)).parent_version == 1
    assert registry.records[2].parent_version == 1
    assert registry.fetched == [ModelRef(stage="Production")]
    assert registry.stages() == {1: "Production", 2: "None"}  # training never promotes
    assert math.isfinite(result.metrics["val_mae"])


def test_fine_tuning_from_an_empty_stage_is_not_found(
    store: FakeStore, registry: FakeRegistry, tiny: HyperParams
) -> None:
    with pytest.raises(NotFoundError, match="no model is in Staging"):
        train_model(
            store,
            registry,
            train_name="train_1k",
            val_name="val_1k",
            chunk_size=5_000,
            hp=tiny,
            from_stage="Staging",
        )
    assert list(registry.versions) == [1]


def test_a_train_set_with_no_usable_rows_is_a_data_error(tmp_path: Path, tiny: HyperParams) -> None:
    store, registry = FakeStore(tmp_path / "data"), FakeRegistry(tmp_path / "reg")
    store.put_frame("train_1k", ride_frame(5, pickup_latitude=[10.0] * 5))  # nowhere near New York
    store.put_frame("val_1k", ride_frame(5))
    with pytest.raises(
        DataError, match=r"train_1k has no usable rows after cleaning \(5 read; dropped 5 outside New York\)"
    ):
        train_model(store, registry, train_name="train_1k", val_name="val_1k", chunk_size=1_000, hp=tiny)
    assert registry.versions == {}


def test_an_empty_train_set_is_a_data_error(tmp_path: Path, tiny: HyperParams) -> None:
    store, registry = FakeStore(tmp_path / "data"), FakeRegistry(tmp_path / "reg")
    store.put_frame("train_1k", ride_frame(0))
    store.put_frame("val_1k", ride_frame(5))
    assert store.describe("train_1k").rows == 0  # type: ignore[union-attr]
    with pytest.raises(
        DataError, match=r"train_1k has no usable rows after cleaning \(the file has no rows\)"
    ):
        train_model(store, registry, train_name="train_1k", val_name="val_1k", chunk_size=1_000, hp=tiny)
    assert registry.versions == {}


def test_a_val_set_with_no_usable_rows_is_a_data_error(tmp_path: Path, tiny: HyperParams) -> None:
    store, registry = FakeStore(tmp_path / "data"), FakeRegistry(tmp_path / "reg")
    store.put_frame("train_1k", ride_frame(5))
    store.put_frame("val_1k", ride_frame(3, passenger_count=[0.0, 0.0, 9.0]))
    with pytest.raises(
        DataError, match=r"val_1k has no usable rows after cleaning \(3 read; dropped 3 passenger count"
    ):
        train_model(store, registry, train_name="train_1k", val_name="val_1k", chunk_size=1_000, hp=tiny)
    assert registry.versions == {}


def test_a_missing_dataset_is_not_found(tmp_path: Path, tiny: HyperParams) -> None:
    store, registry = FakeStore(tmp_path / "data"), FakeRegistry(tmp_path / "reg")
    store.put_frame("val_1k", ride_frame(5))
    with pytest.raises(NotFoundError, match="train_1k"):
        train_model(store, registry, train_name="train_1k", val_name="val_1k", chunk_size=1_000, hp=tiny)
    assert registry.versions == {}
