"""The floors and baselines the product is compared with, besides the original project.

- a bare `pyarrow.csv.read_csv` of a file: the least any CSV-to-features path can cost;
- `model.fit` on rows already in memory as arrays: the fastest a training epoch can feed;
- the Keras model's `predict` on already-computed features: the fastest batch pricing;
- a least-squares line on straight-line distance: the model a person writes first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

PREDICT_BATCH = 8192  # Keras' default of 32 would make the reference needlessly slow


def bare_pyarrow_read(path: Path) -> int:
    import pyarrow.csv as pacsv

    return int(pacsv.read_csv(path).num_rows)


def fit_in_memory(
    model: Any, x: np.ndarray, y: np.ndarray, *, batch_size: int, epochs: int, callbacks: list[Any]
) -> None:
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=callbacks)


def keras_predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0)).ravel()


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def distance(frame: Any) -> np.ndarray:
    return haversine_km(
        frame["pickup_latitude"].to_numpy(dtype="float64"),
        frame["pickup_longitude"].to_numpy(dtype="float64"),
        frame["dropoff_latitude"].to_numpy(dtype="float64"),
        frame["dropoff_longitude"].to_numpy(dtype="float64"),
    )


class LinearOnDistance:
    """fare = a + b * straight-line km, by least squares."""

    def fit(self, frame: Any) -> LinearOnDistance:
        d = distance(frame)
        design = np.column_stack([np.ones_like(d), d])
        self.coef = np.linalg.lstsq(design, frame["fare_amount"].to_numpy(dtype="float64"), rcond=None)[0]
        return self

    def predict(self, frame: Any) -> np.ndarray:
        return np.asarray(self.coef[0] + self.coef[1] * distance(frame))
