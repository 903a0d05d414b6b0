"""The raw ride schema of the public NYC taxi-fare files, and dataset names."""

from __future__ import annotations

import re
from dataclasses import dataclass

RAW_COLUMNS: tuple[str, ...] = (
    "key",
    "fare_amount",
    "pickup_datetime",
    "pickup_longitude",
    "pickup_latitude",
    "dropoff_longitude",
    "dropoff_latitude",
    "passenger_count",
)
COORD_COLUMNS: tuple[str, ...] = (
    "pickup_longitude",
    "pickup_latitude",
    "dropoff_longitude",
    "dropoff_latitude",
)
# The fields a ride needs to be priced: everything but the answer and the key.
RIDE_FIELDS: tuple[str, ...] = ("pickup_datetime", *COORD_COLUMNS, "passenger_count")
TARGET = "fare_amount"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S UTC"

SIZES: dict[str, int | None] = {
    "1k": 1_000,
    "10k": 10_000,
    "100k": 100_000,
    "500k": 500_000,
    "1m": 1_000_000,
    "all": None,  # whatever the remote holds; the simulator uses data.synthetic_all_rows
}
MONTHS: tuple[str, ...] = ("jan", "feb", "mar", "apr", "may", "jun")
SPLITS: tuple[str, ...] = ("train", "val")
# Months of 2015 are split chronologically: the first 80% of rides train, the rest validate.
MONTH_TRAIN_FRACTION = 0.8

_NAME = re.compile(r"^(train|val)_([a-z0-9]+)$")


@dataclass(frozen=True)
class DatasetName:
    """`train_10k`, `val_feb`: a split of a size or of a 2015 month."""

    split: str
    part: str  # a size ("10k") or a month ("feb")

    def __str__(self) -> str:
        return f"{self.split}_{self.part}"

    @property
    def is_month(self) -> bool:
        return self.part in MONTHS

    @property
    def month_number(self) -> int:
        return MONTHS.index(self.part) + 1


def parse_dataset_name(name: str) -> DatasetName:
    """Parse `train_10k` / `val_feb`; raise ValueError naming the valid choices."""
    m = _NAME.match(name.strip().lower())
    if not m or m.group(2) not in (*SIZES, *MONTHS):
        raise ValueError(
            f"unknown dataset {name!r}: expected train_ or val_ followed by one of "
            f"{', '.join(SIZES)} or a 2015 month {', '.join(MONTHS)}"
        )
    return DatasetName(m.group(1), m.group(2))


def check_part(part: str) -> str:
    """Validate a size or month given alone (`--size 10k`, `--month feb`)."""
    p = part.strip().lower()
    if p not in SIZES and p not in MONTHS:
        raise ValueError(
            f"unknown size or month {part!r}: sizes are {', '.join(SIZES)}; "
            f"months are {', '.join(MONTHS)} (2015)"
        )
    return p
