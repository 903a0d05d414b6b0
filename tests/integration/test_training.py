"""Training end to end on simulated rides, with the real local store and registry."""

from pathlib import Path

import numpy as np
import pytest

from taxifare_cli.adapters.registry.local import LocalRegistry
from taxifare_cli.adapters.sources.synthetic import SyntheticSource
from taxifare_cli.adapters.storage.local import LocalStore
from taxifare_cli.artifact import FareModel
from taxifare_cli.core.cleaning import clean_chunk
from taxifare_cli.core.model import HyperParams
from taxifare_cli.ports import ModelRef
from taxifare_cli.services.data import fetch_data
from taxifare_cli.services.evaluation import evaluate_model
from taxifare_cli.services.training import train_model

HP = HyperParams(hidden_layers=(32, 16), epochs=8, patience=3, batch_size=128, seed=7)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    root = tmp_path_factory.mktemp("data")
    store = LocalStore(root)
    fetch_data("10k", store, SyntheticSource(seed=42, chunk_size=4_000, month_rows=2_000, all_rows=5_000))
    return store


def train(store: LocalStore, reg: LocalRegistry, **kw: object):  # type: ignore[no-untyped-def]
    args = {"train_name": "train_10k", "val_name": "val_10k", "chunk_size": 3_000, "hp": HP} | kw
    return train_model(store, reg, **args)  # type: ignore[arg-type]


def test_training_learns_far_better_than_the_mean(store: LocalStore, tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    result = train(store, reg)
    fares = np.concatenate([clean_chunk(c)[0]["fare_amount"].to_numpy() for c in store.read_chunks("val_10k", 5000)])
    mean_baseline = np.abs(fares - fares.mean()).mean()
    assert result.metrics["val_mae"] < 0.5 * mean_baseline
    assert result.metrics["train_rows"] > 9_000  # cleaning dropped only the dirty few percent
    assert result.train_report.rows_in == 10_000
    v = reg.get(ModelRef(version=result.version.version))
    assert v.data["train"]["checksum"] == store.describe("train_10k").checksum  # type: ignore[union-attr]
    assert v.params["hidden_layers"] == [32, 16]


def test_same_seed_same_model(store: LocalStore, tmp_path: Path) -> None:
    a = train(store, LocalRegistry(tmp_path / "a"), hp=HyperParams(hidden_layers=(16,), epochs=2, seed=3))
    b = train(store, LocalRegistry(tmp_path / "b"), hp=HyperParams(hidden_layers=(16,), epochs=2, seed=3))
    assert a.metrics["val_mae"] == pytest.approx(b.metrics["val_mae"], rel=1e-3)


def test_the_artifact_prices_raw_rides_by_itself(store: LocalStore, tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    result = train(store, reg, hp=HyperParams(hidden_layers=(16,), epochs=2))
    _, path = reg.fetch_artifact(ModelRef(version=result.version.version), tmp_path)
    model = FareModel.load(path)
    chunk = clean_chunk(next(store.read_chunks("val_10k", 500)))[0]
    preds = model.predict(chunk.drop(columns=["fare_amount", "key"]))
    assert preds.shape == (len(chunk),) and np.isfinite(preds).all()
    assert 2 < preds.mean() < 40


def test_continuing_from_production_starts_where_it_left_off(store: LocalStore, tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    first = train(store, reg)
    reg.promote(first.version.version, "Production", by="test")
    second = train(store, reg, hp=HyperParams(hidden_layers=(32, 16), epochs=1, seed=7), from_stage="Production")
    assert second.parent_version == first.version.version
    # One more epoch from a trained model cannot be as bad as one epoch from scratch would be.
    assert second.metrics["val_mae"] < first.metrics["val_mae"] * 1.15
    ev = evaluate_model(store, reg, ModelRef(stage="Production"), dataset="val_10k", chunk_size=2_500)
    assert ev.metrics["mae"] == pytest.approx(first.metrics["val_mae"], rel=1e-3)
    assert reg.get(ModelRef(version=first.version.version)).evaluations[-1]["dataset"] == "val_10k"
