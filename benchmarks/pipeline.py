"""4. Training input: rows/s through an epoch streamed from disk vs `model.fit` on arrays in memory.

Both fit the product's network (`core.model.build_model`, default hyper-parameters) on
the same clean rows. The streaming side is what `train_model` feeds Keras: the feature
file written by `build_feature_file`, read back block by block by the training dataset.
Epochs alternate between the two (one each per round, the first round being warm-up),
so that the machine's noise falls on both alike.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import reference_floors
from benchmarks.datasets import rows_store
from benchmarks.harness import Comparison, Record, Run, median

MIN_RATIO = 0.9  # streamed epochs within 10 % of in-memory fit


def _epoch_timer() -> Any:
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.seconds.append(time.perf_counter() - self._t)

    return EpochTimer()


def measure(run: Run) -> Record:
    from taxifare_cli.adapters.storage.local import LocalStore
    from taxifare_cli.core.features import N_FEATURES, min_variance
    from taxifare_cli.core.model import HyperParams, RunningStats, build_model
    from taxifare_cli.services import training
    from taxifare_cli.services.feature_cache import build_feature_file

    s = run.sizes
    hp = HyperParams(epochs=s.pipeline_epochs)
    store = LocalStore(rows_store(run, s.pipeline_rows, s.memory_val_rows))
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-", dir=run.work) as tmp:
        stats = RunningStats(N_FEATURES)
        ff = build_feature_file(
            store, "train_all", Path(tmp) / "train.f32", chunk_size=s.chunk_size, stats=stats, seed=hp.seed
        )

        def network() -> Any:
            return build_model(
                N_FEATURES,
                hp,
                mean=stats.mean,
                variance=stats.variance(min_variance()),
                target_mean=stats.target_mean,
            )

        x = np.empty((ff.rows, N_FEATURES), dtype=np.float32)
        y = np.empty(ff.rows, dtype=np.float32)
        at = 0
        for xb, yb in ff.blocks():
            x[at : at + len(yb)], y[at : at + len(yb)] = xb, yb
            at += len(yb)
        streaming_net, memory_net = network(), network()
        streamed, in_memory = _epoch_timer(), _epoch_timer()
        # One epoch of each in turn, so the machine's noise falls on both alike; round 1 is warm-up.
        for round_ in range(1, s.pipeline_epochs + 1):
            run.log(
                f"  round {round_}/{s.pipeline_epochs}: one epoch streamed, one in memory ({ff.rows:,} rows)"
            )
            streaming_net.fit(
                training._dataset(ff, hp.batch_size, seed=hp.seed + round_),  # what train_model fits on
                epochs=1,
                callbacks=[streamed],
                shuffle=False,
                verbose=0,
            )
            reference_floors.fit_in_memory(
                memory_net, x, y, batch_size=hp.batch_size, epochs=1, callbacks=[in_memory]
            )
    rows = ff.rows
    ours = [rows / t for t in streamed.seconds[1:]]
    ref = [rows / t for t in in_memory.seconds[1:]]
    paired = [m / t for t, m in zip(streamed.seconds[1:], in_memory.seconds[1:], strict=True)]
    value, ref_v = median(ours), median(ref)
    return Record(
        name="pipeline",
        title="Training input: rows/s streamed from disk",
        value=value,
        unit="rows/s",
        comparisons=[
            Comparison(
                reference="model.fit on the same rows in memory as arrays",
                reference_value=ref_v,
                ratio=value / ref_v,
                target=f"ratio ≥ {MIN_RATIO:g}",
                met=value / ref_v >= MIN_RATIO,
            )
        ],
        command=run.command("pipeline"),
        measured=(
            f"in-process: fit on services.training._dataset(feature file) vs model.fit(x, y), "
            f"{rows:,} rows, batch {hp.batch_size}, network {list(hp.hidden_layers)}; "
            f"{s.pipeline_epochs} alternating epochs of each, median of the last {s.pipeline_epochs - 1}"
        ),
        details={
            "rows": rows,
            "epoch_seconds": streamed.seconds,
            "reference_epoch_seconds": in_memory.seconds,
            "batch_size": hp.batch_size,
            "paired_ratios": paired,
        },
    )
