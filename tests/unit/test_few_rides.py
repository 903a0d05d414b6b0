"""core.few_rides: a few rides checked and turned into features without pandas, as the file path does.

The batch path (`core.pricing.price_rides`: typed_rides -> clean_chunk -> compute_features)
is the reference: on simulated rides, dirty ones included, the pandas-free path must drop
the same rides for the same reasons and compute bit-identical features for the others.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from taxifare_cli.core import cleaning, rules
from taxifare_cli.core.features import compute_features
from taxifare_cli.core.few_rides import (
    MIN_FARE,
    RideBatch,
    features_of,
    parse_pickup,
    price_few,
    rejections,
)
from taxifare_cli.core.pricing import price_rides, typed_rides
from taxifare_cli.core.simulator import iter_simulated_dataset

ROWS = 20_000


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """Simulated rides as a file has them (dirty rows included), without the fare."""
    chunk = next(iter_simulated_dataset("train_100k", chunk_size=ROWS, seed=21, rows=ROWS))
    return chunk.drop(columns=["fare_amount", "key"]).reset_index(drop=True)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rides as a client sends them: times as raw text, numbers as numbers (NaN for missing)."""
    text = frame.assign(pickup_datetime=frame["pickup_datetime"].dt.strftime("%Y-%m-%d %H:%M:%S UTC"))
    return text.astype(object).where(text.notna(), None).to_dict(orient="records")


def test_the_rules_are_those_cleaning_applies() -> None:
    assert dataclasses.asdict(rules.DEFAULT_RULES) == dataclasses.asdict(cleaning.DEFAULT_RULES)
    assert rules.REASONS == cleaning.REASONS


def test_rides_are_dropped_for_the_reasons_clean_chunk_gives(raw: pd.DataFrame) -> None:
    batch = RideBatch.from_records(records(raw))
    reasons = rejections(batch)
    _, report = cleaning.clean_chunk(typed_rides(raw), require_fare=False, dedupe=False)

    assert report.rows_dropped > 50  # the simulator's dirty rows: the check sees some
    assert Counter(r for r in reasons if r is not None) == report.dropped


def test_features_are_bit_identical_to_compute_features(raw: pd.DataFrame) -> None:
    batch = RideBatch.from_records(records(raw))
    keep = np.array([r is None for r in rejections(batch)])
    clean, _ = cleaning.clean_chunk(typed_rides(raw), require_fare=False, dedupe=False)

    np.testing.assert_array_equal(clean.index.to_numpy(), np.flatnonzero(keep))
    ours, theirs = features_of(batch.select(keep)), compute_features(clean)
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


def test_price_few_gives_price_rides_fares_with_nan_where_price_rides_does(raw: pd.DataFrame) -> None:
    def forward(x: np.ndarray) -> np.ndarray:  # any function of the features will do
        return (x[:, 0] * 2.1 + x[:, 10] * 3.0 - 1.0).astype(np.float32)

    few = price_few(forward, RideBatch.from_records(records(raw)))
    batch = price_rides(forward, raw, invalid="nan")
    np.testing.assert_array_equal(few.fares, batch.fares)
    assert np.nanmin(few.fares) == MIN_FARE  # the floor is there: some outputs were below it


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-01-15 08:30:00 UTC", datetime(2015, 1, 15, 8, 30)),
        (" 2015-01-15T08:30:00Z ", datetime(2015, 1, 15, 8, 30)),
        ("2015-01-15T03:30:00-05:00", datetime(2015, 1, 15, 8, 30)),
        ("2015-01-15 08:30", datetime(2015, 1, 15, 8, 30)),
        (datetime(2015, 1, 15, 8, 30), datetime(2015, 1, 15, 8, 30)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (20150115, None),
    ],
)
def test_pickup_times_read_as_the_batch_path_reads_them(value: object, expected: datetime | None) -> None:
    assert parse_pickup(value) == expected
    if isinstance(value, str) and value.strip():
        parsed = typed_rides(
            pd.DataFrame(
                {
                    "pickup_datetime": [value],
                    "pickup_longitude": [-73.9],
                    "pickup_latitude": [40.7],
                    "dropoff_longitude": [-73.9],
                    "dropoff_latitude": [40.7],
                }
            )
        )["pickup_datetime"][0]
        assert (None if pd.isna(parsed) else parsed.tz_convert(None).to_pydatetime()) == expected


def test_a_missing_field_is_named_and_text_that_is_not_a_number_is_missing() -> None:
    ride = {
        "pickup_datetime": "2015-01-15 08:30:00 UTC",
        "pickup_longitude": "west",
        "pickup_latitude": 40.758,
        "dropoff_longitude": -73.78,
        "dropoff_latitude": 40.644,
    }
    batch = RideBatch.from_records([ride])
    assert batch.passenger_count.tolist() == [1.0]
    assert rejections(batch) == ["missing or unparseable value"]
    with pytest.raises(KeyError, match="dropoff_latitude"):
        RideBatch.from_records([{k: v for k, v in ride.items() if k != "dropoff_latitude"}])
