"""The feature contract and its arithmetic, in numpy alone (no pandas).

`core.features.compute_features` takes a DataFrame of clean rides apart into
these columns; `core.few_rides` builds them from a few rides parsed without
pandas (one ride priced from the command line, a web request). Both then call
`features_from_columns`, so the two paths compute the very same float32 numbers.
"""

from __future__ import annotations

from collections.abc import Callable
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
    return _haversine(p1, np.cos(p1), lon1, p2, np.cos(p2), lon2)


# Rows per block of the feature kernel: its float64 temporaries (a dozen arrays of this
# length) then stay in the CPU cache instead of streaming through memory.
BLOCK_ROWS = 4096
# A flat map around New York: km per degree of latitude, and the east-west scale.
_KM_PER_DEG = 111.2
_COS_NYC = np.cos(np.radians(40.75))
_SIN_GRID, _COS_GRID = np.sin(GRID_ANGLE), np.cos(GRID_ANGLE)
# Each place as `haversine_km` sees a scalar end: its latitude in radians and the cosine of it.
_PLACE_ENDS = [
    (np.float64(lon), np.radians(np.float64(lat)), np.cos(np.radians(np.float64(lat))))
    for lat, lon in PLACES.values()
]
_AIRPORT_INDEX = [list(PLACES).index(a) for a in AIRPORTS]


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

    Every number is the one a plain column-by-column computation gives, bit for bit (the
    same numpy operations on the same float64 values in the same order; a test keeps that
    plain version and compares). Only the schedule differs:
    the calendar columns come from small tables (a day has 1,440 minutes), and the
    distances go through in blocks of rows small enough that their float64 temporaries
    and their part of the result stay in the CPU cache while each column is written.
    """
    n = len(plat)
    out = np.empty((n, N_FEATURES), dtype=np.float32)
    coords = [np.ascontiguousarray(c, dtype=np.float64) for c in (plat, plon, dlat, dlon)]
    calendar = _calendar_columns(hour, minute, weekday, month, year, day_of_year, after_fare_rise, passengers)
    for s in range(0, n, BLOCK_ROWS):
        e = min(n, s + BLOCK_ROWS)
        block = out[s:e]
        _fill_distances(block, *(c[s:e] for c in coords))
        for k, values in zip(_CALENDAR_COLS, calendar, strict=True):
            block[:, k] = values[s:e]
    return out


_F = {name: i for i, name in enumerate(FEATURE_NAMES)}
_CALENDAR_NAMES = (
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
    "passenger_count",
)
_CALENDAR_COLS = [_F[name] for name in _CALENDAR_NAMES]


def _by_table(values: np.ndarray, lo: int, hi: int, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`fn(values)`, looked up in `fn(arange(lo, hi))` when every value is in that range.

    A numpy ufunc gives an element the same result wherever it sits in an array, so the
    table holds exactly the numbers `fn` would compute row by row, for a few thousand
    rows' work instead of a million.
    """
    v = np.asarray(values)
    if v.size and (v.dtype.kind not in "iu" or v.min() < lo or v.max() >= hi):
        return np.asarray(fn(v))
    table = np.asarray(fn(np.arange(lo, hi, dtype=np.int64)))
    return table[v - lo] if v.size else table[:0]


