"""6. Model quality: MAE on val_<size> of the product's model, a line on distance, the original
network, and gradient boosting on the product's features.

The product's model is trained by the CLI as a user would (`taxifare model train --size
100k`, default settings). All four are scored on the same rows: val_<size> as the
product's cleaning leaves them. The references see the same cleaned training rows;
HistGradientBoostingRegressor(loss="absolute_error") sees the very feature matrix the
product trains on (core.features.compute_features of those rows), with a fixed seed.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import reference_floors, reference_original
from benchmarks.datasets import sized_store
from benchmarks.harness import Comparison, Record, Run, clean_env, run_process, shell_line, taxifare_exe

MAX_VS_LINEAR = 0.7
MAX_VS_BOOSTING = 0.98


def _clean_frame(root: Path, name: str) -> Any:
    import pandas as pd

    from taxifare_cli.adapters.storage.local import LocalStore
    from taxifare_cli.core.cleaning import clean_chunk

    return pd.concat(
        [clean_chunk(c)[0] for c in LocalStore(root).read_chunks(name, 100_000)], ignore_index=True
    )


def _mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, dtype=np.float64).ravel() - y)))


def _original_features(frame: Any, n_jobs: int | None) -> np.ndarray:
    return reference_original.preprocess_features(frame.drop(columns=["fare_amount"]), n_jobs)


def _boosting(run: Run, f_tr: np.ndarray, y_tr: np.ndarray, f_va: np.ndarray) -> tuple[np.ndarray, int]:
    """HistGradientBoostingRegressor(loss="absolute_error"), scikit-learn's defaults otherwise.

    Its own early stopping (on by default above 10,000 rows) holds out 10 % of the training
    rows, split by the fixed seed; val_<size> is never seen before scoring.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(loss="absolute_error", random_state=run.sizes.seed)
    model.fit(f_tr, y_tr)
    return model.predict(f_va), int(model.n_iter_)


def _references(run: Run, root: Path, part: str, epochs: int | None) -> dict[str, Any]:
    """The clean rows, and the MAE of the line on distance, of gradient boosting on the product's
    features, and of the original network."""
    from taxifare_cli.core.features import compute_features

    train, val = _clean_frame(root, f"train_{part}"), _clean_frame(root, f"val_{part}")
    y_val = val["fare_amount"].to_numpy(dtype="float64")
    linear = _mae(y_val, reference_floors.LinearOnDistance().fit(train).predict(val))

    f_tr, f_va = compute_features(train), compute_features(val)
    y_tr = train["fare_amount"].to_numpy(dtype="float32")
    run.log("  boosting: HistGradientBoostingRegressor(loss='absolute_error') on the product's features")
    boosting_pred, boosting_iters = _boosting(run, f_tr, y_tr, f_va)
    boosting = _mae(y_val, boosting_pred)

    run.log("  original: ColumnTransformer features, dense 100-50-10 + BN + dropout, MSE, patience 2")
    n_jobs = -1 if run.sizes.reference_parallel else None
    x_tr, x_va = _original_features(train, n_jobs), _original_features(val, n_jobs)
    net, original_epochs = reference_original.train_network(
        x_tr, y_tr, x_va, y_val.astype("float32"), max_epochs=epochs or 100
    )
    original = _mae(y_val, net.predict(x_va, batch_size=8192, verbose=0))
    details: dict[str, Any] = {
        "original_epochs_run": original_epochs,
        "mean_fare_val": float(y_val.mean()),
        "mae_of_predicting_the_mean": _mae(y_val, np.full_like(y_val, train["fare_amount"].mean())),
        "boosting_iterations": boosting_iters,
        "boosting_features": int(f_tr.shape[1]),
    }
    if not run.quick:
        # Diagnosis: the original network on the product's features (standardised) splits
        # the gap into what the features bring and what the network and loss bring.
        mu, sd = f_tr.mean(axis=0), np.maximum(f_tr.std(axis=0), 1e-3)
        net2, _ = reference_original.train_network(
            (f_tr - mu) / sd, y_tr, (f_va - mu) / sd, y_val.astype("float32")
        )
        details["original_network_on_product_features_mae"] = _mae(
            y_val, net2.predict((f_va - mu) / sd, batch_size=8192, verbose=0)
        )
    return {
        "train": train,
        "val": val,
        "y_val": y_val,
        "linear": linear,
        "original": original,
        "boosting": boosting,
        "details": details,
    }


