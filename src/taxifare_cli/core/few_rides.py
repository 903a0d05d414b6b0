"""A few rides priced without pandas: one ride from the command line, a web request.

Importing pandas takes longer than pricing a ride, so the rides a person or a
client sends one at a time are checked and turned into features here, on plain
Python values and numpy arrays. The rules are `core.rules` (those `core.cleaning`
applies to files), the features `core.feature_math` (what `core.features` computes
on a DataFrame) and the floor `MIN_FARE`: `price_few` gives the fares
`core.pricing.price_rides` gives for the same rides, to the cent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

import numpy as np

from taxifare_cli.core.cents import in_cents
from taxifare_cli.core.feature_math import FARE_RISE_AT, features_from_columns
from taxifare_cli.core.rules import DEFAULT_RULES, CleaningRules
from taxifare_cli.core.schema import COORD_COLUMNS

Forward = Callable[[np.ndarray], np.ndarray]

NEW_YORK_HINT = (
    "both ends must lie in New York (latitude 40.5-40.9, longitude -74.3 to -73.7), with 1 to 7 passengers, "
    "between 2009 and 2030"
)
# No ride costs less than the flag drop of the meter ($2.50 through 2009-2015): a network's
# output below it on an odd ride is an extrapolation, never a negative fare.
MIN_FARE = 2.50


def fares_of(outputs: np.ndarray) -> np.ndarray:
    """The fares a network's outputs price at: never below MIN_FARE, in cents (float64)."""
    return in_cents(np.maximum(outputs, MIN_FARE))


def parse_pickup(value: object) -> datetime | None:
    """A pickup time as New York wall-clock time (naive), or None if it is not a time.

    Reads what `core.pricing.utc_times` reads: the raw `2015-01-15 08:30:00 UTC`, ISO 8601
    (an offset is converted to UTC, whose label is then dropped as the files' is), or a
    datetime (naive ones are taken as given).
    """
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            text = value.strip().replace(" UTC", "")
            when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            return None
    else:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when


def _number(value: object) -> float:
    """A float, or NaN for what is not a number (as pandas.to_numeric(errors="coerce"))."""
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class RideBatch:
    """A few rides as columns: pickup times (None where unreadable) and float64 numbers."""

    pickup: tuple[datetime | None, ...]
    pickup_longitude: np.ndarray
    pickup_latitude: np.ndarray
    dropoff_longitude: np.ndarray
    dropoff_latitude: np.ndarray
    passenger_count: np.ndarray

    def __len__(self) -> int:
        return len(self.pickup)

    @classmethod
    def from_records(cls, rides: Sequence[Mapping[str, Any]]) -> RideBatch:
        """Rides as mappings of the raw fields (text or typed); passenger_count defaults to 1.

        A missing pickup_datetime or coordinate is a KeyError naming it.
        """
        columns = {c: np.array([_number(r[c]) for r in rides], dtype=np.float64) for c in COORD_COLUMNS}
        passengers = np.array([_number(r.get("passenger_count", 1)) for r in rides], dtype=np.float64)
        return cls(
            tuple(parse_pickup(r["pickup_datetime"]) for r in rides),
            columns["pickup_longitude"],
            columns["pickup_latitude"],
            columns["dropoff_longitude"],
            columns["dropoff_latitude"],
            passengers,
        )

    def select(self, keep: np.ndarray) -> RideBatch:
        return RideBatch(
            tuple(t for t, k in zip(self.pickup, keep, strict=True) if k),
            self.pickup_longitude[keep],
            self.pickup_latitude[keep],
            self.dropoff_longitude[keep],
            self.dropoff_latitude[keep],
            self.passenger_count[keep],
        )


def rejections(rides: RideBatch, rules: CleaningRules = DEFAULT_RULES) -> list[str | None]:
    """Per ride, the first `core.rules.REASONS` rule it breaks (as `clean_chunk` counts it), or None."""
    coords = np.stack(
        [rides.pickup_longitude, rides.pickup_latitude, rides.dropoff_longitude, rides.dropoff_latitude]
    )
    pax = rides.passenger_count
    missing = np.array([t is None for t in rides.pickup], dtype=bool)
    missing |= np.isnan(coords).any(axis=0) | np.isnan(pax)
    years = np.array([t.year if t is not None else 0 for t in rides.pickup], dtype=np.int64)
    with np.errstate(invalid="ignore"):
        pax_ok = (pax >= rules.passengers_min) & (pax <= rules.passengers_max) & (pax == np.floor(pax))
        lat, lon = coords[1::2], coords[0::2]
        inside = np.asarray(((lat >= rules.lat_min) & (lat <= rules.lat_max)).all(axis=0))
        inside &= ((lon >= rules.lon_min) & (lon <= rules.lon_max)).all(axis=0)
    years_ok = (years >= rules.year_min) & (years <= rules.year_max)
    out: list[str | None] = []
    for i in range(len(rides)):
        if missing[i]:
            out.append("missing or unparseable value")
        elif not pax_ok[i]:
            out.append("passenger count out of range")
        elif not years_ok[i]:
            out.append("pickup time out of range")
        elif not inside[i]:
            out.append("outside New York")
        else:
            out.append(None)
    return out


def features_of(rides: RideBatch) -> np.ndarray:
    """The feature matrix of rides that break no rule (see `rejections`)."""
    times = [t for t in rides.pickup if t is not None]
    if len(times) != len(rides):
        raise ValueError("every ride needs a pickup time to have features")

    def part(values: list[int]) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    return features_from_columns(
        rides.pickup_latitude,
        rides.pickup_longitude,
        rides.dropoff_latitude,
        rides.dropoff_longitude,
        hour=part([t.hour for t in times]),
        minute=part([t.minute for t in times]),
        weekday=part([t.weekday() for t in times]),
        month=part([t.month for t in times]),
        year=part([t.year for t in times]),
        day_of_year=part([t.toordinal() - date(t.year, 1, 1).toordinal() + 1 for t in times]),
        after_fare_rise=np.array([t >= FARE_RISE_AT for t in times], dtype=bool),
        passengers=rides.passenger_count,
    )


@dataclass
class FewPriced:
    """One fare per ride in cents, in order (NaN where it cannot be priced), and why not."""

    fares: np.ndarray  # float64
    reasons: list[str | None]

    @property
    def dropped(self) -> Counter[str]:
        return Counter(r for r in self.reasons if r is not None)


def price_few(forward: Forward, rides: RideBatch, rules: CleaningRules = DEFAULT_RULES) -> FewPriced:
    """Fares for a few rides through `forward` (the network on feature rows)."""
    reasons = rejections(rides, rules)
    keep = np.array([r is None for r in reasons], dtype=bool)
    fares = np.full(len(rides), np.nan)
    if keep.any():
        priceable = rides if keep.all() else rides.select(keep)
        fares[keep] = fares_of(forward(features_of(priceable)))
    return FewPriced(fares, reasons)
