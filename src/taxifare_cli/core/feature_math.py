"""The feature contract and its arithmetic, in numpy alone (no pandas).

`core.features.compute_features` takes a DataFrame of clean rides apart into
these columns; `core.few_rides` builds them from a few rides parsed without
pandas (one ride priced from the command line, a web request). Both then call
`features_from_columns`, so the two paths compute the very same float32 numbers.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

FEATURE_VERSION = 1
EARTH_RADIUS_KM = 6371.0
# Manhattan's street grid runs about 29 degrees east of true north.
GRID_ANGLE = np.deg2rad(29.0)
FARE_RISE_AT = datetime(2012, 9, 4)  # New York wall-clock time, as pickup times are
EPOCH_YEAR = 2009.0

# (lat, lon) of the places that change a fare: airport flat fares and surcharges,
# the dense middle of Manhattan, and the financial district.
PLACES: dict[str, tuple[float, float]] = {
    "jfk": (40.6413, -73.7781),
    "lga": (40.7769, -73.8740),
    "ewr": (40.6895, -74.1745),
    "midtown": (40.7549, -73.9840),
    "downtown": (40.7075, -74.0113),
}
AIRPORTS = ("jfk", "lga", "ewr")
AIRPORT_RADIUS_KM = 2.0

FEATURE_NAMES: tuple[str, ...] = (
    "haversine_km",
    "grid_km",
    "log_haversine_km",
    "bearing_sin",
    "bearing_cos",
    "same_place",
    "pickup_lat",
    "pickup_lon",
    "dropoff_lat",
    "dropoff_lon",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
    "weekend",
    "night",
    "weekday_rush",
    "month_sin",
    "month_cos",
    "years_since_2009",
    "after_fare_rise",
    *(f"{end}_{place}_km" for place in PLACES for end in ("pickup", "dropoff")),
    *(f"airport_{a}" for a in AIRPORTS),
    "passenger_count",
)
N_FEATURES = len(FEATURE_NAMES)

# Smallest standard deviation a feature is scaled by. A model trained on one
# month sees almost no spread in the calendar features; scaling by that spread
# would put the next month tens of deviations away. These floors keep a month's
# step small.
MIN_STD: dict[str, float] = {"years_since_2009": 1.0, "month_sin": 0.5, "month_cos": 0.5}
DEFAULT_MIN_STD = 1e-3


def min_variance() -> np.ndarray:
    """Per-feature variance floor, in FEATURE_NAMES order."""
    return np.array([MIN_STD.get(n, DEFAULT_MIN_STD) ** 2 for n in FEATURE_NAMES])


def haversine_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray | float, lon2: np.ndarray | float
) -> np.ndarray:
    """Great-circle distance in kilometres, element-wise."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def local_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """East and north offsets in km on a flat map around New York."""
    north = (lat2 - lat1) * 111.2
    east = (lon2 - lon1) * 111.2 * np.cos(np.radians(40.75))
    return east, north


def features_from_columns(
    plat: np.ndarray,
    plon: np.ndarray,
    dlat: np.ndarray,
    dlon: np.ndarray,
    *,
    hour: np.ndarray,
    minute: np.ndarray,
    weekday: np.ndarray,
    month: np.ndarray,
    year: np.ndarray,
    day_of_year: np.ndarray,
    after_fare_rise: np.ndarray,
    passengers: np.ndarray,
) -> np.ndarray:
    """The feature matrix (float32, rows x N_FEATURES) of clean rides, from their columns.

    Coordinates and passengers are float64; the time parts are integers of the pickup's
    New York wall-clock time (weekday 0 = Monday); `after_fare_rise` is a boolean.
    """
    n = len(plat)
    out = np.empty((n, N_FEATURES), dtype=np.float32)
    col = iter(range(N_FEATURES))

    hav = haversine_km(plat, plon, dlat, dlon)
    east, north = local_km(plat, plon, dlat, dlon)
    # Project onto the rotated street grid: blocks run along the avenues and streets.
    along = east * np.sin(GRID_ANGLE) + north * np.cos(GRID_ANGLE)
    across = east * np.cos(GRID_ANGLE) - north * np.sin(GRID_ANGLE)
    bearing = np.arctan2(east, north)
    out[:, next(col)] = hav
    out[:, next(col)] = np.abs(along) + np.abs(across)
    out[:, next(col)] = np.log1p(hav)
    out[:, next(col)] = np.sin(bearing)
    out[:, next(col)] = np.cos(bearing)
    out[:, next(col)] = hav < 0.05
    for values in (plat, plon, dlat, dlon):
        out[:, next(col)] = values

    hours = hour + minute / 60.0
    out[:, next(col)] = np.sin(2 * np.pi * hours / 24)
    out[:, next(col)] = np.cos(2 * np.pi * hours / 24)
    out[:, next(col)] = np.sin(2 * np.pi * weekday / 7)
    out[:, next(col)] = np.cos(2 * np.pi * weekday / 7)
    out[:, next(col)] = weekday >= 5
    out[:, next(col)] = (hours >= 20) | (hours < 6)
    out[:, next(col)] = (weekday < 5) & (hours >= 16) & (hours < 20)
    out[:, next(col)] = np.sin(2 * np.pi * (month - 1) / 12)
    out[:, next(col)] = np.cos(2 * np.pi * (month - 1) / 12)
    out[:, next(col)] = year - EPOCH_YEAR + (day_of_year - 1) / 365.25
    out[:, next(col)] = after_fare_rise

    dist: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for place, (lat, lon) in PLACES.items():
        dp = haversine_km(plat, plon, np.float64(lat), np.float64(lon))
        dd = haversine_km(dlat, dlon, np.float64(lat), np.float64(lon))
        dist[place] = (dp, dd)
        out[:, next(col)] = dp
        out[:, next(col)] = dd
    for airport in AIRPORTS:
        dp, dd = dist[airport]
        out[:, next(col)] = np.minimum(dp, dd) < AIRPORT_RADIUS_KM

    out[:, next(col)] = passengers
    assert next(col, None) is None, "every feature column must be filled"
    return out
