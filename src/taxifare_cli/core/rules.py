"""What a usable ride looks like, in plain Python (no pandas): the rules `core.cleaning`
applies to whole chunks and `core.few_rides` to a few rides priced without pandas."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CleaningRules:
    """What a usable ride looks like. Fares in (min, max); both ends in the box."""

    fare_min: float = 0.0  # exclusive
    fare_max: float = 400.0  # exclusive
    passengers_min: int = 1
    passengers_max: int = 7
    lat_min: float = 40.5
    lat_max: float = 40.9
    lon_min: float = -74.3
    lon_max: float = -73.7
    # The public data starts in 2009; past 2030 the year trend the model learned is a guess.
    year_min: int = 2009
    year_max: int = 2030


DEFAULT_RULES = CleaningRules()

# Reasons in the order they are checked: a row is counted under the first that fails.
REASONS: tuple[str, ...] = (
    "malformed line",
    "missing or unparseable value",
    "duplicate",
    "fare out of range",
    "passenger count out of range",
    "pickup time out of range",
    "outside New York",
)
