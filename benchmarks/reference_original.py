"""The original Le Wagon taxifare project's way, rewritten here as the reference to beat.

Preprocessing as the original `ml_logic` does it: `pandas.read_csv` in chunks with
`parse_dates`, `clean_data` with boolean filters, then a scikit-learn
`ColumnTransformer` (n_jobs=-1, as in the original) that min-max scales the passenger
count, one-hot encodes weekday and month, computes haversine and "manhattan" distances,
and geohashes both ends of every ride one row at a time (`DataFrame.apply(axis=1)`),
one-hot encoding the 20 commonest precision-5 districts. Times are converted to New
York time as the original does (the product knows they are already local).

The model is the original network and training settings: dense 100-50-10 with batch
normalisation and dropout, Adam 1e-3, mean squared error, batch 256, early stopping on
the validation loss with patience 2 (restoring the best weights).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

GEOHASH_ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"
# The original's 20 commonest precision-5 districts (about 99% of NYC pickups/dropoffs).
GEOHASH_DISTRICTS = [
    "dr5ru", "dr5rs", "dr5rv", "dr72h", "dr72j", "dr5re", "dr5rk", "dr5rz", "dr5ry", "dr5rt",
    "dr5rg", "dr5x1", "dr5x0", "dr72m", "dr5rm", "dr5rx", "dr5x2", "dr5rw", "dr5rh", "dr5x8",
]  # fmt: skip
LONLAT = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]
DTYPES = {
    "key": "O",
    "fare_amount": "float32",
    "pickup_longitude": "float32",
    "pickup_latitude": "float32",
    "dropoff_longitude": "float32",
    "dropoff_latitude": "float32",
    "passenger_count": "float32",  # the original says int16, which fails on a null
}


def geohash_encode(lat: float, lon: float, precision: int = 5) -> str:
    """Standard geohash: bits interleaved from longitude first, 5 bits per base-32 letter."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    out: list[str] = []
    bits = 0
    n_bits = 0
    even = True
    while len(out) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            if lon > mid:
                bits = bits * 2 + 1
                lon_lo = mid
            else:
                bits *= 2
                lon_hi = mid
        else:
            mid = (lat_lo + lat_hi) / 2
            if lat > mid:
                bits = bits * 2 + 1
                lat_lo = mid
            else:
                bits *= 2
                lat_hi = mid
        even = not even
        n_bits += 1
        if n_bits == 5:
            out.append(GEOHASH_ALPHABET[bits])
            bits = n_bits = 0
    return "".join(out)


def clean_data(df: pd.DataFrame) -> pd.DataFrame:
    """The original `clean_data`: duplicates, nulls, zero coordinates, ranges, the NYC box."""
    df = df.drop_duplicates()
    df = df.dropna(how="any", axis=0)
    df = df[(df.dropoff_latitude != 0) | (df.dropoff_longitude != 0)
            | (df.pickup_latitude != 0) | (df.pickup_longitude != 0)]  # fmt: skip
    df = df[df.passenger_count > 0]
    df = df[df.fare_amount > 0]
    df = df[df.fare_amount < 400]
    df = df[df.passenger_count < 8]
    df = df[df["pickup_latitude"].between(left=40.5, right=40.9)]
    df = df[df["dropoff_latitude"].between(left=40.5, right=40.9)]
    df = df[df["pickup_longitude"].between(left=-74.3, right=-73.7)]
    return df[df["dropoff_longitude"].between(left=-74.3, right=-73.7)]


def transform_time_features(x: pd.DataFrame) -> np.ndarray:
    pickup = x["pickup_datetime"].dt.tz_convert("America/New_York").dt
    hour = pickup.hour
    return np.stack(
        [
            np.sin(2 * math.pi / 24 * hour),
            np.cos(2 * math.pi / 24 * hour),
            pickup.weekday,
            pickup.month,
            pickup.year,
        ],
        axis=1,
    )


def transform_lonlat_features(x: pd.DataFrame) -> pd.DataFrame:
    lat1, lon1 = np.radians(x["pickup_latitude"]), np.radians(x["pickup_longitude"])
    lat2, lon2 = np.radians(x["dropoff_latitude"]), np.radians(x["dropoff_longitude"])
    dlon, dlat = lon2 - lon1, lat2 - lat1
    manhattan_km = (np.abs(dlon) + np.abs(dlat)) * 6371
    a = np.sin(dlat / 2.0) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin(dlon / 2.0) ** 2
    haversine_km = 2 * np.arcsin(np.sqrt(a)) * 6371
    return pd.DataFrame({"haversine": haversine_km, "manhattan": manhattan_km})


