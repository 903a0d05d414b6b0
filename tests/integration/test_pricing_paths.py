"""The three ways a ride is priced agree to the cent: numpy, Keras and the MLflow pyfunc.

`FareModel` prices with the numpy forward pass (`core.network`, from `weights.npz`);
the Keras model it was trained as (`model.keras`) and the MLflow pyfunc must give the
same fares, in cents. The pyfunc runs `FareModel.price` itself, so it must agree exactly.
Keras multiplies matrices in another summation order, so its float32 outputs may differ
from numpy's by a few ulps (|a - b| < 1e-4); a fare whose value lies within those ulps of
a half cent could then round to the neighbouring cent (numpy's own paths re-price such
fares exactly, `core.cents`; Keras does not). At most 0.1 % of rows may do so (in
practice none or one in a few thousand); every other fare must be identical to the
cent. Also here: an artifact saved before `weights.npz` existed loads and prices alike;
a few rides priced without pandas (`FareModel.price_few`: one ride from the command line,
a web request) get exactly the fares the file path gives, alone or together; and pricing
a ride from the command line imports neither TensorFlow, Keras nor pandas.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from taxifare_cli.artifact import MODEL_FILE, WEIGHTS_FILE, FareModel
from taxifare_cli.core.cents import in_cents
from taxifare_cli.core.cleaning import clean_chunk
from taxifare_cli.core.features import N_FEATURES, compute_features, min_variance
from taxifare_cli.core.few_rides import MIN_FARE, RideBatch
from taxifare_cli.core.model import HyperParams, build_model
from taxifare_cli.core.pricing import price_rides
from taxifare_cli.core.simulator import iter_simulated_dataset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

N_RIDES = 5_000  # several forward batches (core.network.FORWARD_BATCH)
MAX_CENT_FLIPS = 0.001  # share of rows allowed to round to the neighbouring cent (see above)


def clean_rides(name: str, rows: int, seed: int) -> pd.DataFrame:
    chunk = next(iter_simulated_dataset(name, chunk_size=rows, seed=seed, rows=rows))
    clean, _ = clean_chunk(chunk, require_fare=True, dedupe=False)
    return clean.reset_index(drop=True)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small network really trained (a few epochs) on simulated rides, saved as an artifact."""
    train = clean_rides("train_100k", 20_000, seed=5)
    x = compute_features(train)
    y = train["fare_amount"].to_numpy(dtype=np.float32)
    hp = HyperParams(hidden_layers=(64, 32, 16), dropout=0.1, epochs=3, batch_size=256, seed=11)
    network = build_model(
        N_FEATURES,
        hp,
        mean=x.mean(axis=0, dtype=np.float64),
        variance=np.maximum(x.var(axis=0, dtype=np.float64), min_variance()),
        target_mean=float(y.mean()),
    )
    network.fit(x, y, epochs=hp.epochs, batch_size=hp.batch_size, verbose=0)
    directory = tmp_path_factory.mktemp("priced") / "artifact"
    return FareModel.new(network, trained_on="train_100k").save(directory)


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    """Priceable rides, typed as the CSV reader types them."""
    return clean_rides("val_10k", N_RIDES + 500, seed=6).head(N_RIDES).drop(columns=["fare_amount"])


@pytest.fixture(scope="module")
def rides(clean: pd.DataFrame) -> pd.DataFrame:
    """The same rides as a raw file has them: times as `2015-01-15 08:30:00 UTC` text."""
    return clean.assign(pickup_datetime=clean["pickup_datetime"].dt.strftime("%Y-%m-%d %H:%M:%S UTC"))


