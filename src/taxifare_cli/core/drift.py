"""Drift of a new month's rides against the rides a model was trained on.

Four quantities are compared, each the way its type allows:

* **trip distance** (straight-line km), **fare** and **pickup hour** (New York wall clock,
  fractional) are continuous: population-stability index (PSI) on ten reference-quantile
  bins, and the two-sample Kolmogorov–Smirnov statistic;
* **pickup area** (Manhattan, JFK, LaGuardia, Newark, other) is a category: PSI over the
  union of the areas.

Both statistics are effect sizes, not tests: with tens of thousands of rows any
difference, however harmless, has a tiny p-value, so flagging on p-values would flag every
month. `RideSample` keeps a bounded, uniform sample of a file fed chunk by chunk, so a
month of any size is compared with flat memory.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from taxifare_cli.core import simulator as _simulator
from taxifare_cli.core.features import AIRPORT_RADIUS_KM, PLACES, haversine_km, local_time

__all__ = [
    "AREAS",
    "DEFAULT_CAPACITY",
    "KS_THRESHOLD",
    "PSI_THRESHOLD",
    "DriftItem",
    "DriftReport",
    "RideSample",
    "drift_report",
    "ks_statistic",
    "pickup_area",
    "psi",
    "psi_categorical",
]

PSI_THRESHOLD = 0.2
KS_THRESHOLD = 0.05
# Significance of the KS test at which a shift is not sampling noise (small samples need more).
KS_ALPHA = 0.001
PSI_EPSILON = 1e-4
"""Smallest share a bin is given, so that an empty bin costs a large but finite PSI."""
DEFAULT_CAPACITY = 50_000

# Pickup areas. A pickup within features.AIRPORT_RADIUS_KM of an airport is the airport's (the
# airports are 10+ km apart: the circles do not overlap).
AREAS: tuple[str, ...] = ("Manhattan", "JFK", "LaGuardia", "Newark", "other")
_AIRPORT_AREAS: tuple[tuple[str, str], ...] = (("JFK", "jfk"), ("LaGuardia", "lga"), ("Newark", "ewr"))

# Display names of the quantities, in report order.
DISTANCE, FARE, HOUR, AREA = "trip distance", "fare", "pickup hour", "pickup area"
_NEEDED = (
    "fare_amount",
    "pickup_datetime",
    "pickup_longitude",
    "pickup_latitude",
    "dropoff_longitude",
    "dropoff_latitude",
)


# --- statistics -------------------------------------------------------------------------
def _values(x: ArrayLike, what: str) -> np.ndarray:
    """A 1-d float array without NaNs; ValueError if nothing is left."""
    a = np.asarray(x, dtype="float64").ravel()
    a = a[~np.isnan(a)]
    if a.size == 0:
        raise ValueError(f"{what} has no values (empty or all NaN)")
    return a


def _psi_from_shares(ref: np.ndarray, cur: np.ndarray) -> float:
    ref = np.maximum(ref, PSI_EPSILON)
    cur = np.maximum(cur, PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi(reference: ArrayLike, current: ArrayLike, *, bins: int = 10) -> float:
    """Population-stability index of a continuous quantity: sum (c - r) ln(c / r) over bins.

    The bins are the reference's quantiles (edges at 1/bins, 2/bins...; duplicated edges of
    tied values merged, so heavily tied data gets fewer bins); the outer bins are open to
    ±inf, so current values beyond the reference's range still count. A bin holds the values
    in (lower edge, upper edge]. Shares are floored at PSI_EPSILON so an empty bin gives a
    large finite value rather than inf. NaNs are dropped; ValueError if a side has no value.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    ref = _values(reference, "reference")
    cur = _values(current, "current")
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    edges = edges[np.isfinite(edges)]  # an edge between infinities is NaN
    n_bins = edges.size + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=n_bins)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=n_bins)
    return _psi_from_shares(ref_counts / ref.size, cur_counts / cur.size)


def psi_categorical(reference_labels: Iterable[Hashable], current_labels: Iterable[Hashable]) -> float:
    """Population-stability index of a category, over the union of both sides' categories.

    A category missing on one side has share PSI_EPSILON there. Missing labels (None/NaN)
    are dropped; ValueError if a side has no label.
    """
    ref = pd.Series(list(reference_labels), dtype=object).value_counts(normalize=True, dropna=True)
    cur = pd.Series(list(current_labels), dtype=object).value_counts(normalize=True, dropna=True)
    if ref.empty or cur.empty:
        raise ValueError(f"{'reference' if ref.empty else 'current'} has no labels")
    union = ref.index.union(cur.index, sort=False)
    return _psi_from_shares(
        ref.reindex(union, fill_value=0.0).to_numpy(dtype="float64"),
        cur.reindex(union, fill_value=0.0).to_numpy(dtype="float64"),
    )


