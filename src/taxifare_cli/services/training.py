"""train_model: stream a dataset, fit the network, register the version."""

from __future__ import annotations

import contextlib
import itertools
import math
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taxifare_cli import __version__
from taxifare_cli.artifact import FareModel
from taxifare_cli.core.cleaning import CleaningReport
from taxifare_cli.core.features import N_FEATURES, min_variance
from taxifare_cli.core.model import HyperParams, MetricAccumulator, RunningStats, build_model, compile_model
from taxifare_cli.errors import STOP, DataError
from taxifare_cli.files.atomic import ensure_free_space
from taxifare_cli.ports import (
    SILENT,
    DataStore,
    ModelRef,
    ModelRegistry,
    ModelVersion,
    Progress,
    Stage,
    TrainingRecord,
)
from taxifare_cli.services.feature_cache import FeatureFile, build_feature_file

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from taxifare_cli.services.model_record import Publication

DEFAULT_MIN_ROWS = 100  # training.min_rows: fewer clean rows fit noise, and the version would be registered
_FEATURE_ROW_BYTES = (N_FEATURES + 1) * 4  # one float32 row of the feature file (features, target)


@dataclass
class TrainResult:
    version: ModelVersion
    metrics: dict[str, float]
    epochs_run: int
    best_epoch: int
    train_report: CleaningReport
    val_report: CleaningReport
    duration_s: float
    parent_version: int | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    published: Publication | None = None  # the record's copy in the bucket (filled by the app)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.version,
            "stage": self.version.stage,
            "metrics": self.metrics,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "parent_version": self.parent_version,
            "duration_s": round(self.duration_s, 2),
            "cleaning": {"train": self.train_report.as_dict(), "val": self.val_report.as_dict()},
            "data": self.version.data,
            "published": self.published.as_dict() if self.published else None,
        }