def _calendar_columns(
    hour: np.ndarray,
    minute: np.ndarray,
    weekday: np.ndarray,
    month: np.ndarray,
    year: np.ndarray,
    day_of_year: np.ndarray,
    after_fare_rise: np.ndarray,
    passengers: np.ndarray,
) -> list[np.ndarray]:
    """The _CALENDAR_NAMES columns, in that order, as full-length arrays (float64 or bool)."""
    hour, minute = np.asarray(hour), np.asarray(minute)
    in_day = hour.dtype.kind in "iu" and minute.dtype.kind in "iu"
    if in_day and hour.size:
        in_day = bool(hour.min() >= 0 and hour.max() < 24 and minute.min() >= 0 and minute.max() < 60)
    if in_day:  # one table entry per minute of the day
        key = hour.astype(np.int64) * 60 + minute
        lo, hi = 0, 24 * 60

        def clock(m: np.ndarray) -> np.ndarray:
            return (m // 60) + (m % 60) / 60.0

    else:
        key, lo, hi = hour + minute / 60.0, 0, 0

        def clock(m: np.ndarray) -> np.ndarray:
            return m

    weekday, month = np.asarray(weekday), np.asarray(month)
    return [
        _by_table(key, lo, hi, lambda m: np.sin(2 * np.pi * clock(m) / 24)),
        _by_table(key, lo, hi, lambda m: np.cos(2 * np.pi * clock(m) / 24)),
        _by_table(weekday, 0, 7, lambda w: np.sin(2 * np.pi * w / 7)),
        _by_table(weekday, 0, 7, lambda w: np.cos(2 * np.pi * w / 7)),
        weekday >= 5,
        _by_table(key, lo, hi, lambda m: (clock(m) >= 20) | (clock(m) < 6)),
        (weekday < 5) & _by_table(key, lo, hi, lambda m: (clock(m) >= 16) & (clock(m) < 20)),
        _by_table(month, 1, 13, lambda m: np.sin(2 * np.pi * (m - 1) / 12)),
        _by_table(month, 1, 13, lambda m: np.cos(2 * np.pi * (m - 1) / 12)),
        year - EPOCH_YEAR + (day_of_year - 1) / 365.25,
        after_fare_rise,
        passengers,
    ]


def _fill_distances(
    b: np.ndarray, plat: np.ndarray, plon: np.ndarray, dlat: np.ndarray, dlon: np.ndarray
) -> None:
    """The distance and place columns of one block of rows of the result.

    The ends' radians and cosines are computed once and serve the ride and all five
    places; the street-grid offsets are on a flat map around New York.
    """
    p1, p2 = np.radians(plat), np.radians(dlat)
    cp1, cp2 = np.cos(p1), np.cos(p2)
    hav = _haversine(p1, cp1, plon, p2, cp2, dlon)
    north = (dlat - plat) * _KM_PER_DEG
    east = (dlon - plon) * _KM_PER_DEG * _COS_NYC
    # Project onto the rotated street grid: blocks run along the avenues and streets.
    along = east * _SIN_GRID + north * _COS_GRID
    across = east * _COS_GRID - north * _SIN_GRID
    bearing = np.arctan2(east, north)
    b[:, _F["haversine_km"]] = hav
    b[:, _F["grid_km"]] = np.abs(along) + np.abs(across)
    b[:, _F["log_haversine_km"]] = np.log1p(hav)
    b[:, _F["bearing_sin"]] = np.sin(bearing)
    b[:, _F["bearing_cos"]] = np.cos(bearing)
    b[:, _F["same_place"]] = hav < 0.05
    b[:, _F["pickup_lat"]] = plat
    b[:, _F["pickup_lon"]] = plon
    b[:, _F["dropoff_lat"]] = dlat
    b[:, _F["dropoff_lon"]] = dlon
    row = _F["pickup_jfk_km"]
    near: list[np.ndarray] = []
    for i, (lon, pr, cpr) in enumerate(_PLACE_ENDS):
        dp = _haversine(p1, cp1, plon, pr, cpr, lon)
        dd = _haversine(p2, cp2, dlon, pr, cpr, lon)
        b[:, row + 2 * i] = dp
        b[:, row + 2 * i + 1] = dd
        if i in _AIRPORT_INDEX:
            near.append(np.minimum(dp, dd) < AIRPORT_RADIUS_KM)
    for i, flag in zip(_AIRPORT_INDEX, near, strict=True):
        b[:, _F[f"airport_{list(PLACES)[i]}"]] = flag


def _haversine(
    p1: np.ndarray,
    cos_p1: np.ndarray,
    lon1: np.ndarray,
    p2: np.ndarray | float,
    cos_p2: np.ndarray | float,
    lon2: np.ndarray | float,
) -> np.ndarray:
    """Great-circle distance in km from the ends' latitudes in radians, their cosines and longitudes."""
    dphi = p2 - p1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + cos_p1 * cos_p2 * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