def ks_statistic(reference: ArrayLike, current: ArrayLike) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical CDFs.

    Both CDFs are evaluated at every observed value (right-continuous, so ties are exact);
    equal to `scipy.stats.ks_2samp(...).statistic`. NaNs are dropped; ValueError if a side
    has no value.
    """
    ref = np.sort(_values(reference, "reference"))
    cur = np.sort(_values(current, "current"))
    at = np.concatenate([ref, cur])
    cdf_ref = np.searchsorted(ref, at, side="right") / ref.size
    cdf_cur = np.searchsorted(cur, at, side="right") / cur.size
    return float(np.max(np.abs(cdf_ref - cdf_cur)))


# --- the quantities of a ride -----------------------------------------------------------
def _coords(df: pd.DataFrame, *cols: str) -> list[np.ndarray]:
    return [df[c].to_numpy(dtype="float64", na_value=np.nan) for c in cols]


def _in_manhattan(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Whether (lat, lon) is on Manhattan, by the simulator's shoreline polygon (Central Park out).

    Meanwhile a wrapper around the simulator's private polygon test (no copy of the polygon):
    to be replaced by a public `in_manhattan(lat, lon)` in core once there is one.
    """
    x, y = _simulator._to_xy(lat, lon)
    return np.asarray(_simulator._in_manhattan(x, y))


def pickup_area(df: pd.DataFrame) -> np.ndarray:
    """The pickup area of each ride (an AREAS label), as an object array.

    An airport when within `features.AIRPORT_RADIUS_KM` of it (as the airport features
    count it), else Manhattan when on the island, else "other" (missing coordinates too).
    """
    lat, lon = _coords(df, "pickup_latitude", "pickup_longitude")
    area = np.full(lat.shape, "other", dtype=object)
    with np.errstate(invalid="ignore"):
        area[_in_manhattan(lat, lon)] = "Manhattan"
        for label, place in _AIRPORT_AREAS:
            plat, plon = PLACES[place]
            area[haversine_km(lat, lon, plat, plon) < AIRPORT_RADIUS_KM] = label
    return area


def _distance_km(df: pd.DataFrame) -> np.ndarray:
    plat, plon, dlat, dlon = _coords(
        df, "pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"
    )
    return haversine_km(plat, plon, dlat, dlon)


def _hour(df: pd.DataFrame) -> np.ndarray:
    """Fractional hour of the day on the New York wall clock (14.5 is 2:30 pm)."""
    t = local_time(df["pickup_datetime"])
    return np.asarray(t.hour + t.minute / 60.0 + t.second / 3600.0, dtype="float64")


# --- the report -------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftItem:
    """One quantity's drift: PSI, KS (None for a category) and whether it is flagged."""

    quantity: str
    psi: float
    ks: float | None
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    """Drift per quantity between a reference and a current set of rides."""

    items: list[DriftItem]
    reference_rows: int
    current_rows: int
    psi_threshold: float
    ks_threshold: float

    @property
    def drifted(self) -> bool:
        return any(item.drifted for item in self.items)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: statistics rounded to 4 decimals."""
        return {
            "drifted": self.drifted,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "psi_threshold": self.psi_threshold,
            "ks_threshold": self.ks_threshold,
            "items": [
                {
                    "quantity": item.quantity,
                    "psi": round(item.psi, 4),
                    "ks": None if item.ks is None else round(item.ks, 4),
                    "drifted": item.drifted,
                }
                for item in self.items
            ],
        }

    def summary(self) -> str:
        """One line: "drift in fare (PSI 0.31), pickup hour (KS 0.12)" or "no drift"."""
        parts = []
        for item in self.items:
            if not item.drifted:
                continue
            why = []
            if item.psi > self.psi_threshold:
                why.append(f"PSI {item.psi:.2f}")
            if item.ks is not None and item.ks > self.ks_threshold:
                why.append(f"KS {item.ks:.2f}")
            parts.append(f"{item.quantity} ({', '.join(why)})")
        return f"drift in {', '.join(parts)}" if parts else "no drift"


def ks_critical(n: int, m: int, alpha: float = KS_ALPHA) -> float:
    """The two-sample KS statistic above which equal distributions are rejected at `alpha`."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    psi_threshold: float = PSI_THRESHOLD,
    ks_threshold: float = KS_THRESHOLD,
) -> DriftReport:
    """Drift of `current` rides against `reference` rides, both CLEAN (the caller cleans).

    A quantity is flagged when its PSI exceeds `psi_threshold` or its KS statistic exceeds
    `ks_threshold`.

    * PSI 0.2 is the usual rule of thumb (from credit scoring): below 0.1 no real change,
      0.1-0.2 a moderate one worth watching, above 0.2 a significant shift of the population.
    * KS 0.05 means the two CDFs are five percentage points apart somewhere, e.g. one ride
      in twenty moved from below a fare to above it: a shift a model feels (a 15 % rise of
      fares over six months shows as KS 0.08-0.1). It is an effect size; on small samples
      the threshold is raised to the KS critical value at KS_ALPHA, so that noise is never
      flagged (the report's `ks_threshold` is the one applied).

    Both are far above the sampling noise at the default sample sizes (at 50,000 rows a
    side, about 0.0004 for PSI on ten bins and 0.01 for KS), so equal distributions are not
    flagged. Raises ValueError when a frame misses a needed column or has no rows.
    """
    for name, df in (("reference", reference), ("current", current)):
        missing = [c for c in _NEEDED if c not in df.columns]
        if missing:
            raise ValueError(f"{name} rides miss columns: {', '.join(missing)}")
        if len(df) == 0:
            raise ValueError(f"{name} has no rides")

    ks_threshold = max(ks_threshold, ks_critical(len(reference), len(current)))
    items: list[DriftItem] = []
    continuous: Sequence[tuple[str, np.ndarray, np.ndarray]] = (
        (DISTANCE, _distance_km(reference), _distance_km(current)),
        (FARE, _coords(reference, "fare_amount")[0], _coords(current, "fare_amount")[0]),
        (HOUR, _hour(reference), _hour(current)),
    )
    for quantity, ref, cur in continuous:
        p, ks = psi(ref, cur), ks_statistic(ref, cur)
        items.append(DriftItem(quantity, p, ks, p > psi_threshold or ks > ks_threshold))
    p = psi_categorical(pickup_area(reference), pickup_area(current))
    items.append(DriftItem(AREA, p, None, p > psi_threshold))
    return DriftReport(items, len(reference), len(current), psi_threshold, ks_threshold)