def measure_part(run: Run, part: str, name: str, epochs: int | None) -> Record:
    from taxifare_cli.adapters.registry.local import LocalRegistry
    from taxifare_cli.artifact import FareModel
    from taxifare_cli.ports import ModelRef

    root = sized_store(run, part)
    registry = run.work / f"registry_{name}"
    shutil.rmtree(registry, ignore_errors=True)
    argv = [
        taxifare_exe(),
        "--json",
        "model",
        "train",
        "--size",
        part,
        *(["--epochs", str(epochs)] if epochs else []),
    ]
    env = clean_env(TAXIFARE_DATA__LOCAL_PATH=str(root), TAXIFARE_REGISTRY__LOCAL_PATH=str(registry))
    run.log(f"  product: {' '.join(argv[1:])} (beside the references: nothing here is timed)")
    with ThreadPoolExecutor(max_workers=1) as pool:
        training = pool.submit(lambda: run_process(argv, env=env, cwd=run.work).check())
        references = _references(run, root, part, epochs)
        trained = training.result()
    result = trained.json()
    train, val, y_val = references["train"], references["val"], references["y_val"]
    with tempfile.TemporaryDirectory(prefix="bench-quality-", dir=run.work) as tmp:
        _, artifact = LocalRegistry(registry).fetch_artifact(ModelRef(version=result["version"]), Path(tmp))
        ours = _mae(y_val, FareModel.load(artifact).predict(val))
    linear, original, boosting = references["linear"], references["original"], references["boosting"]
    details: dict[str, Any] = {
        "train_rows": len(train),
        "val_rows": len(val),
        # the rows the product's own cleaning kept (per its chunks): equal when both saw the same rows
        "product_train_rows": result.get("cleaning", {}).get("train", {}).get("rows_out"),
        "product_val_rows": result.get("cleaning", {}).get("val", {}).get("rows_out"),
        "product_epochs_run": result["epochs_run"],
        "product_best_epoch": result["best_epoch"],
        "product_val_mae_reported": result["metrics"]["val_mae"],
        "product_val_rmse_reported": result["metrics"]["val_rmse"],
        "product_train_wall_s": trained.wall_s,
        **references["details"],
    }
    return Record(
        name=name,
        title=f"Model quality: val MAE, train_{part} → val_{part}",
        value=ours,
        unit="$",
        comparisons=[
            Comparison(
                reference="linear fit on straight-line distance",
                reference_value=linear,
                ratio=ours / linear,
                target=f"ratio ≤ {MAX_VS_LINEAR:g}",
                met=ours / linear <= MAX_VS_LINEAR,
            ),
            Comparison(
                reference="original network and training (dense 100-50-10, BN, dropout, MSE, patience 2)",
                reference_value=original,
                ratio=ours / original,
                target="ratio < 1",
                met=ours < original,
            ),
            Comparison(
                reference='HistGradientBoostingRegressor(loss="absolute_error") on the same features and rows',
                reference_value=boosting,
                ratio=ours / boosting,
                target=f"ratio ≤ {MAX_VS_BOOSTING:g}",
                met=ours / boosting <= MAX_VS_BOOSTING,
            ),
        ],
        command=run.command(name),
        measured=shell_line(argv, {"TAXIFARE_DATA__LOCAL_PATH": "<data>"})
        + f", MAE on the {len(val):,} clean val rows",
        details=details,
    )


def measure(run: Run) -> Record:
    return measure_part(run, run.sizes.quality_part, "quality", run.sizes.quality_epochs)


def measure_1m(run: Run) -> Record:
    """Not part of the default run (about 15 minutes here): how the gap changes with 10x the data."""
    return measure_part(run, "10k" if run.quick else "1m", "quality_1m", run.sizes.quality_epochs)
