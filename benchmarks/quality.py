"""6. Model quality: MAE on val_<size> of the product's model, a line on distance, the original network.

The product's model is trained by the CLI as a user would (`taxifare model train --size
100k`, default settings). All three are scored on the same rows: val_<size> as the
product's cleaning leaves them. The references see the same cleaned training rows.
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


def _references(run: Run, root: Path, part: str, epochs: int | None) -> dict[str, Any]:
    """The clean rows, and the MAE of the line on distance and of the original network."""
    train, val = _clean_frame(root, f"train_{part}"), _clean_frame(root, f"val_{part}")
    y_val = val["fare_amount"].to_numpy(dtype="float64")
    linear = _mae(y_val, reference_floors.LinearOnDistance().fit(train).predict(val))

    run.log("  original: ColumnTransformer features, dense 100-50-10 + BN + dropout, MSE, patience 2")
    n_jobs = -1 if run.sizes.reference_parallel else None
    x_tr, x_va = _original_features(train, n_jobs), _original_features(val, n_jobs)
    y_tr = train["fare_amount"].to_numpy(dtype="float32")
    net, original_epochs = reference_original.train_network(
        x_tr, y_tr, x_va, y_val.astype("float32"), max_epochs=epochs or 100
    )
    original = _mae(y_val, net.predict(x_va, batch_size=8192, verbose=0))
    details: dict[str, Any] = {
        "original_epochs_run": original_epochs,
        "mean_fare_val": float(y_val.mean()),
        "mae_of_predicting_the_mean": _mae(y_val, np.full_like(y_val, train["fare_amount"].mean())),
    }
    if not run.quick:
        # Diagnosis: the original network on the product's features (standardised) splits
        # the gap into what the features bring and what the network and loss bring.
        from taxifare_cli.core.features import compute_features

        f_tr, f_va = compute_features(train), compute_features(val)
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
    linear, original = references["linear"], references["original"]
    details: dict[str, Any] = {
        "train_rows": len(train),
        "val_rows": len(val),
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
