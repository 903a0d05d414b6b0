"""5. Batch prediction: `taxifare model predict --input` (CSV in, CSV out) vs Keras `predict` on features."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks import memory, reference_floors
from benchmarks.datasets import rows_store
from benchmarks.harness import (
    Comparison,
    Record,
    Run,
    clean_env,
    median,
    run_process,
    shell_line,
    taxifare_exe,
    timed,
)

MIN_RATIO = 0.5


def latest_version(run: Run) -> int:
    """The newest model in the run's registry; trains a one-epoch one if there is none."""
    from taxifare_cli.adapters.registry.local import LocalRegistry

    versions = LocalRegistry(run.work / "registry").list()
    if versions:
        return max(v.version for v in versions)
    rows = min(run.sizes.memory_rows)
    run.log(f"  no model yet: training one epoch on {rows:,} rows")
    env = clean_env(**memory.train_env(run, rows))
    return int(run_process(memory.train_argv(), env=env, cwd=run.work).check().json()["version"])


def predict_argv(input_path: Path, output_path: Path, version: int) -> list[str]:
    return [
        taxifare_exe(),
        "--quiet",
        "model",
        "predict",
        "--input",
        str(input_path),
        "--output",
        str(output_path),
        "--version",
        str(version),
    ]


def measure(run: Run) -> Record:
    from taxifare_cli.adapters.registry.local import LocalRegistry
    from taxifare_cli.adapters.storage.local import LocalStore
    from taxifare_cli.artifact import FareModel
    from taxifare_cli.core.cleaning import clean_chunk
    from taxifare_cli.core.features import compute_features
    from taxifare_cli.ports import ModelRef

    s = run.sizes
    version = latest_version(run)
    root = rows_store(run, s.predict_rows, s.memory_val_rows)
    source = root / "train_all.csv"
    out = run.work / "predictions.csv"
    env = clean_env(
        TAXIFARE_REGISTRY__LOCAL_PATH=str(run.work / "registry"), TAXIFARE_DATA__CHUNK_SIZE=str(s.chunk_size)
    )
    argv = predict_argv(source, out, version)
    run.log(f"  taxifare model predict --input ({s.predict_rows:,} rows) x{s.predict_repeats}")
    walls = []
    for _ in range(s.predict_repeats):
        walls.append(run_process(argv, env=env, cwd=run.work).check().wall_s)
    with out.open("rb") as f:
        written = sum(1 for _ in f) - 1
    details: dict[str, object] = {
        "rows": s.predict_rows,
        "rows_written": written,
        "samples_s": walls,
        "model_version": version,
    }
    if not run.quick:
        # The fixed cost of one call (start-up, TensorFlow import, model load), from a one-ride file.
        one = run.work / "one_ride.csv"
        with source.open() as f:
            one.write_text(f.readline() + f.readline())
        fixed = [
            run_process(predict_argv(one, run.work / "one_pred.csv", version), env=env, cwd=run.work)
            .check()
            .wall_s
            for _ in range(2)
        ]
        details["fixed_cost_s"] = median(fixed)

    run.log("  reference: keras predict on the already-computed features")
    with tempfile.TemporaryDirectory(prefix="bench-predict-", dir=run.work) as tmp:
        _, artifact = LocalRegistry(run.work / "registry").fetch_artifact(
            ModelRef(version=version), Path(tmp)
        )
        keras_model = FareModel.load(artifact).keras_network()
        import numpy as np

        parts = [
            compute_features(clean_chunk(c, require_fare=False, dedupe=False)[0])
            for c in LocalStore(root).read_chunks("train_all", s.chunk_size)
        ]
        x = np.concatenate(parts)
        ref_times, _ = timed(
            lambda: reference_floors.keras_predict(keras_model, x), s.predict_repeats, warmup=1
        )
    ours = s.predict_rows / median(walls)
    ref = len(x) / median(ref_times)
    details.update(reference_rows=len(x), reference_samples_s=ref_times)
    return Record(
        name="prediction",
        title=f"Batch prediction, {s.predict_rows:,} rows CSV to CSV",
        value=ours,
        unit="rows/s",
        comparisons=[
            Comparison(
                reference=f"keras Model.predict on the features (batch {reference_floors.PREDICT_BATCH})",
                reference_value=ref,
                ratio=ours / ref,
                target=f"ratio ≥ {MIN_RATIO:g}",
                met=ours / ref >= MIN_RATIO,
            )
        ],
        command=run.command("prediction"),
        measured=(
            shell_line(
                [
                    taxifare_exe(),
                    "model",
                    "predict",
                    "--input",
                    "rides.csv",
                    "--output",
                    "preds.csv",
                    "--version",
                    "N",
                ]
            )
            + f", whole process wall time, median of {s.predict_repeats}"
        ),
        details=details,
    )
