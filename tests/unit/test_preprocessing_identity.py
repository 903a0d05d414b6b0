"""The fast preprocessing path against plain references: the same rows, counts and bits.

The references are the code this path replaced, kept here verbatim in spirit: pandas
`duplicated`, boolean masks over whole frames, pandas' datetime fields, and every
feature computed column by column on whole columns (`reference_features`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.factories import ride_frame
from tests.fakes import MemoryStore

from taxifare_cli.core import cleaning
from taxifare_cli.core.cleaning import DEFAULT_RULES, CleaningReport, clean_chunk, duplicated_rows
from taxifare_cli.core.feature_math import (
    AIRPORT_RADIUS_KM,
    AIRPORTS,
    BLOCK_ROWS,
    EARTH_RADIUS_KM,
    EPOCH_YEAR,
    GRID_ANGLE,
    N_FEATURES,
    PLACES,
    features_from_columns,
)
from taxifare_cli.core.features import FARE_RISE, compute_features, local_time
from taxifare_cli.core.schema import RAW_COLUMNS
from taxifare_cli.services.feature_cache import iter_features


def simulated_rides(n: int, seed: int = 0) -> pd.DataFrame:
    """Mostly usable rides with every kind of trouble mixed in, and some exact duplicates."""
    rng = np.random.default_rng(seed)
    plat = rng.uniform(40.45, 40.95, n)
    plon = rng.uniform(-74.35, -73.65, n)
    dlat = plat + rng.normal(0, 0.03, n)
    dlon = plon + rng.normal(0, 0.03, n)
    same = rng.random(n) < 0.05
    dlat[same], dlon[same] = plat[same], plon[same]
    for lat, lon in [(40.6413, -73.7781), (40.7769, -73.8740), (40.6895, -74.1745)]:
        at = rng.random(n) < 0.03
        plat[at], plon[at] = lat + rng.normal(0, 0.01, at.sum()), lon + rng.normal(0, 0.01, at.sum())
    seconds = rng.integers(
        pd.Timestamp("2008-06-01").value // 10**9, pd.Timestamp("2031-06-01").value // 10**9, n
    )
    df = pd.DataFrame(
        {
            "key": [f"k{i}" for i in range(n)],
            "fare_amount": np.round(rng.uniform(-5, 420, n), 2),
            "pickup_datetime": pd.to_datetime(seconds, unit="s", utc=True).as_unit("s"),
            "pickup_longitude": plon,
            "pickup_latitude": plat,
            "dropoff_longitude": dlon,
            "dropoff_latitude": dlat,
            "passenger_count": rng.integers(0, 9, n).astype(np.float64),
        }
    )
    df.loc[rng.random(n) < 0.01, "passenger_count"] = 2.5
    for c in RAW_COLUMNS[1:]:
        df.loc[rng.random(n) < 0.005, c] = np.nan if c != "pickup_datetime" else pd.NaT
    copies = rng.integers(0, n, n // 20)
    df.iloc[rng.integers(0, n, len(copies)), 1:] = df.iloc[copies, 1:].to_numpy()  # duplicates
    df.loc[df.index[: n // 50], "fare_amount"] *= -1.0  # includes -0.0 beside 0.0 if any
    df.loc[df.index[n // 2 : n // 2 + 3], "fare_amount"] = [0.0, -0.0, 0.0]
    df.loc[df.index[n // 2 : n // 2 + 3], RAW_COLUMNS[2:]] = df.loc[
        df.index[n // 2], RAW_COLUMNS[2:]
    ].to_numpy()
    df.attrs = {"malformed_rows": 3}
    return df


def reference_clean(
    df: pd.DataFrame, *, require_fare: bool = True, dedupe: bool = True
) -> tuple[pd.DataFrame, CleaningReport]:
    """clean_chunk as it was written before: whole-frame pandas masks and DataFrame.duplicated."""
    rules = DEFAULT_RULES
    report = CleaningReport(rows_in=len(df))
    malformed = int(df.attrs.get("malformed_rows", 0))
    if malformed:
        report.rows_in += malformed
        report.dropped["malformed line"] += malformed
    needed = [c for c in RAW_COLUMNS if c != "key" and (require_fare or c != "fare_amount")]
    keep = np.asarray(df[needed].notna().all(axis=1))
    if (~keep).sum():
        report.dropped["missing or unparseable value"] += int((~keep).sum())

    def apply(reason: str, ok: np.ndarray) -> None:
        nonlocal keep
        n = int((keep & ~ok).sum())
        if n:
            report.dropped[reason] += n
        keep = keep & ok

    if dedupe:
        apply("duplicate", ~df.duplicated(subset=list(RAW_COLUMNS[1:])).to_numpy())
    with np.errstate(invalid="ignore"):
        if require_fare:
            fare = df["fare_amount"].to_numpy(dtype="float64", na_value=np.nan)
            apply("fare out of range", (fare > rules.fare_min) & (fare < rules.fare_max))
        pax = df["passenger_count"].to_numpy(dtype="float64", na_value=np.nan)
        apply("passenger count out of range", (pax >= 1) & (pax <= 7) & (pax == np.floor(pax)))
        years = pd.DatetimeIndex(df["pickup_datetime"]).year.to_numpy()
        apply("pickup time out of range", (years >= rules.year_min) & (years <= rules.year_max))
        lat = df[["pickup_latitude", "dropoff_latitude"]].to_numpy()
        lon = df[["pickup_longitude", "dropoff_longitude"]].to_numpy()
        ok = (lat >= rules.lat_min) & (lat <= rules.lat_max) & (lon >= rules.lon_min) & (lon <= rules.lon_max)
        apply("outside New York", ok.all(axis=1))
    out = df.loc[keep]
    out.attrs = {}
    report.rows_out = len(out)
    return out, report


def plain_haversine_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray | float, lon2: np.ndarray | float
) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def plain_local_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    north = (lat2 - lat1) * 111.2
    east = (lon2 - lon1) * 111.2 * np.cos(np.radians(40.75))
    return east, north


def reference_features(
    plat: np.ndarray,
    plon: np.ndarray,
    dlat: np.ndarray,
    dlon: np.ndarray,
    *,
    hour: np.ndarray,
    minute: np.ndarray,
    weekday: np.ndarray,
    month: np.ndarray,
    year: np.ndarray,
    day_of_year: np.ndarray,
    after_fare_rise: np.ndarray,
    passengers: np.ndarray,
) -> np.ndarray:
    """features_from_columns as it was written before: every feature column by column."""
    n = len(plat)
    out = np.empty((n, N_FEATURES), dtype=np.float32)
    col = iter(range(N_FEATURES))

    hav = plain_haversine_km(plat, plon, dlat, dlon)
    east, north = plain_local_km(plat, plon, dlat, dlon)
    # Project onto the rotated street grid: blocks run along the avenues and streets.
    along = east * np.sin(GRID_ANGLE) + north * np.cos(GRID_ANGLE)
    across = east * np.cos(GRID_ANGLE) - north * np.sin(GRID_ANGLE)
    bearing = np.arctan2(east, north)
    out[:, next(col)] = hav
    out[:, next(col)] = np.abs(along) + np.abs(across)
    out[:, next(col)] = np.log1p(hav)
    out[:, next(col)] = np.sin(bearing)
    out[:, next(col)] = np.cos(bearing)
    out[:, next(col)] = hav < 0.05
    for values in (plat, plon, dlat, dlon):
        out[:, next(col)] = values

    hours = hour + minute / 60.0
    out[:, next(col)] = np.sin(2 * np.pi * hours / 24)
    out[:, next(col)] = np.cos(2 * np.pi * hours / 24)
    out[:, next(col)] = np.sin(2 * np.pi * weekday / 7)
    out[:, next(col)] = np.cos(2 * np.pi * weekday / 7)
    out[:, next(col)] = weekday >= 5
    out[:, next(col)] = (hours >= 20) | (hours < 6)
    out[:, next(col)] = (weekday < 5) & (hours >= 16) & (hours < 20)
    out[:, next(col)] = np.sin(2 * np.pi * (month - 1) / 12)
    out[:, next(col)] = np.cos(2 * np.pi * (month - 1) / 12)
    out[:, next(col)] = year - EPOCH_YEAR + (day_of_year - 1) / 365.25
    out[:, next(col)] = after_fare_rise

    dist: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for place, (lat, lon) in PLACES.items():
        dp = plain_haversine_km(plat, plon, np.float64(lat), np.float64(lon))
        dd = plain_haversine_km(dlat, dlon, np.float64(lat), np.float64(lon))
        dist[place] = (dp, dd)
        out[:, next(col)] = dp
        out[:, next(col)] = dd
    for airport in AIRPORTS:
        dp, dd = dist[airport]
        out[:, next(col)] = np.minimum(dp, dd) < AIRPORT_RADIUS_KM

    out[:, next(col)] = passengers
    assert next(col, None) is None, "every feature column must be filled"
    return out


def reference_compute_features(df: pd.DataFrame) -> np.ndarray:
    """compute_features as it was written before: pandas' datetime fields, then the reference."""
    t = local_time(df["pickup_datetime"])
    return reference_features(
        df["pickup_latitude"].to_numpy(dtype="float64"),
        df["pickup_longitude"].to_numpy(dtype="float64"),
        df["dropoff_latitude"].to_numpy(dtype="float64"),
        df["dropoff_longitude"].to_numpy(dtype="float64"),
        hour=t.hour.to_numpy(),
        minute=t.minute.to_numpy(),
        weekday=t.day_of_week.to_numpy(),
        month=t.month.to_numpy(),
        year=t.year.to_numpy(),
        day_of_year=t.day_of_year.to_numpy(),
        after_fare_rise=t >= FARE_RISE,
        passengers=df["passenger_count"].to_numpy(dtype="float64", na_value=1.0),
    )


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize(
    "kw", [{}, {"require_fare": False}, {"dedupe": False}, {"require_fare": False, "dedupe": False}]
)
def test_clean_chunk_keeps_and_counts_as_the_reference(kw: dict[str, bool]) -> None:
    df = simulated_rides(5_000)
    out, report = clean_chunk(df, **kw)
    ref, ref_report = reference_clean(df, **kw)
    pd.testing.assert_frame_equal(out, ref)
    assert report.as_dict() == ref_report.as_dict()
    assert df.attrs == {"malformed_rows": 3}  # the caller's frame is left alone


