"""The one pricing path: raw rides in, fares out.

`model predict --input` and the MLflow pyfunc price rides here, so they agree
to the cent. The network's forward pass is passed in
(`FareModel.predict_features`); this module only types, checks and computes
features (evaluation prices clean rides with `FareModel.predict`). One ride
from the command line and the web service's requests are priced without
pandas (`core.few_rides.price_few`): the same rules, features and floor, so
the same fares, bit for bit (tests/unit/test_few_rides.py,
tests/integration/test_pricing_paths.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from taxifare_cli.core.cleaning import CleaningReport, clean_rows
from taxifare_cli.core.features import compute_features
from taxifare_cli.core.few_rides import MIN_FARE, NEW_YORK_HINT, Forward, fares_of
from taxifare_cli.core.schema import COORD_COLUMNS

__all__ = [
    "MIN_FARE",
    "NEW_YORK_HINT",
    "Forward",
    "InvalidRides",
    "PreparedRides",
    "PricedRides",
    "UnpriceableRides",
    "prepare_rides",
    "price_rides",
    "typed_rides",
    "utc_times",
]

InvalidRides = Literal["error", "nan"]


class UnpriceableRides(ValueError):
    """Some rides cannot be priced (outside New York, no time, 0 passengers...)."""

    def __init__(self, report: CleaningReport, total: int) -> None:
        reasons = ", ".join(f"{n} {reason}" for reason, n in report.dropped.most_common())
        super().__init__(f"{report.rows_dropped} of {total} rides cannot be priced ({reasons})")
        self.report = report
        self.total = total


@dataclass
class PricedRides:
    """One fare per input row in cents, in input order; NaN where a ride could not be priced."""

    fares: np.ndarray
    report: CleaningReport


def price_rides(forward: Forward, rides: pd.DataFrame, *, invalid: InvalidRides = "error") -> PricedRides:
    """Fares for raw rides (any index, raw or typed columns).

    `pickup_datetime` may be raw text (`2015-01-15 08:30:00 UTC`), ISO 8601 or
    datetimes (naive ones are UTC); `passenger_count` defaults to 1. Rides that
    cannot be priced raise UnpriceableRides, or get NaN with `invalid="nan"`.
    """
    return prepare_rides(rides, invalid=invalid).priced(forward)


@dataclass
class PreparedRides:
    """Rides checked and turned into features: everything of `price_rides` but the network.

    A file is priced in two stages (`services.prediction`): this one on a reading thread,
    the forward pass on the other.
    """

    rows: int
    kept: np.ndarray  # positions (0..rows-1) of the rides that can be priced
    features: np.ndarray  # one row per kept ride
    report: CleaningReport

    def priced(self, forward: Forward) -> PricedRides:
        fares = np.full(self.rows, np.nan)
        if len(self.kept):
            fares[self.kept] = fares_of(forward(self.features))
        return PricedRides(fares, self.report)


def prepare_rides(rides: pd.DataFrame, *, invalid: InvalidRides = "error") -> PreparedRides:
    """`price_rides` up to the forward pass (same arguments, same UnpriceableRides)."""
    frame = typed_rides(rides)
    keep, report = clean_rows(frame, require_fare=False, dedupe=False)
    if report.rows_dropped and invalid == "error":
        raise UnpriceableRides(report, len(frame))
    kept = np.flatnonzero(keep)
    return PreparedRides(len(frame), kept, compute_features(frame, kept), report)


def typed_rides(rides: pd.DataFrame) -> pd.DataFrame:
    """The ride fields typed as `core.cleaning` expects, on a fresh 0..n-1 index."""
    if not isinstance(rides, pd.DataFrame):
        rides = pd.DataFrame(rides)
    missing = [c for c in ("pickup_datetime", *COORD_COLUMNS) if c not in rides.columns]
    if missing:
        raise ValueError(f"rides lack the column(s) {', '.join(missing)}")
    n = len(rides)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    # .array keeps the timezone-aware dtype (to_numpy would make an object array of Timestamps).
    out["pickup_datetime"] = utc_times(rides["pickup_datetime"]).array
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
