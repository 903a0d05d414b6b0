"""The fare network, its normalisation statistics, and the metrics it is judged by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import keras


# How the learning rate moves: "cosine" decays it over all the epochs to 1 % of its start
# (the default since 2026-12-03: the same MAE as "plateau" in about two thirds of the time);
# "plateau" keeps it until the val MAE stalls for 2 epochs, then cuts it to 30 %, which is
# how versions trained before then were made (`model reproduce` reads it from their record).
SCHEDULES: tuple[str, ...] = ("cosine", "plateau")
COSINE_FLOOR = 0.01


@dataclass(frozen=True)
class HyperParams:
    hidden_layers: tuple[int, ...] = (128, 64, 32)
    learning_rate: float = 2e-3
    dropout: float = 0.0
    batch_size: int = 512
    epochs: int = 20
    patience: int = 8
    seed: int = 42
    schedule: str = "cosine"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "hidden_layers": list(self.hidden_layers),
            "learning_rate": self.learning_rate,
            "dropout": self.dropout,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "patience": self.patience,
            "seed": self.seed,
            "schedule": self.schedule,
        }


class RunningStats:
    """Mean and variance of feature columns over chunks (Chan et al. pairwise update)."""

    def __init__(self, n_features: int) -> None:
        self.count = 0
        self.mean = np.zeros(n_features, dtype=np.float64)
        self.m2 = np.zeros(n_features, dtype=np.float64)
        self.target_sum = 0.0

    def update(self, x: np.ndarray, y: np.ndarray | None = None) -> None:
        n = x.shape[0]
        if n == 0:
            return
        xm = x.mean(axis=0, dtype=np.float64)
        xv = ((x - xm) ** 2).sum(axis=0, dtype=np.float64)
        total = self.count + n
        delta = xm - self.mean
        self.mean += delta * n / total
        self.m2 += xv + delta**2 * self.count * n / total
        self.count = total
        if y is not None:
            self.target_sum += float(y.sum(dtype=np.float64))

    def variance(self, floor: np.ndarray | float = 1e-6) -> np.ndarray:
        """Column variances, never below `floor` (see features.MIN_STD)."""
        var = self.m2 / max(self.count, 1)
        return np.maximum(var, floor)

    @property
    def target_mean(self) -> float:
        return self.target_sum / max(self.count, 1)


def build_model(
    n_features: int,
    hp: HyperParams,
    *,
    mean: np.ndarray,
    variance: np.ndarray,
    target_mean: float,
    steps_per_epoch: int | None = None,
) -> keras.Model:
    """Normalisation (fitted stats) -> dense ReLU layers -> one fare, compiled (see `compile_model`)."""
    import keras

    keras.utils.set_random_seed(hp.seed)
    inputs = keras.Input(shape=(n_features,), name="features")
    x = keras.layers.Normalization(mean=mean, variance=variance, name="normalize")(inputs)
    for i, units in enumerate(hp.hidden_layers):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        if hp.dropout:
            x = keras.layers.Dropout(hp.dropout, seed=hp.seed + i)(x)
    # Start from the mean fare so the first epochs learn structure, not the offset.
    out = keras.layers.Dense(1, name="fare", bias_initializer=keras.initializers.Constant(target_mean))(x)
    model = keras.Model(inputs, out, name="taxifare")
    compile_model(model, hp, steps_per_epoch)
    return model


def compile_model(model: keras.Model, hp: HyperParams, steps_per_epoch: int | None = None) -> None:
    """Adam, at a rate that decays over `hp.epochs` epochs of `steps_per_epoch` steps when the
    schedule is "cosine" (constant otherwise: "plateau" is a callback of the training)."""
    import keras

    rate: Any = hp.learning_rate
    if hp.schedule == "cosine" and steps_per_epoch:
        rate = keras.optimizers.schedules.CosineDecay(
            hp.learning_rate, decay_steps=hp.epochs * steps_per_epoch, alpha=COSINE_FLOOR
        )
    # Huber with a small delta: close to absolute error (the MAE we are judged by),
    # and robust to the long tail of real fares (tolls, waiting, odd meters).
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=rate),
        loss=keras.losses.Huber(delta=1.0),
        metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
    )


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    err = np.asarray(y_pred, dtype=np.float64).ravel() - np.asarray(y_true, dtype=np.float64).ravel()
    if err.size == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "rows": 0}
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "rows": int(err.size),
    }


class MetricAccumulator:
    """MAE and RMSE over chunks without keeping predictions."""

    def __init__(self) -> None:
        self.n = 0
        self.abs_sum = 0.0
        self.sq_sum = 0.0

    def update(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        err = np.asarray(y_pred, dtype=np.float64).ravel() - np.asarray(y_true, dtype=np.float64).ravel()
        self.n += err.size
        self.abs_sum += float(np.abs(err).sum())
        self.sq_sum += float((err**2).sum())

    def result(self) -> dict[str, float]:
        if self.n == 0:
            return {"mae": float("nan"), "rmse": float("nan"), "rows": 0}
        return {"mae": self.abs_sum / self.n, "rmse": (self.sq_sum / self.n) ** 0.5, "rows": self.n}