def test_duplicates_by_hash_match_pandas_even_when_every_hash_collides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    df = simulated_rides(3_000, seed=1)
    columns = list(RAW_COLUMNS[1:])
    expected = df.duplicated(subset=columns).to_numpy()
    assert expected.sum() > 50
    assert np.array_equal(duplicated_rows(df, columns), expected)
    monkeypatch.setattr(cleaning, "_MIX", np.uint64(0))  # every row hashes alike: all confirmed exactly
    assert np.array_equal(duplicated_rows(df, columns), expected)


def test_duplicates_treat_nan_alike_and_zero_signs_alike() -> None:
    df = ride_frame(4, fare_amount=[np.nan, np.nan, 0.0, -0.0], passenger_count=[1.0] * 4)
    df["pickup_datetime"] = df["pickup_datetime"].iloc[0]
    for c in ("pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"):
        df[c] = df[c].iloc[0]
    columns = list(RAW_COLUMNS[1:])
    assert (
        duplicated_rows(df, columns).tolist()
        == df.duplicated(subset=columns).tolist()
        == [False, True, False, True]
    )


def test_features_match_the_reference_bit_for_bit() -> None:
    clean, _ = clean_chunk(simulated_rides(BLOCK_ROWS * 4 + 123, seed=2))
    assert len(clean) > BLOCK_ROWS
    assert same_bits(compute_features(clean), reference_compute_features(clean))


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "America/New_York"])
def test_time_parts_match_pandas_in_every_unit_and_zone(unit: str, tz: str | None) -> None:
    rng = np.random.default_rng(3)
    seconds = rng.integers(
        pd.Timestamp("1990-01-01").value // 10**9, pd.Timestamp("2060-01-01").value // 10**9, 2_000
    )
    edges = [
        "2012-09-03 23:59:59",
        "2012-09-04 00:00:00",
        "2000-02-29 12:00:00",
        "2016-12-31 23:59:59",
        "2015-03-08 02:30:00",
    ]
    times = pd.to_datetime(np.concatenate([seconds, pd.to_datetime(edges).asi8 // 10**9]), unit="s").as_unit(
        unit
    )
    times = times + pd.to_timedelta(rng.integers(0, 1000, len(times)), unit="ms")
    times = times.tz_localize(tz, nonexistent="shift_forward") if tz else times
    df = ride_frame(len(times), pickup_datetime=times)
    assert same_bits(compute_features(df), reference_compute_features(df))


@pytest.mark.parametrize("n", [0, 1, 7, BLOCK_ROWS - 1, BLOCK_ROWS, BLOCK_ROWS + 1])
def test_features_from_columns_at_block_edges_and_with_odd_inputs(n: int) -> None:
    rng = np.random.default_rng(n)
    coords = [
        rng.uniform(40.5, 40.9, n),
        rng.uniform(-74.3, -73.7, n),
        rng.uniform(40.5, 40.9, n),
        rng.uniform(-74.3, -73.7, n),
    ]
    for dtype in (np.int32, np.int64):
        parts = {
            "hour": rng.integers(0, 24, n).astype(dtype),
            "minute": rng.integers(0, 60, n).astype(dtype),
            "weekday": rng.integers(0, 7, n).astype(dtype),
            "month": rng.integers(1, 13, n).astype(dtype),
            "year": rng.integers(2009, 2031, n).astype(dtype),
            "day_of_year": rng.integers(1, 367, n).astype(dtype),
            "after_fare_rise": rng.random(n) < 0.5,
            "passengers": rng.integers(1, 8, n).astype(np.float64),
        }
        assert same_bits(features_from_columns(*coords, **parts), reference_features(*coords, **parts))
    # values no datetime gives (out of the tables' ranges, or not integers) are computed directly
    odd = {
        **parts,
        "hour": parts["hour"] + 30,
        "minute": parts["minute"] * 1.5,
        "weekday": parts["weekday"] - 9,
    }
    assert same_bits(features_from_columns(*coords, **odd), reference_features(*coords, **odd))


def test_features_of_picked_rows_are_those_of_the_picked_frame() -> None:
    df = simulated_rides(3_000, seed=4).dropna()
    rows = np.flatnonzero(np.random.default_rng(5).random(len(df)) < 0.7)
    assert same_bits(compute_features(df, rows), compute_features(df.iloc[rows]))


def test_iter_features_gives_what_clean_chunk_and_compute_features_give_in_order() -> None:
    store = MemoryStore()
    frame = simulated_rides(9_000, seed=6)
    frame.attrs = {}
    store.frames["train_1k"] = frame
    got = list(iter_features(store, "train_1k", chunk_size=1_000))
    assert len(got) == 9
    for (x, y, report), chunk in zip(got, MemoryStore._chunks(frame, 1_000), strict=True):
        clean, expected = reference_clean(chunk)
        assert report.as_dict() == expected.as_dict()
        assert same_bits(x, reference_compute_features(clean))
        assert np.array_equal(y, clean["fare_amount"].to_numpy(dtype=np.float32))


def test_iter_features_raises_the_readers_error_and_stops_early_cleanly() -> None:
    store = MemoryStore()
    store.frames["train_1k"] = simulated_rides(5_000, seed=7)

    def failing(name: str, chunk_size: int, **_: object):  # type: ignore[no-untyped-def]
        yield from MemoryStore._chunks(store.frames[name].iloc[:2_000], chunk_size)
        raise OSError("disk went away")

    store.read_chunks = failing  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk went away"):
        list(iter_features(store, "train_1k", chunk_size=1_000))
    first = iter_features(MemoryStore(), "train_1k", chunk_size=1_000)
    with pytest.raises(Exception, match="not in"):
        next(first)
