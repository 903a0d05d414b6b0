"""The one pricing path: raw rides in, fares out.

`model predict`, the MLflow pyfunc, the workflow and the web service all price
rides here, so they agree to the cent. The network's forward pass is passed
in (`FareModel.predict_features`); this module only types, checks and
computes features.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from taxifare_cli.core.cleaning import CleaningReport, clean_chunk
from taxifare_cli.core.features import compute_features
from taxifare_cli.core.schema import COORD_COLUMNS

Forward = Callable[[np.ndarray], np.ndarray]
InvalidRides = Literal["error", "nan"]

NEW_YORK_HINT = (
    "both ends must lie in New York (latitude 40.5-40.9, longitude -74.3 to -73.7), with 1 to 7 passengers, "
    "between 2009 and 2030"
)
# No ride costs less than the flag drop of the meter ($2.50 through 2009-2015): a network's
# output below it on an odd ride is an extrapolation, never a negative fare.
MIN_FARE = 2.50


class UnpriceableRides(ValueError):
    """Some rides cannot be priced (outside New York, no time, 0 passengers...)."""

    def __init__(self, report: CleaningReport, total: int) -> None:
        reasons = ", ".join(f"{n} {reason}" for reason, n in report.dropped.most_common())
        super().__init__(f"{report.rows_dropped} of {total} rides cannot be priced ({reasons})")
        self.report = report
        self.total = total


@dataclass
class PricedRides:
    """One fare per input row, in input order; NaN where a ride could not be priced."""

    fares: np.ndarray
    report: CleaningReport


def price_rides(forward: Forward, rides: pd.DataFrame, *, invalid: InvalidRides = "error") -> PricedRides:
    """Fares for raw rides (any index, raw or typed columns).

    `pickup_datetime` may be raw text (`2015-01-15 08:30:00 UTC`), ISO 8601 or
    datetimes (naive ones are UTC); `passenger_count` defaults to 1. Rides that
    cannot be priced raise UnpriceableRides, or get NaN with `invalid="nan"`.
    """
    frame = typed_rides(rides)
    clean, report = clean_chunk(frame, require_fare=False, dedupe=False)
    if report.rows_dropped and invalid == "error":
        raise UnpriceableRides(report, len(frame))
    fares = np.full(len(frame), np.nan)
    if len(clean):
        fares[clean.index.to_numpy()] = np.maximum(forward(compute_features(clean)), MIN_FARE)
    return PricedRides(fares, report)


def typed_rides(rides: pd.DataFrame) -> pd.DataFrame:
    """The ride fields typed as `core.cleaning` expects, on a fresh 0..n-1 index."""
    if not isinstance(rides, pd.DataFrame):
        rides = pd.DataFrame(rides)
    missing = [c for c in ("pickup_datetime", *COORD_COLUMNS) if c not in rides.columns]
    if missing:
        raise ValueError(f"rides lack the column(s) {', '.join(missing)}")
    n = len(rides)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["pickup_datetime"] = utc_times(rides["pickup_datetime"]).to_numpy()
    for c in COORD_COLUMNS:
        out[c] = pd.to_numeric(rides[c], errors="coerce").astype("float64").to_numpy()
    if "passenger_count" in rides.columns:
        out["passenger_count"] = (
            pd.to_numeric(rides["passenger_count"], errors="coerce").astype("float64").to_numpy()
        )
    else:
        out["passenger_count"] = 1.0
    return out


def utc_times(values: pd.Series) -> pd.Series:
    """Pickup times as timezone-aware UTC; unparseable ones become NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")  # raw rides are stamped in UTC
    text = values.astype("string").str.replace(" UTC", "", regex=False)
    return pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
