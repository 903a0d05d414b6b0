"""Deterministic simulator of raw NYC yellow-cab rides (the columns of the public files).

The rides are built from the structure that real fares have, so that a model trained on
them learns what it would learn from the real data:

* **Time.** Pickups spread over the requested span with the hour-of-day profile of NYC
  taxis (quiet at 5 am, busiest 6-11 pm, late nights busy on weekends) and more rides on
  Thursday-Saturday. As in the public data, the clock is New York local time labelled UTC.
* **Geography.** About 94% of pickups are in Manhattan, drawn from hotspots (Midtown,
  Upper East/West Side, Chelsea, the Villages, SoHo/Tribeca, the Financial District...)
  spread along the street grid, which is rotated 29 degrees from north, and kept on the
  island (a coarse shoreline polygon, Central Park excluded). Trips have a log-normal
  straight-line length, mostly along the avenues; the rest start in Brooklyn, Queens or
  the Bronx. JFK touches about 2% of trips, LaGuardia 3.5%, Newark 0.2%. About 1% of
  rides have pickup = dropoff (a GPS failure: the fare is that of an unseen trip).
* **Fare** (`fare_amount`, tolls included, tips and the night / rush-hour / MTA
  surcharges excluded, as in the public files: pre-2012 fares are exactly $2.50 plus
  multiples of $0.40). The meter charges $2.50 on entry plus $0.40 per 1/5 mile or per
  minute slow (from 2012-09-04: $0.50), whichever applies at each moment. Street
  distance is the grid (Manhattan) distance in the rotated grid or the straight line times
  a road factor (1.3-1.55) elsewhere; slow minutes per mile depend on hour, weekday,
  Midtown congestion, highway share of long trips and a slow rise of congestion over the
  years, with trip-level noise (lights, jams, waits, detours) a model cannot explain.
  JFK-Manhattan is a flat $45 ($52 from 2012-09-04); Newark adds $15 ($17.50) plus the
  Hudson tunnel toll; tunnel/bridge tolls are added on some cross-river and airport trips.
  Set `SURCHARGES_IN_FARE = True` to add the surcharges to the fare instead.
* **Passengers.** 1: 71%, 2: 14%, 5: 7%, 3: 4%, 4: 2%, 6: 2%, and 0: 0.4% (dirty only).
* **Dirty rows** (``dirty=True``): zero coordinates (~2%), other ends outside the NYC box
  (swapped latitude/longitude, trips out of town, garbage values; ~2.3% in all), fares
  <= 0 or above $100 (a few in 10,000, rarely absurd up to $93,000), passenger counts 0
  and rarely absurd (208), coordinates that print with float artefacts
  (``40.712278000000005``), a few exact duplicate rows (key included), a few nulls in the
  dropoff coordinates and the passenger count. ``pickup_datetime`` is never null.

**Drift in 2015.** The public files stop in June 2015; the simulator makes those months
drift so that a model trained on January gets worse month after month. With ``t`` the
number of months since 2015-01-01 (fractional; 0 before 2015, about 5 in June):

* traffic: slow (time-billed) minutes per street mile x (1 + 0.04 t), +22% by late June;
* prices: the number of meter units x (1 + 0.01 t), +5.5% by late June (a fare creep that
  the real tariff did not have: it is there to move prices, not to mimic history);
* trip mix: the JFK and LaGuardia shares and the share of Manhattan rides to Brooklyn
  and Queens x (1 + 0.05 t), +28% by late June.

Measured with seed 42 and 100,000 rides a month (cleaned rows): the mean fare goes from
$13.0 (val_jan) to $14.6 (val_jun); a gradient-boosting model trained on train_jan has an
MAE 30% higher on val_jun than on val_jan, a linear fit on distance 18% higher.

Size datasets (``train_10k``...) draw from 2009-01-01 to 2015-06-30 and get the same drift
on their 2015 rides. Generation is block-wise (`BLOCK_ROWS` rows, each block with its own
random stream derived from the seed, the dataset and the block number), so a dataset is
identical however it is chunked, and its first ``rows`` rows do not depend on ``rows``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from taxifare_cli.core.schema import (
    COORD_COLUMNS,
    MONTH_TRAIN_FRACTION,
    RAW_COLUMNS,
    SIZES,
    parse_dataset_name,
)

__all__ = [
    "BLOCK_ROWS",
    "SURCHARGES_IN_FARE",
    "iter_simulated_dataset",
    "simulate_dataset",
    "simulate_rides",
]

BLOCK_ROWS = 50_000
"""Rows per random block: chunked and whole generation slice the same blocks."""

SURCHARGES_IN_FARE = False
"""The public files leave the night/rush-hour/MTA surcharges out of `fare_amount`."""

SIZE_START = pd.Timestamp("2009-01-01", tz="UTC")
SIZE_END = pd.Timestamp("2015-07-01", tz="UTC")

# --- calendar ------------------------------------------------------------------------
_FARE_RISE = int(pd.Timestamp("2012-09-04", tz="UTC").timestamp())
_MTA_START = int(pd.Timestamp("2009-11-17", tz="UTC").timestamp())
_DRIFT_START = int(pd.Timestamp("2015-01-01", tz="UTC").timestamp())
_YEAR0 = int(pd.Timestamp("2009-01-01", tz="UTC").timestamp())
_SECONDS_PER_MONTH = 30.44 * 86_400
_SECONDS_PER_YEAR = 365.25 * 86_400

# Share of a day's pickups by hour (local time), weekdays and weekends.
_HOUR_WEEKDAY = np.array(
    [2.6, 1.6, 1.1, 0.8, 0.7, 0.9, 2.2, 3.9, 4.6, 4.5, 4.2, 4.3,
     4.6, 4.5, 4.6, 4.4, 3.9, 4.6, 5.8, 6.3, 6.0, 5.9, 5.8, 4.6]
)  # fmt: skip
_HOUR_WEEKEND = np.array(
    [5.2, 4.6, 3.9, 3.1, 2.2, 1.2, 0.9, 1.0, 1.6, 2.5, 3.4, 4.1,
     4.6, 4.7, 4.7, 4.6, 4.6, 4.8, 5.2, 5.3, 5.0, 4.9, 5.0, 5.2]
)  # fmt: skip
_WEEKDAY_VOLUME = np.array([0.88, 0.97, 1.00, 1.04, 1.08, 1.09, 0.94])  # Monday first

# Slow (time-billed) minutes per street mile by hour: the traffic model.
_SLOW_WEEKDAY = np.array(
    [1.2, 1.1, 1.0, 1.0, 1.0, 1.1, 1.6, 2.4, 3.0, 3.1, 3.0, 3.1,
     3.2, 3.2, 3.3, 3.3, 3.2, 3.3, 3.1, 2.6, 2.1, 1.9, 1.6, 1.4]
)  # fmt: skip
_SLOW_WEEKEND = np.array(
    [1.5, 1.4, 1.2, 1.1, 1.0, 1.0, 1.0, 1.1, 1.4, 1.7, 2.1, 2.4,
     2.6, 2.6, 2.6, 2.5, 2.5, 2.5, 2.4, 2.2, 2.0, 1.9, 1.7, 1.6]
)  # fmt: skip

# --- geography (km in a local plane; x east, y north, origin Times Square) -----------
_LAT0, _LON0 = 40.7580, -73.9855
_KM_LAT = 111.0
_KM_LON = 111.32 * math.cos(math.radians(40.75))
_KM_PER_MILE = 1.609344
_GRID = math.radians(29.0)  # avenues run 29 degrees east of north
_SIN, _COS = math.sin(_GRID), math.cos(_GRID)

# Manhattan shoreline, counter-clockwise from the Battery (lat, lon).
_MANHATTAN = np.array([
    (40.7005, -74.0160), (40.7030, -74.0085), (40.7065, -74.0020), (40.7090, -73.9960),
    (40.7100, -73.9870), (40.7110, -73.9780), (40.7200, -73.9730), (40.7280, -73.9710),
    (40.7350, -73.9740), (40.7420, -73.9720), (40.7480, -73.9680), (40.7560, -73.9610),
    (40.7610, -73.9570), (40.7670, -73.9515), (40.7760, -73.9430), (40.7830, -73.9400),
    (40.7900, -73.9350), (40.7980, -73.9280), (40.8040, -73.9290), (40.8120, -73.9330),
    (40.8210, -73.9340), (40.8330, -73.9350), (40.8450, -73.9280), (40.8560, -73.9190),
    (40.8690, -73.9110), (40.8770, -73.9170), (40.8790, -73.9230), (40.8700, -73.9300),
    (40.8600, -73.9350), (40.8500, -73.9480), (40.8350, -73.9510), (40.8180, -73.9610),
    (40.7990, -73.9740), (40.7850, -73.9850), (40.7770, -73.9920), (40.7720, -73.9950),
    (40.7630, -74.0020), (40.7560, -74.0080), (40.7480, -74.0100), (40.7420, -74.0100),
    (40.7290, -74.0110), (40.7170, -74.0150), (40.7100, -74.0180), (40.7040, -74.0180),
])  # fmt: skip
_CENTRAL_PARK = np.array([(40.7681, -73.9819), (40.7644, -73.9730), (40.7969, -73.9493), (40.8006, -73.9580)])

# Manhattan hotspots: lat, lon, day weight, night weight, sd along avenues, sd across (km).
_MANHATTAN_SPOTS = np.array([
    (40.7560, -73.9820, 0.20, 0.13, 1.00, 0.60),  # Midtown: Times Sq to Grand Central
    (40.7580, -73.9700, 0.07, 0.04, 0.80, 0.40),  # Midtown East
    (40.7510, -73.9910, 0.07, 0.05, 0.60, 0.50),  # Penn Station, Herald Square
    (40.7420, -73.9850, 0.09, 0.09, 0.80, 0.60),  # Murray Hill, Gramercy, Flatiron
    (40.7440, -74.0020, 0.06, 0.09, 0.70, 0.40),  # Chelsea, Meatpacking
    (40.7330, -74.0030, 0.06, 0.10, 0.60, 0.40),  # Greenwich and West Village
    (40.7270, -73.9850, 0.05, 0.10, 0.60, 0.50),  # East Village
    (40.7220, -74.0000, 0.05, 0.06, 0.70, 0.60),  # SoHo, Tribeca
    (40.7160, -73.9870, 0.03, 0.06, 0.50, 0.50),  # Lower East Side
    (40.7080, -74.0090, 0.05, 0.02, 0.60, 0.40),  # Financial District
    (40.7740, -73.9560, 0.11, 0.09, 1.20, 0.50),  # Upper East Side
    (40.7850, -73.9760, 0.08, 0.08, 1.20, 0.45),  # Upper West Side
    (40.7700, -73.9830, 0.03, 0.03, 0.60, 0.40),  # Columbus Circle, Lincoln Center
    (40.8100, -73.9500, 0.015, 0.02, 1.50, 0.70),  # Harlem, Morningside Heights
    (40.8450, -73.9380, 0.005, 0.01, 1.50, 0.60),  # Washington Heights
])  # fmt: skip
# Outer-borough hotspots: lat, lon, weight, isotropic sd (km).
_OUTER_SPOTS = np.array([
    (40.7160, -73.9560, 0.24, 1.1),  # Williamsburg, Greenpoint
    (40.6920, -73.9880, 0.18, 0.7),  # Downtown Brooklyn, Brooklyn Heights
    (40.6730, -73.9790, 0.12, 1.0),  # Park Slope
    (40.6750, -73.9450, 0.08, 1.3),  # Crown Heights, Bed-Stuy
    (40.7470, -73.9450, 0.14, 0.8),  # Long Island City
    (40.7640, -73.9200, 0.10, 1.0),  # Astoria
    (40.7470, -73.8850, 0.07, 1.3),  # Jackson Heights, Elmhurst
    (40.8250, -73.9200, 0.07, 1.4),  # South Bronx
])  # fmt: skip
_JFK = (40.6413, -73.7781)
_LGA = (40.7769, -73.8740)
_EWR = (40.6895, -74.1745)
_FAR_SPOTS = np.array([  # out-of-town destinations (outside the cleaning box)
    (41.0300, -73.7700),  # Westchester
    (40.7300, -73.6000),  # Nassau County
    (40.8800, -74.3600),  # northern New Jersey
])  # fmt: skip

# Trip kinds.
_CITY, _JFK_TRIP, _LGA_TRIP, _EWR_TRIP, _FAR_TRIP = 0, 1, 2, 3, 4

# --- drift (see the module docstring) --------------------------------------------------
DRIFT_SLOW_PER_MONTH = 0.04
DRIFT_PRICE_PER_MONTH = 0.01
DRIFT_MIX_PER_MONTH = 0.05

# Passenger counts of clean rows and their shares.
_PASSENGERS = np.array([1, 2, 3, 4, 5, 6])
_PASSENGER_SHARES = np.array([0.71, 0.14, 0.04, 0.02, 0.07, 0.02])


def _to_xy(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (lon - _LON0) * _KM_LON, (lat - _LAT0) * _KM_LAT


def _to_latlon(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _LAT0 + y / _KM_LAT, _LON0 + x / _KM_LON


def _to_uv(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates: u along the avenues (uptown), v along the streets (east)."""
    return x * _SIN + y * _COS, x * _COS - y * _SIN


