"""The ride simulator: schema, determinism, chunking, and the shape of real NYC fares (docs/data.md)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from numpy.typing import ArrayLike

from taxifare_cli.core.schema import MONTH_TRAIN_FRACTION, RAW_COLUMNS
from taxifare_cli.core.simulator import (
    BLOCK_ROWS,
    iter_simulated_dataset,
    simulate_dataset,
    simulate_rides,
)

COORDS = ["pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"]
JFK = (40.6413, -73.7781)
LGA = (40.7769, -73.8740)
EWR = (40.6895, -74.1745)
FARE_RISE = pd.Timestamp("2012-09-04", tz="UTC")


def miles(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> np.ndarray:
    """Great-circle distance in miles."""
    p1, l1, p2, l2 = (np.radians(np.asarray(v, dtype=float)) for v in (lat1, lon1, lat2, lon2))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return np.asarray(2 * 3958.8 * np.arcsin(np.sqrt(a)))


def trip_miles(df: pd.DataFrame) -> np.ndarray:
    return miles(df.pickup_latitude, df.pickup_longitude, df.dropoff_latitude, df.dropoff_longitude)


def touches(df: pd.DataFrame, place: tuple[float, float], radius: float) -> np.ndarray:
    return (miles(df.pickup_latitude, df.pickup_longitude, *place) < radius) | (
        miles(df.dropoff_latitude, df.dropoff_longitude, *place) < radius
    )


def usable(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a basic cleaning keeps (independent of core.cleaning)."""
    df = df.dropna().drop_duplicates()
    ok = df.fare_amount.between(0.01, 400) & df.passenger_count.between(1, 6)
    ok &= df[["pickup_latitude", "dropoff_latitude"]].apply(lambda c: c.between(40.5, 40.9)).all(axis=1)
    ok &= df[["pickup_longitude", "dropoff_longitude"]].apply(lambda c: c.between(-74.3, -73.7)).all(axis=1)
    return df[ok]


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    """50k clean rides over the whole span of the public data."""
    return simulate_rides(
        50_000,
        seed=7,
        start=pd.Timestamp("2009-01-01", tz="UTC"),
        end=pd.Timestamp("2015-07-01", tz="UTC"),
        dirty=False,
    )


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return simulate_dataset("train_100k")


# --- schema and naming ------------------------------------------------------------------
def test_columns_and_dtypes(raw: pd.DataFrame) -> None:
    assert tuple(raw.columns) == RAW_COLUMNS
    assert len(raw) == 100_000
    assert pd.api.types.is_string_dtype(raw["key"])
    assert str(raw["pickup_datetime"].dtype) == "datetime64[ns, UTC]"
    for col in ["fare_amount", *COORDS]:
        assert raw[col].dtype == np.float64, col
    assert str(raw["passenger_count"].dtype) == "Int64"
    assert raw["pickup_datetime"].notna().all()
    assert raw.index.equals(pd.RangeIndex(len(raw)))