def compute_geohash(x: pd.DataFrame, precision: int = 5) -> pd.DataFrame:
    """One geohash per end of each ride, row by row, as the original does."""
    x = x.copy()
    x["geohash_pickup"] = x.apply(
        lambda r: geohash_encode(r.pickup_latitude, r.pickup_longitude, precision), axis=1
    )
    x["geohash_dropoff"] = x.apply(
        lambda r: geohash_encode(r.dropoff_latitude, r.dropoff_longitude, precision), axis=1
    )
    return x[["geohash_pickup", "geohash_dropoff"]]


def _passenger_scale(p: Any) -> Any:
    return (p - 1) / (8 - 1)


def _distance_scale(d: Any) -> Any:
    return (d - 0) / (100 - 0)


def _year_scale(y: Any) -> Any:
    return (y - 2009) / (2019 - 2009)


def make_preprocessor(n_jobs: int | None = -1) -> Any:
    """The original ColumnTransformer, built afresh for each chunk as the original does.

    The original runs its four branches in a process pool (`n_jobs=-1`); `n_jobs=None`
    runs them in this process (used by the quick run, where pool start-up would dominate).
    """
    from sklearn.compose import ColumnTransformer, make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    time_pipe = make_pipeline(
        FunctionTransformer(transform_time_features),
        make_column_transformer(
            (
                OneHotEncoder(
                    categories=[np.arange(0, 7), np.arange(1, 13)],
                    sparse_output=False,
                    handle_unknown="ignore",
                ),
                [2, 3],
            ),
            (FunctionTransformer(_year_scale), [4]),
            remainder="passthrough",
        ),
    )
    distance_pipe = make_pipeline(
        FunctionTransformer(transform_lonlat_features), FunctionTransformer(_distance_scale)
    )
    geohash_pipe = make_pipeline(
        FunctionTransformer(compute_geohash),
        OneHotEncoder(
            categories=[GEOHASH_DISTRICTS, GEOHASH_DISTRICTS], handle_unknown="ignore", sparse_output=False
        ),
    )
    return ColumnTransformer(
        [
            ("passenger_scaler", FunctionTransformer(_passenger_scale), ["passenger_count"]),
            ("time_preproc", time_pipe, ["pickup_datetime"]),
            ("dist_preproc", distance_pipe, LONLAT),
            ("geohash", geohash_pipe, LONLAT),
        ],
        n_jobs=n_jobs,
    )


def preprocess_features(x: pd.DataFrame, n_jobs: int | None = -1) -> np.ndarray:
    return np.asarray(make_preprocessor(n_jobs).fit_transform(x), dtype=np.float32)


def read_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    """pandas.read_csv in chunks with the original's dtypes and parsed pickup times."""
    for chunk in pd.read_csv(path, chunksize=chunk_size, dtype=DTYPES, parse_dates=["pickup_datetime"]):
        if not isinstance(chunk["pickup_datetime"].dtype, pd.DatetimeTZDtype):
            chunk["pickup_datetime"] = pd.to_datetime(chunk["pickup_datetime"], utc=True, format="mixed")
        yield chunk


def preprocess_file(path: Path, chunk_size: int, n_jobs: int | None = -1) -> tuple[int, int]:
    """Raw CSV -> clean rows -> feature matrix, chunk by chunk; (rows kept, feature columns)."""
    rows = width = 0
    for chunk in read_chunks(path, chunk_size):
        clean = clean_data(chunk)
        x = preprocess_features(clean.drop(columns=["fare_amount"]), n_jobs)
        rows += len(x)
        width = x.shape[1]
    return rows, width


def build_network(n_features: int, seed: int = 42) -> Any:
    """Dense 100-50-10 with batch normalisation and dropout; Adam 1e-3 on MSE."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=(n_features,)),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(50, activation="relu"),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(10, activation="relu"),
            keras.layers.Dense(1, activation="linear"),
        ]
    )
    model.compile(
        loss="mean_squared_error", optimizer=keras.optimizers.Adam(learning_rate=1e-3), metrics=["mae"]
    )
    return model


def train_network(
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    seed: int = 42,
    max_epochs: int = 100,
) -> tuple[Any, int]:
    """The original training settings; returns the model and the epochs it ran."""
    import keras

    model = build_network(x.shape[1], seed)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=max_epochs,
        batch_size=256,
        callbacks=[stopper],
        verbose=0,
    )
    return model, len(history.history["loss"])