# --- a bounded sample of a file read in chunks ----------------------------------------------
class RideSample:
    """A uniform sample of at most `capacity` rows of a stream of chunks (reservoir sampling).

    Algorithm R, vectorised per chunk: row i (0-based, counted over all chunks) fills slot i
    while i < capacity; afterwards it replaces slot j = uniform{0..i} when j < capacity, so
    every row seen ends up in the sample with the same probability capacity / rows seen.
    Memory stays bounded by about twice the capacity plus a chunk: chosen rows are kept
    aside and merged into the sample once they number `capacity`. Deterministic for a
    given seed and chunking.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, *, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.rows_seen = 0
        self._rng = np.random.default_rng(seed)
        self._base: pd.DataFrame | None = None  # the sample at the last merge, in slot order
        self._pending: list[pd.DataFrame] = []  # rows chosen since, in arrival order
        self._pending_rows = 0
        # slot -> row of concat([base, *pending]); only the first len(self) slots are used.
        self._source = np.arange(capacity, dtype=np.int64)
        self._filled = 0

    def __len__(self) -> int:
        return self._filled

    def add(self, chunk: pd.DataFrame) -> None:
        """Feed the next chunk of rows: the first chunk's columns are kept (KeyError if one is missing)."""
        m = len(chunk)
        if self._base is None or (self._base.columns.empty and self.rows_seen == 0):
            self._base = chunk.iloc[:0]
        if m == 0:
            return
        if not chunk.columns.equals(self._base.columns) and not self._base.columns.empty:
            chunk = chunk[list(self._base.columns)]
        first = self.rows_seen
        k = self.capacity

        fill = max(0, min(m, k - first))  # rows that take a free slot
        slots = np.arange(first, first + fill, dtype=np.int64)
        rows = np.arange(fill, dtype=np.int64)
        if fill < m:
            index = np.arange(first + fill, first + m, dtype=np.int64)  # global row numbers
            draw = self._rng.integers(0, index + 1)
            hit = np.flatnonzero(draw < k)
            slots = np.concatenate([slots, draw[hit]])
            rows = np.concatenate([rows, fill + hit])
        self.rows_seen += m
        self._filled = min(k, self.rows_seen)
        if rows.size == 0:
            return
        # A later row overwrites an earlier one in the same slot (Algorithm R goes row by row):
        # keep the last row per slot, in arrival order.
        _, last = np.unique(slots[::-1], return_index=True)
        keep = np.sort(rows.size - 1 - last)
        slots, rows = slots[keep], rows[keep]
        offset = len(self._base) + self._pending_rows
        self._source[slots] = offset + np.arange(rows.size, dtype=np.int64)
        self._pending.append(chunk.iloc[rows])
        self._pending_rows += rows.size
        if self._pending_rows >= k:
            self._merge()

    def _merge(self) -> None:
        if self._base is None or not self._pending:
            return
        whole = pd.concat([self._base, *self._pending], ignore_index=True)
        self._base = whole.iloc[self._source[: self._filled]].reset_index(drop=True)
        self._source[: self._filled] = np.arange(self._filled, dtype=np.int64)
        self._pending = []
        self._pending_rows = 0

    def frame(self) -> pd.DataFrame:
        """The sample (a copy, indexed 0..len-1, in slot order); empty before any chunk."""
        self._merge()
        return pd.DataFrame() if self._base is None else self._base.copy()