def test_key_is_the_pickup_time_plus_a_unique_number(raw: pd.DataFrame) -> None:
    assert raw["key"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{7}").all()
    stamp = raw["pickup_datetime"].dt.strftime("%Y-%m-%d %H:%M:%S")
    assert (raw["key"].str.slice(0, 19) == stamp).all()
    assert raw["key"].iloc[0].endswith(".0000001")
    # Only exact duplicate rows share a key.
    assert raw["key"].duplicated().sum() == raw.duplicated().sum()


def test_size_span_and_year_mix(raw: pd.DataFrame) -> None:
    t = raw["pickup_datetime"]
    assert t.min() >= pd.Timestamp("2009-01-01", tz="UTC")
    assert t.max() < pd.Timestamp("2015-07-01", tz="UTC")
    share = t.dt.year.value_counts(normalize=True)
    for year in range(2009, 2015):
        assert 0.13 < share[year] < 0.175, year
    assert 0.06 < share[2015] < 0.09


def test_hour_profile_is_that_of_taxis(clean: pd.DataFrame) -> None:
    hours = clean["pickup_datetime"].dt.hour.value_counts(normalize=True)
    assert hours[5] < 0.015  # the quietest hour
    assert hours[19] > 0.05  # the evening peak
    assert hours[19] > 3 * hours[4]


def test_bad_names_and_arguments_raise() -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        simulate_dataset("train_2k")
    with pytest.raises(ValueError, match="chunk_size"):
        iter_simulated_dataset("train_1k", chunk_size=0)
    with pytest.raises(ValueError, match="unknown dataset"):
        iter_simulated_dataset("val_july", chunk_size=10)
    with pytest.raises(ValueError, match="after start"):
        simulate_rides(5, seed=1, start=pd.Timestamp("2015-02-01"), end=pd.Timestamp("2015-01-01"))


# --- determinism and chunking ---------------------------------------------------------------
def test_same_arguments_same_rows() -> None:
    a = simulate_dataset("val_10k", seed=3)
    pd.testing.assert_frame_equal(a, simulate_dataset("val_10k", seed=3))
    assert not a["fare_amount"].equals(simulate_dataset("val_10k", seed=4)["fare_amount"])
    assert not a["key"].equals(simulate_dataset("train_10k", seed=3)["key"])  # independent draws
    start, end = pd.Timestamp("2013-03-01"), pd.Timestamp("2013-04-01")
    pd.testing.assert_frame_equal(
        simulate_rides(2_000, seed=9, start=start, end=end),
        simulate_rides(2_000, seed=9, start=start, end=end),
    )


@pytest.mark.parametrize("chunk_size", [9_999, BLOCK_ROWS + 1])
def test_chunks_concatenate_to_the_whole_dataset(chunk_size: int) -> None:
    rows = BLOCK_ROWS + 12_345  # crosses a block boundary
    whole = simulate_dataset("train_500k", rows=rows)
    chunks = list(iter_simulated_dataset("train_500k", rows=rows, chunk_size=chunk_size))
    assert [len(c) for c in chunks[:-1]] == [chunk_size] * (len(chunks) - 1)
    pd.testing.assert_frame_equal(pd.concat(chunks), whole)


@pytest.mark.parametrize("chunk_size", [1_234, 30_000])
def test_month_chunks_concatenate_to_the_whole_split(chunk_size: int) -> None:
    whole = simulate_dataset("val_mar", month_rows=60_000)
    chunks = iter_simulated_dataset("val_mar", month_rows=60_000, chunk_size=chunk_size)
    pd.testing.assert_frame_equal(pd.concat(list(chunks)), whole)


def test_rows_keeps_a_prefix() -> None:
    full = simulate_dataset("train_10k")
    pd.testing.assert_frame_equal(simulate_dataset("train_10k", rows=2_500), full.head(2_500))
    assert len(simulate_dataset("train_all", all_rows=3_000)) == 3_000
    assert list(iter_simulated_dataset("train_1k", rows=0, chunk_size=10)) == []


# --- 2015 months ---------------------------------------------------------------------------
def test_month_split_is_chronological() -> None:
    train = simulate_dataset("train_feb", month_rows=20_000)
    val = simulate_dataset("val_feb", month_rows=20_000)
    assert len(train) == round(20_000 * MONTH_TRAIN_FRACTION) == 16_000
    assert len(val) == 4_000
    for part in (train, val):
        assert part["pickup_datetime"].is_monotonic_increasing
        assert (part["pickup_datetime"].dt.month == 2).all()
        assert (part["pickup_datetime"].dt.year == 2015).all()
    assert train["pickup_datetime"].max() <= val["pickup_datetime"].min()
    # One draw: val's rides are numbered after train's.
    assert train["key"].iloc[-1].endswith(".0016000")
    assert val["key"].iloc[0].endswith(".0016001")


def test_a_january_model_is_worse_in_june() -> None:
    """Drift: a linear fit on distance trained on January errs more on June than on January."""
    train = usable(simulate_dataset("train_jan", month_rows=30_000))
    slope, intercept = np.polyfit(trip_miles(train), train["fare_amount"], 1)

    def mae(df: pd.DataFrame) -> float:
        return float(np.mean(np.abs(intercept + slope * trip_miles(df) - df["fare_amount"])))

    jan = usable(simulate_dataset("val_jan", month_rows=30_000))
    jun = usable(simulate_dataset("val_jun", month_rows=30_000))
    assert mae(jun) > 1.08 * mae(jan)
    assert jun["fare_amount"].mean() > 1.05 * jan["fare_amount"].mean()


# --- the shape of real rides (docs/data.md) ------------------------------------------------------
def test_fare_quantiles_match_the_real_data(clean: pd.DataFrame) -> None:
    fare = clean["fare_amount"]
    real = {0.05: 4.10, 0.25: 6.00, 0.50: 8.50, 0.75: 12.50, 0.95: 30.0, 0.99: 52.50}
    for q, value in real.items():
        assert abs(fare.quantile(q) - value) <= 0.12 * value, q
    assert 10.3 < fare.mean() < 12.3
    assert (fare >= 2.5).all()


def test_trip_length_quantiles_match_the_real_data(clean: pd.DataFrame) -> None:
    dist = pd.Series(trip_miles(clean))
    real = {0.05: 0.35, 0.25: 0.78, 0.50: 1.35, 0.75: 2.43, 0.95: 6.2, 0.99: 12.5}
    for q, value in real.items():
        assert abs(dist.quantile(q) - value) <= 0.12 * value, q
    assert 0.007 < (dist == 0).mean() < 0.014


def test_airports(clean: pd.DataFrame) -> None:
    for place, radius, share, median_fare in (
        (JFK, 2.0, (0.015, 0.026), (45.0, 55.0)),
        (LGA, 1.2, (0.028, 0.043), (26.0, 36.0)),
        (EWR, 1.2, (0.001, 0.0035), (55.0, 75.0)),
    ):
        near = touches(clean, place, radius)
        assert share[0] < near.mean() < share[1], place
        assert median_fare[0] <= clean["fare_amount"][near].median() <= median_fare[1], place


def test_most_pickups_are_in_manhattan(clean: pd.DataFrame) -> None:
    # Manhattan as a strip along its axis in the street grid (29 degrees east of north).
    x = (clean["pickup_longitude"] + 73.9855) * 84.3
    y = (clean["pickup_latitude"] - 40.7580) * 111.0
    along = x * np.sin(np.radians(29)) + y * np.cos(np.radians(29))
    across = x * np.cos(np.radians(29)) - y * np.sin(np.radians(29))
    in_strip = (along > -7.0) & (along < 14.5) & (across > -2.3) & (across < 2.3)
    assert 0.90 < in_strip.mean() < 0.97


def test_the_fare_rise_of_september_2012(clean: pd.DataFrame) -> None:
    dist = trip_miles(clean)
    mid = (dist > 0.5) & (dist < 5)
    per_mile = clean["fare_amount"][mid] / dist[mid]
    after = clean["pickup_datetime"][mid] >= FARE_RISE
    before_rise, after_rise = per_mile[~after].median(), per_mile[after].median()
    assert 5.1 < before_rise < 6.1  # docs/data.md: about $5.60
    assert 6.2 < after_rise < 7.2  # docs/data.md: about $6.70
    # The meter: $2.50 plus $0.40 units before the rise, $0.50 units after (tolls aside).
    cents = np.round(clean["fare_amount"] * 100).astype(int) - 250
    early = clean["pickup_datetime"] < FARE_RISE
    assert (cents[early] % 40 == 0).mean() > 0.9
    assert (cents[~early] % 50 == 0).mean() > 0.9


def test_passenger_shares(clean: pd.DataFrame) -> None:
    share = clean["passenger_count"].value_counts(normalize=True)
    for count, real in {1: 0.71, 2: 0.14, 5: 0.07, 3: 0.04, 4: 0.02, 6: 0.02}.items():
        assert abs(share[count] - real) < 0.012, count
    assert 0 not in share.index


def test_clean_rows_are_clean(clean: pd.DataFrame) -> None:
    assert clean.notna().all().all()
    assert len(usable(clean)) == len(clean)
    text = clean[COORDS].head(20_000).to_csv(index=False)
    assert not re.search(r"\.\d{9,}", text)


def test_dirty_rows_in_realistic_shares(raw: pd.DataFrame) -> None:
    n = len(raw)
    zero = (raw[COORDS] == 0).any(axis=1).mean()
    assert 0.017 < zero < 0.023  # docs/data.md: about 2%
    lat = raw[["pickup_latitude", "dropoff_latitude"]].to_numpy()
    lon = raw[["pickup_longitude", "dropoff_longitude"]].to_numpy()
    inside = ((lat >= 40.5) & (lat <= 40.9) & (lon >= -74.3) & (lon <= -73.7)).all(axis=1)
    assert 0.019 < 1 - inside.mean() < 0.027  # about 2.3%
    fare = raw["fare_amount"]
    assert 0 < (fare <= 0).sum() < 0.0005 * n
    assert (fare < 0).any()
    assert 0 < (fare > 100).sum() < 0.001 * n
    assert 0.003 < (raw["passenger_count"] == 0).mean() < 0.005
    assert raw["passenger_count"].max() > 6
    assert 0 < raw.duplicated().sum() < 0.001 * n
    assert 0 < raw["dropoff_latitude"].isna().sum() < 0.001 * n
    assert 0 < raw["passenger_count"].isna().sum() < 0.001 * n
    text = raw[COORDS].head(20_000).to_csv(index=False)
    assert 20 < len(re.findall(r"\.\d{12,}", text)) < 400  # 40.712278000000005
    assert len(usable(raw)) > 0.95 * n


def test_absurd_fares_are_rare_but_there() -> None:
    fare = simulate_dataset("train_1m")["fare_amount"]
    assert 0 < (fare > 1_000).sum() < 20
    assert fare.max() < 100_000