def git_commit() -> str | None:
    """The commit of the source tree this runs from, when it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _dataset(ff: FeatureFile, batch_size: int, *, seed: int | None) -> tf.data.Dataset:
    """Batches read from the feature file; reshuffled every epoch when seeded."""
    import tensorflow as tf

    epoch = [0]

    def gen() -> Any:
        rng = np.random.default_rng([seed, epoch[0]]) if seed is not None else None
        epoch[0] += 1
        for x, y in ff.blocks(rng=rng):
            for i in range(0, len(y), batch_size):
                yield x[i : i + batch_size], y[i : i + batch_size]

    spec = (
        tf.TensorSpec(shape=(None, N_FEATURES), dtype=tf.float32),
        tf.TensorSpec(shape=(None,), dtype=tf.float32),
    )
    batches = sum(math.ceil(n / batch_size) for n in ff.block_sizes())
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
    # A known length lets Keras show progress and not warn that the data "ran out".
    return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(4)


def evaluate_feature_file(model: FareModel, ff: FeatureFile) -> dict[str, float]:
    acc = MetricAccumulator()
    for x, y in ff.blocks():
        acc.update(y, model.predict_features(x))
    return acc.result()


class _EpochProgress:
    """A Keras callback that forwards epochs to a Progress sink."""

    def __new__(cls, progress: Progress, epochs: int) -> keras.callbacks.Callback:
        import keras

        class Callback(keras.callbacks.Callback):
            def on_train_begin(self, logs: Any = None) -> None:
                progress.start("training", total=epochs, unit="epochs")

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                logs = logs if logs is not None else {}
                # The rate the epoch ended at, into the history (a schedule does not log it);
                # none for a rate float32 cannot hold (a caller's 1e300, refused as diverged).
                with contextlib.suppress(ValueError, OverflowError):
                    rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                    logs.setdefault("learning_rate", rate)
                progress.advance(
                    "training",
                    1,
                    info=f"mae {logs.get('mae', math.nan):.2f} val_mae {logs.get('val_mae', math.nan):.2f}",
                )

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                STOP.check()  # a stop asked of the process while this trains on another thread

            def on_train_end(self, logs: Any = None) -> None:
                progress.finish("training")

        return Callback()


def train_model(
    store: DataStore,
    registry: ModelRegistry,
    *,
    train_name: str,
    val_name: str,
    chunk_size: int,
    hp: HyperParams,
    from_stage: Stage | None = None,
    progress: Progress = SILENT,
    work_dir: Path | None = None,
    min_rows: int = DEFAULT_MIN_ROWS,
) -> TrainResult:
    """Fit on `train_name`, early-stop on `val_name`, register a new version.

    Refused before any work when a disk could not hold the feature files or the new
    version (DiskFullError), and after cleaning when fewer than `min_rows` rows are
    left (DataError); a training that diverged (a loss of NaN) registers nothing.
    """
    started = time.monotonic()
    parent: FareModel | None = None
    parent_version: ModelVersion | None = None
    _check_space(store, registry, train_name, val_name, hp, work_dir)
    with tempfile.TemporaryDirectory(prefix="taxifare-train-", dir=work_dir) as tmp:
        tmpdir = Path(tmp)
        if from_stage is not None:
            parent_version, parent_dir = registry.fetch_artifact(
                ModelRef(stage=from_stage), tmpdir / "parent"
            )
            parent = FareModel.load(parent_dir)

        stats = RunningStats(N_FEATURES)
        train_ff = build_feature_file(
            store,
            train_name,
            tmpdir / "train.f32",
            chunk_size=chunk_size,
            stats=stats,
            seed=hp.seed,
            progress=progress,
        )
        if train_ff.rows == 0:
            raise DataError(
                f"{train_name} has no usable rows after cleaning ({_dropped(train_ff.report)})",
                hint="check the file, or fetch it again",
            )
        val_ff = build_feature_file(
            store, val_name, tmpdir / "val.f32", chunk_size=chunk_size, seed=hp.seed, progress=progress
        )
        if val_ff.rows == 0:
            raise DataError(f"{val_name} has no usable rows after cleaning ({_dropped(val_ff.report)})")
        if train_ff.rows < min_rows:
            raise DataError(
                f"{train_name} has {train_ff.rows} clean row(s), fewer than the {min_rows} needed to train "
                f"({_dropped(train_ff.report)}); nothing was registered",
                hint="train on a larger dataset, or lower training.min_rows (TAXIFARE_TRAINING__MIN_ROWS)",
            )

        prepared = time.monotonic()  # read, cleaned and turned into features: the data's part
        import keras

        # The parent's Keras network (FareModel.load reads only its numpy weights), loaded
        # before seeding, as it always was.
        parent_network = parent.keras_network() if parent is not None else None
        keras.utils.set_random_seed(hp.seed)
        steps_per_epoch = sum(math.ceil(n / hp.batch_size) for n in train_ff.block_sizes())
        if parent_network is not None:
            network = parent_network
            compile_model(network, hp, steps_per_epoch)
        else:
            network = build_model(
                N_FEATURES,
                hp,
                mean=stats.mean,
                variance=stats.variance(min_variance()),
                target_mean=stats.target_mean,
                steps_per_epoch=steps_per_epoch,
            )
        # Without a smaller step late on, more data buys almost nothing: the cosine schedule
        # decays the rate inside the optimizer; the plateau one (older versions) cuts it here.
        schedule = (
            [keras.callbacks.ReduceLROnPlateau(monitor="val_mae", factor=0.3, patience=2, min_lr=1e-5)]
            if hp.schedule == "plateau"
            else []
        )
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_mae", patience=hp.patience, restore_best_weights=True, min_delta=1e-3
        )
        fitting = time.monotonic()
        fit = network.fit(
            _dataset(train_ff, hp.batch_size, seed=hp.seed),
            validation_data=_dataset(val_ff, 8192, seed=None),
            epochs=hp.epochs,
            callbacks=[
                stopper,
                *schedule,
                _EpochProgress(progress, hp.epochs),
                keras.callbacks.TerminateOnNaN(),  # a diverged fit stops at once; refused below
            ],
            shuffle=False,  # the dataset shuffles itself, block by block
            verbose=0,
        )
        fitted = time.monotonic()
        history = {k: [float(v) for v in vs] for k, vs in fit.history.items()}
        epochs_run = len(history.get("loss", []))
        val_mae = history.get("val_mae", [math.nan])
        losses = history.get("loss", [])
        if not losses or not math.isfinite(losses[-1]) or not np.isfinite(val_mae).any():
            raise _diverged(hp, epochs_run)
        best_epoch = int(np.nanargmin(val_mae)) + 1

        model = FareModel.new(network, trained_on=train_name)
        metrics = {f"val_{k}": v for k, v in evaluate_feature_file(model, val_ff).items() if k != "rows"}
        if not all(math.isfinite(v) for v in metrics.values()):
            raise _diverged(hp, epochs_run)
        metrics.update(
            train_rows=float(train_ff.rows),
            val_rows=float(val_ff.rows),
            epochs_run=float(epochs_run),
            best_epoch=float(best_epoch),
            duration_s=round(time.monotonic() - started, 2),
            # Where the time went: building both feature files, and the epochs (validation included;
            # importing TensorFlow and building the network are in neither).
            prepare_s=round(prepared - started, 2),
            fit_s=round(fitted - fitting, 2),
        )
        params = {
            **hp.as_dict(),
            "chunk_size": chunk_size,
            "train_dataset": train_name,
            "val_dataset": val_name,
        }
        data = {
            "train": _seen(store, train_name, train_ff),
            "val": _seen(store, val_name, val_ff),
        }
        artifact_dir = model.save(tmpdir / "artifact")
        record = TrainingRecord(
            params=params,
            metrics=metrics,
            data=data,
            history=history,
            package_version=__version__,
            git_commit=git_commit(),
            parent_version=parent_version.version if parent_version else None,
            val_predictions=_val_sample(model, val_ff),
        )
        STOP.check()  # the last moment a stop leaves the registry as it was
        version = registry.save(artifact_dir, record)
    return TrainResult(
        version=version,
        metrics=metrics,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        train_report=train_ff.report,
        val_report=val_ff.report,
        duration_s=time.monotonic() - started,
        parent_version=record.parent_version,
        history=history,
    )


def _val_sample(model: FareModel, ff: FeatureFile, n: int = 5000) -> tuple[list[float], list[float]]:
    for x, y in ff.blocks(block_rows=n):
        return y.tolist(), model.predict_features(x).astype(float).tolist()
    return [], []


def _seen(store: DataStore, name: str, ff: FeatureFile) -> dict[str, Any]:
    info = store.describe(name)
    return {
        "dataset": name,
        "source": store.kind,
        "location": info.location if info else None,
        "checksum": info.checksum if info else None,
        "rows_read": ff.report.rows_in,
        "rows_used": ff.rows,
    }


def _dropped(report: CleaningReport) -> str:
    if not report.rows_in:
        return "the file has no rows"
    parts = [f"{n} {reason}" for reason, n in report.dropped.most_common()]
    if not parts:
        return f"{report.rows_in} read, none dropped"
    return f"{report.rows_in} read; dropped " + ", ".join(parts)


def _diverged(hp: HyperParams, epochs_run: int) -> DataError:
    return DataError(
        f"training diverged (the loss became NaN or infinite by epoch {epochs_run} at learning rate "
        f"{hp.learning_rate:g}); nothing was registered",
        hint="lower --learning-rate (training.learning_rate), e.g. 1e-3",
    )


def _check_space(
    store: DataStore,
    registry: ModelRegistry,
    train_name: str,
    val_name: str,
    hp: HyperParams,
    work_dir: Path | None,
) -> None:
    """A full disk found now, not after an hour of training: the feature files, then the new version."""
    rows = 0
    for name in (train_name, val_name):
        info = store.describe(name)
        rows += info.rows or 0 if info else 0
    ensure_free_space(Path(work_dir or tempfile.gettempdir()), rows * _FEATURE_ROW_BYTES, "the feature files")
    # Registries that can tell (the local one) check their disk for a version of this size.
    check = getattr(registry, "check_space", None)
    if callable(check):
        check(_version_bytes(hp))


def _version_bytes(hp: HyperParams) -> int:
    """About what a saved version takes: weights (Keras with Adam's two moments, and numpy) and plots."""
    units = [N_FEATURES, *hp.hidden_layers, 1]
    weights = sum((a + 1) * b for a, b in itertools.pairwise(units))
    return weights * 4 * 4 + 2_000_000
