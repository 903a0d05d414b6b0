"""Feature engineering on whole chunks of clean rides (numpy, no per-row Python).

What the fare depends on (see docs/data.md): distance along the streets,
time in traffic (local hour and weekday), the tariff era, airport flat fares
and surcharges, and where in the city the ride is. Passenger count barely
matters but costs nothing.

The contract (names, places, floors) and the arithmetic live in
`core.feature_math`, which needs no pandas: a few rides priced without pandas
(`core.few_rides`) get the same numbers as a DataFrame does here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from taxifare_cli.core.feature_math import (
    AIRPORT_RADIUS_KM,
    AIRPORTS,
    DEFAULT_MIN_STD,
    EARTH_RADIUS_KM,
    EPOCH_YEAR,
    FARE_RISE_AT,
    FEATURE_NAMES,
    FEATURE_VERSION,
    GRID_ANGLE,
    MIN_STD,
    N_FEATURES,
    PLACES,
    features_from_columns,
    haversine_km,
    min_variance,
)

__all__ = [
    "AIRPORTS",
    "AIRPORT_RADIUS_KM",
    "DEFAULT_MIN_STD",
    "EARTH_RADIUS_KM",
    "EPOCH_YEAR",
    "FARE_RISE",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "GRID_ANGLE",
    "MIN_STD",
    "N_FEATURES",
    "PLACES",
    "compute_features",
    "haversine_km",
    "local_time",
    "min_variance",
]

FARE_RISE = pd.Timestamp(FARE_RISE_AT)


def local_time(pickup: pd.Series) -> pd.DatetimeIndex:
    """Pickup times as New York wall-clock time.

    The public files label their times UTC, but they are the TLC's local
    wall-clock times (exported through BigQuery, which stamps every TIMESTAMP
    UTC): rides thin out at 5 am and peak in the evening as they stand.
    Converting them to New York time would shift every hour by 4-5 h and
    wobble by one at the daylight-saving changes, so the label is dropped.
    """
    idx = pd.DatetimeIndex(pickup)
    return idx.tz_localize(None) if idx.tz is not None else idx


def compute_features(df: pd.DataFrame) -> np.ndarray:
    """The feature matrix (float32, rows x N_FEATURES) of clean rides."""
    t = local_time(df["pickup_datetime"])
    return features_from_columns(
        df["pickup_latitude"].to_numpy(dtype="float64"),
        df["pickup_longitude"].to_numpy(dtype="float64"),
        df["dropoff_latitude"].to_numpy(dtype="float64"),
        df["dropoff_longitude"].to_numpy(dtype="float64"),
        hour=t.hour.to_numpy(),
        minute=t.minute.to_numpy(),
        weekday=t.day_of_week.to_numpy(),
        month=t.month.to_numpy(),
        year=t.year.to_numpy(),
        day_of_year=t.day_of_year.to_numpy(),
        after_fare_rise=t >= FARE_RISE,
        passengers=df["passenger_count"].to_numpy(dtype="float64", na_value=1.0),
    )
