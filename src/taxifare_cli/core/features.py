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


def compute_features(df: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
    """The feature matrix (float32, rows x N_FEATURES) of clean rides.

    `rows` (positions) picks the rides out of a larger frame, for callers that kept a
    cleaning mask rather than a cleaned frame; all rows when None.
    """

    def column(name: str, na_value: float = np.nan) -> np.ndarray:
        values = df[name].to_numpy(dtype="float64", na_value=na_value)
        return values if rows is None else values[rows]

    parts = _time_parts(df["pickup_datetime"], rows)
    if parts is None:  # not plain UTC or naive times: pandas takes them apart
        pickup = df["pickup_datetime"] if rows is None else df["pickup_datetime"].iloc[rows]
        t = local_time(pickup)
        parts = {
            "hour": t.hour.to_numpy(),
            "minute": t.minute.to_numpy(),
            "weekday": t.day_of_week.to_numpy(),
            "month": t.month.to_numpy(),
            "year": t.year.to_numpy(),
            "day_of_year": t.day_of_year.to_numpy(),
            "after_fare_rise": np.asarray(t >= FARE_RISE),
        }
    return features_from_columns(
        column("pickup_latitude"),
        column("pickup_longitude"),
        column("dropoff_latitude"),
        column("dropoff_longitude"),
        passengers=column("passenger_count", na_value=1.0),
        **parts,
    )


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _time_parts(pickup: pd.Series, rows: np.ndarray | None) -> dict[str, np.ndarray] | None:
    """`local_time`'s hour, minute, weekday, month, year, day of year and fare era, in integer
    numpy arithmetic on the epoch values (pandas' field accessors cost five times more).

    None (use pandas) unless the times are naive or UTC, without NaT, in a known unit.
    """
    dtype = pickup.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        if str(dtype.tz) != "UTC":
            return None
    elif not (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        return None
    index = pd.DatetimeIndex(pickup)
    per_second = _PER_SECOND.get(index.unit)
    values = index.asi8 if rows is None else index.asi8[rows]
    if per_second is None or (values == np.iinfo(np.int64).min).any():  # NaT
        return None
    seconds = values // per_second
    days = seconds // 86_400
    of_day = seconds - days * 86_400
    year, month, _ = civil_from_days(days)
    return {
        "hour": of_day // 3_600,
        "minute": of_day % 3_600 // 60,
        "weekday": (days + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
        "month": month,
        "year": year,
        "day_of_year": days - days_from_civil(year) + 1,
        "after_fare_rise": values >= FARE_RISE.as_unit(index.unit).asm8.view(np.int64),
    }


def civil_from_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of days since 1970-01-01, proleptic Gregorian (H. Hinnant's algorithm)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # from March 1st
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, day


def days_from_civil(year: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of January 1st of `year` (the inverse of `civil_from_days`)."""
    y = year - 1  # January counts in the year before, from March
    era = y // 400
    yoe = y - era * 400
    doe = yoe * 365 + yoe // 4 - yoe // 100 + 306  # 306: days from March 1st to January 1st
    return era * 146_097 + doe - 719_468