def _from_uv(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return u * _SIN + v * _COS, u * _COS - v * _SIN


def _polygon_xy(latlon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return _to_xy(latlon[:, 0], latlon[:, 1])


_MAN_X, _MAN_Y = _polygon_xy(_MANHATTAN)
_CP_X, _CP_Y = _polygon_xy(_CENTRAL_PARK)


def _inside(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Even-odd ray casting, vectorised over points (a loop over the polygon's edges)."""
    inside = np.zeros(x.shape, dtype=bool)
    j = len(px) - 1
    for i in range(len(px)):
        crosses = (py[i] > y) != (py[j] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = px[i] + (y - py[i]) * (px[j] - px[i]) / (py[j] - py[i])
        inside ^= crosses & (x < x_cross)
        j = i
    return inside


def _in_manhattan(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return _inside(x, y, _MAN_X, _MAN_Y) & ~_inside(x, y, _CP_X, _CP_Y)


def _point(lat: float, lon: float) -> tuple[float, float]:
    x, y = _to_xy(np.array(lat), np.array(lon))
    return float(x), float(y)


# --- random streams ---------------------------------------------------------------------
def _rng(seed: int, *labels: object) -> np.random.Generator:
    """A stream that depends only on the seed and the labels (stable across runs)."""
    words = [seed % 2**64]
    for label in labels:
        digest = hashlib.sha256(str(label).encode()).digest()
        words.append(int.from_bytes(digest[:8], "little"))
    return np.random.default_rng(np.random.SeedSequence(words))


def _choice(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    cdf = np.cumsum(weights, axis=-1)
    cdf = cdf / cdf[..., -1:]
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(weights) - 1)


# --- time -------------------------------------------------------------------------------
def _utc_seconds(ts: pd.Timestamp) -> int:
    ts = pd.Timestamp(ts)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000_000)


@dataclass(frozen=True)
class _Clock:
    """Hour slots of [start, end) weighted by the hour/weekday profile of taxi demand."""

    lo: np.ndarray
    width: np.ndarray
    cdf: np.ndarray

    @classmethod
    def between(cls, start: int, end: int) -> _Clock:
        slots = np.arange(start // 3600 * 3600, end, 3600, dtype=np.int64)
        lo = np.maximum(slots, start)
        width = np.minimum(slots + 3600, end) - lo
        hour = (slots // 3600) % 24
        weekday = (slots // 86_400 + 3) % 7  # 1970-01-01 was a Thursday
        profile = np.where(weekday >= 5, _HOUR_WEEKEND[hour], _HOUR_WEEKDAY[hour])
        weights = profile * _WEEKDAY_VOLUME[weekday] * width
        cdf = np.cumsum(weights)
        return cls(lo, width, cdf / cdf[-1])

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        slot = np.minimum(np.searchsorted(self.cdf, rng.random(n), side="right"), len(self.lo) - 1)
        return self.lo[slot] + (rng.random(n) * self.width[slot]).astype(np.int64)


# --- places -----------------------------------------------------------------------------
def _manhattan_points(rng: np.random.Generator, n: int, night: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points on Manhattan from the hotspot mixture (night weights favour nightlife)."""
    spots = _MANHATTAN_SPOTS
    cu, cv = _to_uv(*_to_xy(spots[:, 0], spots[:, 1]))
    x = np.empty(n)
    y = np.empty(n)
    todo = np.arange(n)
    for _ in range(30):
        k = np.where(
            night[todo],
            _choice(rng, spots[:, 3], todo.size),
            _choice(rng, spots[:, 2], todo.size),
        )
        u = cu[k] + rng.normal(0.0, spots[k, 4])
        v = cv[k] + rng.normal(0.0, spots[k, 5])
        x[todo], y[todo] = _from_uv(u, v)
        todo = todo[~_in_manhattan(x[todo], y[todo])]
        if todo.size == 0:
            break
    if todo.size:  # practically never: fall back on the hotspot centre
        k = _choice(rng, spots[:, 2], todo.size)
        x[todo], y[todo] = _from_uv(cu[k], cv[k])
    return x, y


def _outer_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in Brooklyn, Queens and the Bronx (never on Manhattan)."""
    spots = _OUTER_SPOTS
    cx, cy = _to_xy(spots[:, 0], spots[:, 1])
    x = np.empty(n)
    y = np.empty(n)
    todo = np.arange(n)
    for _ in range(30):
        k = _choice(rng, spots[:, 2], todo.size)
        x[todo] = cx[k] + rng.normal(0.0, spots[k, 3])
        y[todo] = cy[k] + rng.normal(0.0, spots[k, 3])
        todo = todo[_inside(x[todo], y[todo], _MAN_X, _MAN_Y)]
        if todo.size == 0:
            break
    if todo.size:
        k = _choice(rng, spots[:, 2], todo.size)
        x[todo], y[todo] = cx[k], cy[k]
    return x, y


def _near(
    rng: np.random.Generator, n: int, place: tuple[float, float], sd_km: float
) -> tuple[np.ndarray, np.ndarray]:
    x0, y0 = _point(*place)
    return x0 + rng.normal(0.0, sd_km, n), y0 + rng.normal(0.0, sd_km, n)


def _trip_length_km(rng: np.random.Generator, n: int) -> np.ndarray:
    """Straight-line length of a trip within Manhattan (log-normal, miles → km)."""
    return np.exp(rng.normal(0.2, 0.74, n)) * _KM_PER_MILE


def _manhattan_dropoffs(
    rng: np.random.Generator, x0: np.ndarray, y0: np.ndarray, night: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Dropoffs a log-normal distance away, mostly along the avenues, on the island."""
    n = x0.size
    u0, v0 = _to_uv(x0, y0)
    length = _trip_length_km(rng, n)
    x = np.empty(n)
    y = np.empty(n)
    todo = np.arange(n)
    for attempt in range(24):
        m = todo.size
        if attempt >= 12:  # a trip that fits nowhere from here: draw another length
            length[todo] = _trip_length_km(rng, m)
        along = rng.random(m) < 0.55
        angle = np.where(
            along,
            rng.normal(0.0, 0.3, m) + np.pi * (rng.random(m) < 0.5),
            rng.uniform(0.0, 2 * np.pi, m),
        )
        u = u0[todo] + length[todo] * np.cos(angle)
        v = v0[todo] + length[todo] * np.sin(angle)
        x[todo], y[todo] = _from_uv(u, v)
        todo = todo[~_in_manhattan(x[todo], y[todo])]
        if todo.size == 0:
            break
    if todo.size:
        x[todo], y[todo] = _manhattan_points(rng, todo.size, night[todo])
    return x, y


# --- the rides ---------------------------------------------------------------------------
@dataclass
class _Trips:
    kind: np.ndarray
    px: np.ndarray
    py: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    pickup_manhattan: np.ndarray
    dropoff_manhattan: np.ndarray


def _trips(rng: np.random.Generator, hour: np.ndarray, drift: np.ndarray, dirty: bool) -> _Trips:
    n = hour.size
    night = (hour >= 20) | (hour < 6)
    mix = 1.0 + DRIFT_MIX_PER_MONTH * drift
    p_jfk = 0.020 * mix
    p_lga = 0.035 * mix
    p_ewr = np.full(n, 0.002)
    p_far = np.full(n, 0.0012 if dirty else 0.0)
    r = rng.random(n)
    kind = np.full(n, _CITY)
    edges = np.cumsum(np.stack([p_jfk, p_lga, p_ewr, p_far]), axis=0)
    for code, edge in zip((_FAR_TRIP, _EWR_TRIP, _LGA_TRIP, _JFK_TRIP), edges[::-1], strict=True):
        kind[r < edge] = code

    px = np.empty(n)
    py = np.empty(n)
    dx = np.empty(n)
    dy = np.empty(n)
    pickup_man = np.zeros(n, dtype=bool)
    dropoff_man = np.zeros(n, dtype=bool)

    # City trips: most start in Manhattan; a few cross the river.
    city = np.flatnonzero(kind == _CITY)
    outer_start = rng.random(city.size) < np.where(night[city], 0.045, 0.03)
    man = city[~outer_start]
    px[man], py[man] = _manhattan_points(rng, man.size, night[man])
    pickup_man[man] = True
    to_outer = rng.random(man.size) < np.where(night[man], 0.085, 0.04) * mix[man]
    leave = man[to_outer]
    stay = man[~to_outer]
    dx[stay], dy[stay] = _manhattan_dropoffs(rng, px[stay], py[stay], night[stay])
    dropoff_man[stay] = True
    dx[leave], dy[leave] = _outer_points(rng, leave.size)

    out = city[outer_start]
    px[out], py[out] = _outer_points(rng, out.size)
    into = rng.random(out.size) < 0.45
    come = out[into]
    local = out[~into]
    dx[come], dy[come] = _manhattan_points(rng, come.size, night[come])
    dropoff_man[come] = True
    length = np.exp(rng.normal(0.35, 0.7, local.size)) * _KM_PER_MILE
    angle = rng.uniform(0.0, 2 * np.pi, local.size)
    dx[local] = px[local] + length * np.cos(angle)
    dy[local] = py[local] + length * np.sin(angle)

    # Airport trips: one end at the terminals, the other mostly in Manhattan.
    for code, place, sd, p_manhattan in (
        (_JFK_TRIP, _JFK, 0.7, 0.72),
        (_LGA_TRIP, _LGA, 0.45, 0.86),
        (_EWR_TRIP, _EWR, 0.6, 0.95),
    ):
        idx = np.flatnonzero(kind == code)
        ax, ay = _near(rng, idx.size, place, sd)
        ox = np.empty(idx.size)
        oy = np.empty(idx.size)
        other_man = rng.random(idx.size) < p_manhattan
        ox[other_man], oy[other_man] = _manhattan_points(rng, int(other_man.sum()), night[idx[other_man]])
        ox[~other_man], oy[~other_man] = _outer_points(rng, int((~other_man).sum()))
        if code != _EWR_TRIP:  # a few JFK <-> LaGuardia transfers
            transfer = ~other_man & (rng.random(idx.size) < 0.15)
            other = _LGA if code == _JFK_TRIP else _JFK
            ox[transfer], oy[transfer] = _near(rng, int(transfer.sum()), other, 0.5)
        outbound = rng.random(idx.size) < 0.5  # from the airport
        px[idx] = np.where(outbound, ax, ox)
        py[idx] = np.where(outbound, ay, oy)
        dx[idx] = np.where(outbound, ox, ax)
        dy[idx] = np.where(outbound, oy, ay)
        pickup_man[idx] = ~outbound & other_man
        dropoff_man[idx] = outbound & other_man

    far = np.flatnonzero(kind == _FAR_TRIP)
    px[far], py[far] = _manhattan_points(rng, far.size, night[far])
    pickup_man[far] = True
    k = rng.integers(0, len(_FAR_SPOTS), far.size)
    fx, fy = _to_xy(_FAR_SPOTS[k, 0], _FAR_SPOTS[k, 1])
    dx[far] = fx + rng.normal(0.0, 3.0, far.size)
    dy[far] = fy + rng.normal(0.0, 3.0, far.size)
    return _Trips(kind, px, py, dx, dy, pickup_man, dropoff_man)


def _day_traffic(seconds: np.ndarray) -> np.ndarray:
    """A congestion factor per calendar day (weather, events): the same for every block."""
    z = (seconds // 86_400).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(29))
    uniform = (z >> np.uint64(11)).astype(np.float64) / 2.0**53
    return np.exp(0.08 * math.sqrt(3.0) * (2.0 * uniform - 1.0))


def _toll(seconds: np.ndarray) -> np.ndarray:
    """East River tunnel / RFK bridge E-ZPass toll of the day."""
    return np.select(
        [seconds < _utc_seconds(pd.Timestamp(d)) for d in ("2010-12-30", "2013-03-03", "2015-03-22")],
        [4.15, 4.57, 5.33],
        5.54,
    )


def _hudson_toll(seconds: np.ndarray) -> np.ndarray:
    return np.select(
        [seconds < _utc_seconds(pd.Timestamp(d)) for d in ("2011-09-18", "2014-12-07")],
        [8.00, 12.00],
        13.00,
    )


def _fares(
    rng: np.random.Generator,
    trips: _Trips,
    seconds: np.ndarray,
    hour: np.ndarray,
    weekday: np.ndarray,
    drift: np.ndarray,
) -> np.ndarray:
    n = seconds.size
    kind = trips.kind
    weekend = weekday >= 5
    post = seconds >= _FARE_RISE

    # Street distance: the rotated grid inside Manhattan, a road factor elsewhere.
    ex, ey = trips.dx - trips.px, trips.dy - trips.py
    straight = np.hypot(ex, ey) / _KM_PER_MILE
    du, dv = _to_uv(ex, ey)
    grid = (np.abs(du) + np.abs(dv)) / _KM_PER_MILE
    both_man = trips.pickup_manhattan & trips.dropoff_manhattan
    road = np.select(
        [kind == _JFK_TRIP, kind == _LGA_TRIP, kind == _EWR_TRIP],
        [1.30, 1.55, 1.45],
        1.30,
    )
    street = np.where(both_man, 1.03 * grid, road * straight)
    street *= np.exp(rng.normal(0.0, 0.10, n))
    detour = rng.random(n) < 0.03
    street[detour] *= rng.uniform(1.2, 2.0, int(detour.sum()))
    street = np.maximum(street, 0.05)

    # Minutes billed by time: traffic by hour and place, highways, years, noise.
    slow = np.where(weekend, _SLOW_WEEKEND[hour], _SLOW_WEEKDAY[hour])
    pu, pv = _to_uv(trips.px, trips.py)
    qu, qv = _to_uv(trips.dx, trips.dy)
    midtown = ((np.abs(pu + 0.2) < 2.2) & (np.abs(pv) < 1.5)) | (
        (np.abs(qu + 0.2) < 2.2) & (np.abs(qv) < 1.5)
    )
    slow = slow * np.where(midtown, 1.2, 1.0)
    slow = slow * np.where(~trips.pickup_manhattan & ~trips.dropoff_manhattan, 0.75, 1.0)
    slow = slow * (1.0 - np.clip((street - 3.0) / 12.0, 0.0, 0.8))
    slow = slow * (1.0 + 0.035 * (seconds - _YEAR0) / _SECONDS_PER_YEAR)
    slow = slow * (1.0 + DRIFT_SLOW_PER_MONTH * drift) * _day_traffic(seconds)
    # Per mile (lights, jams) plus per trip (pulling in and out, finding the door).
    slow_minutes = slow * (street + rng.gamma(2.0, 0.35, n)) * np.exp(rng.normal(-0.15, 0.55, n))
    waits = rng.random(n) < 0.05
    slow_minutes[waits] += rng.exponential(5.0, int(waits.sum()))

    # The meter: a unit per 1/5 mile moving or per minute slow.
    moving = np.maximum(street - slow_minutes / 15.0, 0.5 * street)
    units = np.floor((5.0 * moving + slow_minutes) * (1.0 + DRIFT_PRICE_PER_MONTH * drift))
    fare = 2.50 + np.where(post, 0.50, 0.40) * units

    # Airports: JFK-Manhattan flat fare, Newark surcharge and Hudson toll.
    jfk_flat = (kind == _JFK_TRIP) & (trips.pickup_manhattan | trips.dropoff_manhattan)
    jfk_flat &= rng.random(n) > 0.04  # a few drivers run the meter anyway
    fare = np.where(jfk_flat, np.where(post, 52.0, 45.0), fare)
    ewr = kind == _EWR_TRIP
    fare = fare + np.where(ewr, np.where(post, 17.50, 15.0), 0.0)
    fare = fare + np.where(ewr & (rng.random(n) < 0.8), _hudson_toll(seconds), 0.0)

    # East River tunnels and bridges: some cross-river and airport trips pay a toll.
    crosses = trips.pickup_manhattan != trips.dropoff_manhattan
    p_toll = np.select(
        [(kind == _JFK_TRIP) | (kind == _LGA_TRIP), kind == _CITY],
        [0.45, 0.12],
        0.0,
    )
    fare = fare + np.where(crosses & (rng.random(n) < p_toll), _toll(seconds), 0.0)

    if SURCHARGES_IN_FARE:
        fare = fare + np.where((hour >= 20) | (hour < 6), 0.50, 0.0)
        fare = fare + np.where(~weekend & (hour >= 16) & (hour < 20), 1.00, 0.0)
        fare = fare + np.where(seconds >= _MTA_START, 0.50, 0.0)
    return np.round(fare, 2)


def _civil(seconds: np.ndarray) -> tuple[np.ndarray, ...]:
    """Year, month, day, hour, minute, second of Unix seconds (Hinnant's algorithm)."""
    days, rest = np.divmod(seconds, 86_400)
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day, rest // 3600, rest // 60 % 60, rest % 60


def _keys(seconds: np.ndarray, numbers: np.ndarray) -> pd.Series:
    """`2013-07-02 19:54:00.0000003`: the pickup time and the ride's number (7+ digits)."""
    fields = _civil(seconds)
    digits = np.maximum(7, np.floor(np.log10(np.maximum(numbers, 1))).astype(np.int64) + 1)
    out = np.empty(seconds.size, dtype=object)
    for width in (int(w) for w in np.unique(digits)):
        sel = digits == width
        buf = np.empty((int(sel.sum()), 20 + width), dtype=np.uint8)
        col = 0
        for field, size, sep in zip(fields, (4, 2, 2, 2, 2, 2), "-- ::.", strict=True):
            value = field[sel]
            for k in range(size):
                buf[:, col + size - 1 - k] = 48 + value // 10**k % 10
            buf[:, col + size] = ord(sep)
            col += size + 1
        value = numbers[sel]
        for k in range(width):
            buf[:, col + width - 1 - k] = 48 + value // 10**k % 10
        out[sel] = buf.view(f"S{buf.shape[1]}").ravel().astype(f"U{buf.shape[1]}")
    return pd.Series(out, dtype="str")


def _dirty(rng: np.random.Generator, frame: dict[str, np.ndarray]) -> None:
    """Spoil a realistic share of rows in place (see the module docstring)."""
    fare = frame["fare_amount"]
    n = fare.size
    coords = [frame[c] for c in ("pickup_longitude", "pickup_latitude",
                                 "dropoff_longitude", "dropoff_latitude")]  # fmt: skip
    plon, plat, dlon, dlat = coords

    r = rng.random(n)
    zero = r < 0.020
    which = rng.random(n)
    for arr in (plon, plat):
        arr[zero & (which < 0.8)] = 0.0
    for arr in (dlon, dlat):
        arr[zero & ((which < 0.7) | (which >= 0.8))] = 0.0
    swapped = (r >= 0.020) & (r < 0.0207)
    plon[swapped], plat[swapped] = plat[swapped], plon[swapped].copy()
    dlon[swapped], dlat[swapped] = dlat[swapped], dlon[swapped].copy()
    garbage = (r >= 0.0207) & (r < 0.0211)
    target = rng.integers(0, 4, n)
    for i, arr in enumerate(coords):
        hit = garbage & (target == i)
        arr[hit] = np.round(rng.uniform(-3500.0, 3500.0, int(hit.sum())), 6)

    # Values that are fine but print with a long tail: one ulp off the 6-decimal value.
    artefact = rng.random(n) < 0.005
    for i, arr in enumerate(coords):
        hit = artefact & (target == i) & (arr != 0)
        arr[hit] = np.nextafter(arr[hit], np.inf)

    r = rng.random(n)
    fare[r < 0.00005] = 0.0
    neg = (r >= 0.00005) & (r < 0.0001)
    fare[neg] = -fare[neg]
    high = (r >= 0.0001) & (r < 0.0003)
    fare[high] = np.round(rng.uniform(100.0, 500.0, int(high.sum())), 2)
    absurd = (r >= 0.0003) & (r < 0.000305)
    fare[absurd] = np.round(rng.uniform(1_000.0, 93_963.36, int(absurd.sum())), 2)

    r = rng.random(n)
    missing = r < 0.0001
    dlon[missing] = np.nan
    dlat[missing] = np.nan
    passengers = frame["passenger_count"]
    mask = frame["passenger_na"]
    passengers[(r >= 0.0001) & (r < 0.0041)] = 0
    odd = (r >= 0.0041) & (r < 0.00412)
    passengers[odd] = rng.choice(np.array([7, 9, 129, 208]), int(odd.sum()))
    mask[(r >= 0.00412) & (r < 0.00417)] = True

    # Exact duplicates: a row repeated just after itself (time order is kept).
    dup = np.flatnonzero(rng.random(n - 1) < 0.0002) if n > 1 else np.array([], dtype=np.int64)
    for arr in frame.values():
        arr[dup + 1] = arr[dup]


def _rides(
    rng: np.random.Generator,
    seconds: np.ndarray,
    *,
    dirty: bool,
    first_index: int,
    keep: int | None = None,
) -> pd.DataFrame:
    """Rides picked up at `seconds`, numbered from `first_index` + 1.

    All of them are drawn (so the random stream does not depend on `keep`); only the
    first `keep` are formatted and returned.
    """
    n = seconds.size
    hour = (seconds // 3600 % 24).astype(np.int64)
    weekday = (seconds // 86_400 + 3) % 7
    drift = np.maximum(0.0, (seconds - _DRIFT_START) / _SECONDS_PER_MONTH)

    trips = _trips(rng, hour, drift, dirty)
    fare = _fares(rng, trips, seconds, hour, weekday, drift)
    same = rng.random(n) < 0.01  # the GPS lost the trip: dropoff recorded at the pickup
    trips.dx[same] = trips.px[same]
    trips.dy[same] = trips.py[same]
    plat, plon = _to_latlon(trips.px, trips.py)
    dlat, dlon = _to_latlon(trips.dx, trips.dy)

    cols: dict[str, np.ndarray] = {
        "number": first_index + 1 + np.arange(n, dtype=np.int64),
        "seconds": seconds.copy(),
        "fare_amount": fare,
        "pickup_longitude": np.round(plon, 6),
        "pickup_latitude": np.round(plat, 6),
        "dropoff_longitude": np.round(dlon, 6),
        "dropoff_latitude": np.round(dlat, 6),
        "passenger_count": _PASSENGERS[_choice(rng, _PASSENGER_SHARES, n)],
        "passenger_na": np.zeros(n, dtype=bool),
    }
    if dirty:
        _dirty(rng, cols)

    stop = n if keep is None else keep
    cols = {name: arr[:stop] for name, arr in cols.items()}
    pickup = pd.Series(cols["seconds"] * 1_000_000_000).astype("datetime64[ns]")
    return pd.DataFrame(
        {
            "key": _keys(cols["seconds"], cols["number"]),
            "fare_amount": cols["fare_amount"].astype(np.float64),
            "pickup_datetime": pickup.dt.tz_localize("UTC"),
            **{c: cols[c].astype(np.float64) for c in COORD_COLUMNS},
            "passenger_count": pd.arrays.IntegerArray(
                cols["passenger_count"].astype(np.int64), cols["passenger_na"].copy()
            ),
        },
        columns=list(RAW_COLUMNS),
    )


# --- public API -----------------------------------------------------------------------
def simulate_rides(
    n: int, *, seed: int, start: pd.Timestamp, end: pd.Timestamp, dirty: bool = True
) -> pd.DataFrame:
    """n rides picked up between start and end (UTC), spread with the hour/weekday profile of taxis.

    Naive timestamps are taken as UTC. The rows are in random time order; their keys are
    numbered 1..n. Same arguments, same DataFrame.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    lo, hi = _utc_seconds(start), _utc_seconds(end)
    if hi <= lo:
        raise ValueError(f"end ({end}) must be after start ({start})")
    rng = _rng(seed, "rides", lo, hi)
    seconds = _Clock.between(lo, hi).sample(rng, n)
    return _rides(rng, seconds, dirty=dirty, first_index=0)


@dataclass(frozen=True)
class _Draw:
    """The rows a dataset is sliced from: numbered blocks of `BLOCK_ROWS` random rides.

    A size dataset draws each block over 2009-01..2015-06 from its own stream. A month
    draws all its pickup times first (sorted), then each block's rides at those times.
    """

    seed: int
    label: str
    month: int | None = None
    month_rows: int = 0

    def clock(self) -> _Clock:
        if self.month is None:
            return _Clock.between(_utc_seconds(SIZE_START), _utc_seconds(SIZE_END))
        start = pd.Timestamp(year=2015, month=self.month, day=1, tz="UTC")
        return _Clock.between(_utc_seconds(start), _utc_seconds(start + pd.DateOffset(months=1)))

    def month_times(self) -> np.ndarray:
        rng = _rng(self.seed, self.label, "times")
        return np.sort(self.clock().sample(rng, self.month_rows), kind="stable")

    def block(self, index: int, stop: int, clock: _Clock, times: np.ndarray | None) -> pd.DataFrame:
        rng = _rng(self.seed, self.label, index)
        first = index * BLOCK_ROWS
        seconds = clock.sample(rng, BLOCK_ROWS) if times is None else times[first : first + BLOCK_ROWS]
        return _rides(rng, seconds, dirty=True, first_index=first, keep=stop)

    def rows(self, lo: int, hi: int, chunk_size: int) -> Iterator[pd.DataFrame]:
        """Rows lo..hi-1 of the draw in chunks of `chunk_size`, indexed from 0."""
        clock = self.clock()
        times = self.month_times() if self.month is not None else None
        cached: tuple[int, pd.DataFrame] | None = None
        for start in range(lo, hi, chunk_size):
            end = min(start + chunk_size, hi)
            parts = []
            pos = start
            while pos < end:
                index = pos // BLOCK_ROWS
                first = index * BLOCK_ROWS
                if cached is None or cached[0] != index:
                    cached = (index, self.block(index, min(BLOCK_ROWS, hi - first), clock, times))
                upto = min(end, first + BLOCK_ROWS)
                parts.append(cached[1].iloc[pos - first : upto - first])
                pos = upto
            chunk = parts[0] if len(parts) == 1 else pd.concat(parts)
            yield chunk.set_axis(pd.RangeIndex(start - lo, end - lo), axis=0)


def _dataset(
    name: str, seed: int, rows: int | None, month_rows: int, all_rows: int
) -> tuple[_Draw, int, int]:
    """The draw behind `name` and the rows [lo, hi) of it that the dataset holds."""
    parsed = parse_dataset_name(name)
    if rows is not None and rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if parsed.is_month:
        if month_rows < 0:
            raise ValueError(f"month_rows must be >= 0, got {month_rows}")
        draw = _Draw(seed, f"month:2015-{parsed.month_number:02d}", parsed.month_number, month_rows)
        cut = round(month_rows * MONTH_TRAIN_FRACTION)
        lo, hi = (0, cut) if parsed.split == "train" else (cut, month_rows)
        return draw, lo, hi if rows is None else min(hi, lo + rows)
    size = SIZES[parsed.part]
    count = rows if rows is not None else (all_rows if size is None else size)
    if count < 0:
        raise ValueError(f"all_rows must be >= 0, got {count}")
    return _Draw(seed, f"size:{parsed}"), 0, count


def simulate_dataset(
    name: str,
    *,
    seed: int = 42,
    rows: int | None = None,
    month_rows: int = 100_000,
    all_rows: int = 2_000_000,
) -> pd.DataFrame:
    """The simulated raw rows of dataset `name` (`train_10k`, `val_1m`, `train_all`, `val_jun`).

    Sizes hold `schema.SIZES` rows (`all`: `all_rows`) drawn over 2009-01..2015-06, the
    train and val splits drawn independently. A 2015 month is one draw of `month_rows`
    rides sorted by pickup time: `train_<m>` is its first `MONTH_TRAIN_FRACTION`, `val_<m>`
    the rest. `rows`, when given, keeps only the first `rows` rows of the dataset (a
    prefix: the rows themselves do not change). Raises ValueError on an unknown name.
    """
    draw, lo, hi = _dataset(name, seed, rows, month_rows, all_rows)
    chunks = list(draw.rows(lo, hi, BLOCK_ROWS))
    if not chunks:
        return _rides(_rng(seed, "empty"), np.zeros(0, dtype=np.int64), dirty=False, first_index=0)
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks)


def iter_simulated_dataset(
    name: str,
    *,
    chunk_size: int,
    seed: int = 42,
    rows: int | None = None,
    month_rows: int = 100_000,
    all_rows: int = 2_000_000,
) -> Iterator[pd.DataFrame]:
    """Same rows as simulate_dataset, generated chunk by chunk so memory stays flat.

    Byte-identical to `simulate_dataset` when concatenated, for any chunk_size; for
    millions of rows the memory used is that of a chunk and a block. Each chunk has
    `chunk_size` rows (the last one fewer) and an index that continues the previous
    chunk's. An empty dataset yields no chunk. Bad arguments raise ValueError at the call,
    not at the first chunk.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
    draw, lo, hi = _dataset(name, seed, rows, month_rows, all_rows)  # bad names raise here
    return draw.rows(lo, hi, chunk_size)
