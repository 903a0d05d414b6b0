"""evaluate_model: a registered model's error on a dataset, recorded with the version."""

import pytest
from tests.factories import ride_frame
from tests.fakes import FakeRegistry, FakeStore, RecordingProgress
from tests.unit.services.support import RIDES, Trained

from taxifare_cli.errors import DataError, NotFoundError
from taxifare_cli.ports import ModelRef
from taxifare_cli.services.evaluation import evaluate_model


def test_evaluation_measures_and_records_with_the_version(
    store: FakeStore, registry: FakeRegistry, trained: Trained
) -> None:
    progress = RecordingProgress()
    result = evaluate_model(
        store, registry, ModelRef(version=1), dataset="val_1k", chunk_size=600, progress=progress
    )
    assert (result.version.version, result.dataset, result.source) == (1, "val_1k", "local")
    assert result.report.rows_in == RIDES
    assert result.metrics["rows"] == result.report.rows_out == int(trained.result.metrics["val_rows"])
    # The same model on the same rides: the MAE training measured.
    assert result.metrics["mae"] == pytest.approx(trained.result.metrics["val_mae"], rel=1e-4)
    assert result.metrics["rmse"] == pytest.approx(trained.result.metrics["val_rmse"], rel=1e-4)

    (recorded,) = registry.get(ModelRef(version=1)).evaluations
    info = store.describe("val_1k")
    assert info is not None
    assert {k: recorded[k] for k in ("dataset", "source", "checksum", "mae", "rmse", "rows")} == {
        "dataset": "val_1k",
        "source": "local",
        "checksum": info.checksum,
        "mae": result.metrics["mae"],
        "rmse": result.metrics["rmse"],
        "rows": result.metrics["rows"],
    }
    assert "at" in recorded
    assert progress.calls[0] == ("start", "evaluating on val_1k", RIDES, "rows")
    assert progress.advanced("evaluating on val_1k") == RIDES
    assert sum(1 for c in progress.calls if c[0] == "advance") == 4  # 2000 rows in chunks of 600
    assert progress.calls[-1] == ("finish", "evaluating on val_1k")


def test_a_stage_is_resolved_to_its_version(store: FakeStore, registry: FakeRegistry) -> None:
    registry.promote(1, "Staging", by="test")
    result = evaluate_model(store, registry, ModelRef(stage="Staging"), dataset="train_1k", chunk_size=5_000)
    assert result.version.version == 1 and result.version.stage == "Staging"
    assert [e["dataset"] for e in registry.versions[1].evaluations] == ["train_1k"]


def test_record_false_records_nothing(store: FakeStore, registry: FakeRegistry) -> None:
    evaluate_model(store, registry, ModelRef(version=1), dataset="val_1k", chunk_size=5_000, record=False)
    assert registry.versions[1].evaluations == []


def test_a_dataset_with_no_usable_rows_is_a_data_error_and_records_nothing(
    store: FakeStore, registry: FakeRegistry
) -> None:
    store.put_frame("val_10k", ride_frame(4, fare_amount=[-1.0, 0.0, 500.0, None]))
    with pytest.raises(DataError, match=r"val_10k has no usable rows to evaluate on \(4 read\)"):
        evaluate_model(store, registry, ModelRef(version=1), dataset="val_10k", chunk_size=1_000)
    store.put_frame("val_100k", ride_frame(0))
    with pytest.raises(DataError, match=r"val_100k has no usable rows to evaluate on \(0 read\)"):
        evaluate_model(store, registry, ModelRef(version=1), dataset="val_100k", chunk_size=1_000)
    assert registry.versions[1].evaluations == []


def test_what_is_not_there_is_not_found(store: FakeStore, registry: FakeRegistry) -> None:
    with pytest.raises(NotFoundError, match="val_500k"):
        evaluate_model(store, registry, ModelRef(version=1), dataset="val_500k", chunk_size=1_000)
    with pytest.raises(NotFoundError, match="version 7"):
        evaluate_model(store, registry, ModelRef(version=7), dataset="val_1k", chunk_size=1_000)
    with pytest.raises(NotFoundError, match="no model is in Production"):
        evaluate_model(store, registry, ModelRef(stage="Production"), dataset="val_1k", chunk_size=1_000)
    assert registry.versions[1].evaluations == []
