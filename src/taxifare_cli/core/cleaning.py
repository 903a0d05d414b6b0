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
    lat = df[["pickup_latitude", "dropoff_latitude"]].to_numpy()
    lon = df[["pickup_longitude", "dropoff_longitude"]].to_numpy()
    ok = (lat >= rules.lat_min) & (lat <= rules.lat_max)
    ok &= (lon >= rules.lon_min) & (lon <= rules.lon_max)
    return np.asarray(ok.all(axis=1))


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
    report = CleaningReport(rows_in=len(df))
    malformed = int(df.attrs.get("malformed_rows", 0))
    if malformed:
        report.rows_in += malformed
        report.dropped["malformed line"] += malformed

    needed = [c for c in RAW_COLUMNS if c != "key" and (require_fare or c != "fare_amount")]
    keep = np.asarray(df[needed].notna().all(axis=1))
    _count(report, "missing or unparseable value", keep)

    if dedupe:
        dup = df.duplicated(subset=list(RAW_COLUMNS[1:])).to_numpy()
        keep = _apply(report, "duplicate", keep, ~dup)

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

    with np.errstate(invalid="ignore"):
        keep = _apply(report, "outside New York", keep, inside_nyc(df, rules))

    out = df.loc[keep]
    out.attrs = {}
    report.rows_out = len(out)
    return out, report


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