def keras_fares(artifact_dir: Path, rides: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Fares through the same pricing path, with the saved Keras model as the forward pass;
    and the network's outputs before rounding (every ride here is priceable)."""
    import keras

    model = keras.models.load_model(artifact_dir / MODEL_FILE, compile=False)
    outputs: list[np.ndarray] = []

    def forward(x: np.ndarray) -> np.ndarray:
        outputs.append(np.asarray(model(x, training=False)).ravel())
        return outputs[-1]

    fares = price_rides(forward, rides).fares
    return fares, np.concatenate(outputs)


def pyfunc_fares(artifact_dir: Path, rides: pd.DataFrame) -> np.ndarray:
    """Fares from the MLflow pyfunc class, loaded as MLflow loads it (artifacts in a context)."""
    pytest.importorskip("mlflow")
    from taxifare_cli.adapters.registry.mlflow import MODEL_ARTIFACT
    from taxifare_cli.adapters.registry.mlflow.pyfunc import pyfunc_model_class

    pyfunc: Any = pyfunc_model_class()()
    pyfunc.load_context(SimpleNamespace(artifacts={MODEL_ARTIFACT: str(artifact_dir)}))
    out = pyfunc.predict(None, rides)
    assert list(out.index) == list(rides.index)
    return np.asarray(out, dtype=np.float64)


def assert_same_to_the_cent(ours: np.ndarray, keras: np.ndarray, keras_raw: np.ndarray) -> None:
    assert (
        ours.shape == keras.shape == keras_raw.shape and np.isfinite(ours).all() and np.isfinite(keras).all()
    )
    np.testing.assert_array_equal(ours, np.round(ours, 2))  # fares come in cents
    flips = ours != keras
    assert flips.sum() <= MAX_CENT_FLIPS * len(ours), f"{flips.sum()} of {len(ours)} fares differ by a cent"
    assert np.abs(ours - keras).max() < 0.0101
    # Those that differ are the ones whose Keras output lies within float32 noise of a half cent.
    raw = keras_raw[flips].astype(np.float64)
    assert (np.abs(np.abs(np.round(raw * 100) - raw * 100) - 0.5) < 0.01).all()


def test_numpy_keras_and_pyfunc_agree_to_the_cent(artifact: Path, rides: pd.DataFrame) -> None:
    assert (artifact / WEIGHTS_FILE).is_file() and (artifact / MODEL_FILE).is_file()
    ours = FareModel.load(artifact).price(rides).fares

    assert np.ptp(ours) > 10  # a trained model: fares spread over the city, not one number
    assert_same_to_the_cent(ours, *keras_fares(artifact, rides))
    # The pyfunc prices through FareModel.price: the very same numbers.
    np.testing.assert_array_equal(pyfunc_fares(artifact, rides), ours)


def test_an_artifact_saved_before_weights_npz_still_loads_and_prices_alike(
    artifact: Path, rides: pd.DataFrame, tmp_path: Path
) -> None:
    old = shutil.copytree(artifact, tmp_path / "old")
    (old / WEIGHTS_FILE).unlink()
    model = FareModel.load(old)  # reads model.keras (Keras imported) and takes its numbers

    np.testing.assert_array_equal(model.price(rides).fares, FareModel.load(artifact).price(rides).fares)
    assert model.keras_network() is model.keras_network()  # loaded once, kept for training on
    # Saving it again writes the weights file: the next load needs no Keras.
    again = model.save(tmp_path / "again")
    assert (again / WEIGHTS_FILE).is_file()
    np.testing.assert_array_equal(FareModel.load(again).price(rides).fares, model.price(rides).fares)


def test_the_keras_network_is_there_for_training_on(artifact: Path, clean: pd.DataFrame) -> None:
    model = FareModel.load(artifact)
    keras_model = model.keras_network()  # what fine-tuning trains on: loaded from model.keras now
    x = compute_features(clean)
    np.testing.assert_allclose(
        np.asarray(keras_model(x, training=False)).ravel(), model.predict_features(x), rtol=1e-5, atol=1e-4
    )
    # Pricing is the network's output, floored at the flag drop and rounded to the cent.
    np.testing.assert_array_equal(
        in_cents(np.maximum(model.predict(clean), MIN_FARE)), model.price(clean).fares
    )


ONE_BY_ONE = 600  # rides priced alone, each through its own forward pass


def test_a_few_rides_priced_without_pandas_get_the_file_paths_fares(
    artifact: Path, rides: pd.DataFrame
) -> None:
    model = FareModel.load(artifact)
    batch = model.price(rides).fares  # the file path: DataFrame, clean_chunk, compute_features
    records = rides.drop(columns=["key"], errors="ignore").to_dict(orient="records")

    together = model.price_few(RideBatch.from_records(records))
    assert together.reasons == [None] * len(records)
    np.testing.assert_array_equal(together.fares, batch)  # every bit, so every cent
    alone = [model.price_few(RideBatch.from_records([r])).fares[0] for r in records[:ONE_BY_ONE]]
    np.testing.assert_array_equal(alone, batch[:ONE_BY_ONE])
    assert len(np.unique(np.round(batch[:ONE_BY_ONE], 2))) > ONE_BY_ONE // 4  # not one price for all


# The CLI as `taxifare model predict --ride` runs it; then which heavy modules it imported.
CLI_CODE = """
import json, sys
from taxifare_cli.cli.main import run
try:
    run(sys.argv[1:])
except SystemExit as e:
    code = e.code
heavy = [m for m in ("tensorflow", "keras", "pandas") if m in sys.modules]
print(json.dumps({"exit": code, "heavy": heavy}))
"""


def test_pricing_a_ride_from_the_cli_imports_neither_tensorflow_keras_nor_pandas(
    artifact: Path, rides: pd.DataFrame, home: Path
) -> None:
    from taxifare_cli.adapters.registry.local import LocalRegistry
    from taxifare_cli.ports import TrainingRecord

    record = TrainingRecord(
        params={"hidden_layers": [64, 32, 16]},
        metrics={"val_mae": 2.0},
        data={},
        history={},
        package_version="test",
        git_commit=None,
    )
    version = LocalRegistry(home / "registry").save(artifact, record).version
    ride = rides.iloc[:1]
    fields = [f"{c}={ride[c].iloc[0]}" for c in ride.columns if c != "key"]
    argv = ["--json", "model", "predict", "--version", str(version)]
    for field in fields:
        argv += ["--ride", field]

    out = subprocess.run(
        [sys.executable, "-c", CLI_CODE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),  # `home` points the registry at home / "registry"
        check=False,
    )
    lines = out.stdout.strip().splitlines()
    assert lines, out.stderr
    tail = json.loads(lines[-1])
    assert tail["exit"] in (0, None), out.stderr
    assert tail["heavy"] == [], f"pricing one ride imported {tail['heavy']}"
    result = json.loads("\n".join(lines[:-1]))
    expected = FareModel.load(artifact).price(ride).fares[0]
    assert result["fares"] == [round(float(expected), 2)]
