"""Cleaning rules for raw rides, applied vectorised, with a count per reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from taxifare_cli.core.rules import DEFAULT_RULES, REASONS, CleaningRules
from taxifare_cli.core.schema import COORD_COLUMNS, RAW_COLUMNS

__all__ = [
    "DEFAULT_RULES",
    "REASONS",
    "CleaningReport",
    "CleaningRules",
    "check_ride_fields",
    "clean_chunk",
    "clean_rows",
    "inside_nyc",
]


@dataclass
class CleaningReport:
    """Rows seen, kept, and dropped per reason, summed over chunks."""

    rows_in: int = 0
    rows_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def add(self, other: CleaningReport) -> None:
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.dropped.update(other.dropped)

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": {r: self.dropped[r] for r in REASONS if self.dropped[r]},
        }


def inside_nyc(df: pd.DataFrame, rules: CleaningRules = DEFAULT_RULES) -> np.ndarray:
    """Boolean mask: both pickup and dropoff inside the New York box."""
    ok = np.ones(len(df), dtype=bool)
    with np.errstate(invalid="ignore"):
        for name in ("pickup_latitude", "dropoff_latitude"):
            lat = df[name].to_numpy(dtype="float64", na_value=np.nan)
            ok &= (lat >= rules.lat_min) & (lat <= rules.lat_max)
        for name in ("pickup_longitude", "dropoff_longitude"):
            lon = df[name].to_numpy(dtype="float64", na_value=np.nan)
            ok &= (lon >= rules.lon_min) & (lon <= rules.lon_max)
    return ok


def clean_chunk(
    df: pd.DataFrame,
    rules: CleaningRules = DEFAULT_RULES,
    *,
    require_fare: bool = True,
    dedupe: bool = True,
) -> tuple[pd.DataFrame, CleaningReport]:
    """Drop unusable rows, counting each under the first rule it breaks.

    Duplicates are found within a chunk only: remembering every row of a file
    would make memory grow with the data.
    """
    keep, report = clean_rows(df, rules, require_fare=require_fare, dedupe=dedupe)
    # take() on positions: half the cost of a boolean .loc on a frame with a text column.
    out = df.take(np.flatnonzero(keep))
    out.attrs = {}
    return out, report


def clean_rows(
    df: pd.DataFrame,
    rules: CleaningRules = DEFAULT_RULES,
    *,
    require_fare: bool = True,
    dedupe: bool = True,
) -> tuple[np.ndarray, CleaningReport]:
    """What `clean_chunk` keeps, as a boolean mask over `df`'s rows, and its report.

    For callers that need a few columns of the kept rows, not a new frame of all of them.
    """
    report = CleaningReport(rows_in=len(df))
    malformed = int(df.attrs.get("malformed_rows", 0))
    if malformed:
        report.rows_in += malformed
        report.dropped["malformed line"] += malformed

    needed = [c for c in RAW_COLUMNS if c != "key" and (require_fare or c != "fare_amount")]
    keep = _not_missing(df, needed)
    _count(report, "missing or unparseable value", keep)

    if dedupe:
        keep = _apply(report, "duplicate", keep, ~duplicated_rows(df, list(RAW_COLUMNS[1:])))

    if require_fare:
        fare = df["fare_amount"].to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            ok = (fare > rules.fare_min) & (fare < rules.fare_max)
        keep = _apply(report, "fare out of range", keep, ok)

    pax = df["passenger_count"].to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        ok = (pax >= rules.passengers_min) & (pax <= rules.passengers_max) & (pax == np.floor(pax))
    keep = _apply(report, "passenger count out of range", keep, ok)

    years = pd.DatetimeIndex(df["pickup_datetime"]).year.to_numpy()
    with np.errstate(invalid="ignore"):
        ok = (years >= rules.year_min) & (years <= rules.year_max)
    keep = _apply(report, "pickup time out of range", keep, ok)

    keep = _apply(report, "outside New York", keep, inside_nyc(df, rules))
    report.rows_out = int(keep.sum())
    return keep, report


def _not_missing(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Rows with a value in every one of `columns` (DataFrame.notna, column by column)."""
    keep = np.ones(len(df), dtype=bool)
    for c in columns:
        keep &= np.asarray(df[c].notna())
    return keep


def duplicated_rows(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """`df.duplicated(subset=columns)` as a boolean array, by a row hash.

    Only rows whose 64-bit hash is shared are compared exactly (by pandas, in their
    order, so the first of each group is kept as before); with the raw schema's
    numeric and datetime columns that is a few dozen rows in a hundred thousand.
    Equal values hash alike as pandas compares them: 0.0 and -0.0, and any two NaNs.
    """
    h = np.zeros(len(df), dtype=np.uint64)
    for c in columns:
        b = _hashable_bits(df[c])
        if b is None:  # a column not as the reader makes it: pandas does it all
            return np.asarray(df.duplicated(subset=columns))
        h ^= b
        h *= _MIX
        h ^= h >> np.uint64(31)
    ordered = np.sort(h)
    shared = ordered[1:][ordered[1:] == ordered[:-1]]
    dup = np.zeros(len(df), dtype=bool)
    if len(shared):
        rows = np.flatnonzero(np.isin(h, shared))
        dup[rows] = np.asarray(df.iloc[rows].duplicated(subset=columns))
    return dup


_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd, with well-spread bits: multiplying mixes them upwards
_NAN_BITS = np.float64(np.nan).view(np.uint64)


def _hashable_bits(col: pd.Series) -> np.ndarray | None:
    """The column's values as uint64 such that values pandas finds equal get equal bits."""
    dtype = col.dtype
    if dtype == np.float64:
        values = col.to_numpy()
        # -0.0 + 0.0 is 0.0; NaNs may differ in their payload bits, so give them one pattern.
        bits = (values + 0.0).view(np.uint64)
        nan = np.isnan(values)
        if nan.any():
            bits[nan] = _NAN_BITS
        return bits
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        return pd.DatetimeIndex(col).asi8.view(np.uint64)  # NaT is one int64 value
    return None


def _count(report: CleaningReport, reason: str, keep: np.ndarray) -> None:
    n = int((~keep).sum())
    if n:
        report.dropped[reason] += n


def _apply(report: CleaningReport, reason: str, keep: np.ndarray, ok: np.ndarray) -> np.ndarray:
    newly = keep & ~ok
    n = int(newly.sum())
    if n:
        report.dropped[reason] += n
    return keep & ok


def check_ride_fields(df: pd.DataFrame) -> None:
    """Raise ValueError naming missing coordinate columns (used by predict)."""
    missing = [c for c in COORD_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
