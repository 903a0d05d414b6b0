"""Drift statistics (PSI, KS), the drift report on simulated months, and the reservoir sample."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from taxifare_cli.core.cleaning import clean_chunk
from taxifare_cli.core.drift import (
    AREAS,
    KS_THRESHOLD,
    PSI_THRESHOLD,
    DriftItem,
    DriftReport,
    RideSample,
    drift_report,
    ks_statistic,
    pickup_area,
    psi,
    psi_categorical,
)
from taxifare_cli.core.simulator import iter_simulated_dataset, simulate_dataset, simulate_rides

MONTH_ROWS = 25_000  # a train_<month> split holds 80% of them: about 19,500 clean rides


def clean_month(name: str, seed: int = 42) -> pd.DataFrame:
    return clean_chunk(simulate_dataset(name, seed=seed, month_rows=MONTH_ROWS))[0]


@pytest.fixture(scope="module")
def january() -> pd.DataFrame:
    return clean_month("train_jan")


# --- PSI -----------------------------------------------------------------------------------
def test_psi_of_a_sample_against_itself_is_zero() -> None:
    x = np.random.default_rng(0).lognormal(1.0, 0.7, 20_000)
    assert psi(x, x) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_two_samples_of_one_distribution_is_small() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 20_000), rng.normal(0, 1, 20_000)
    assert psi(a, b) < 0.02
    assert psi(a, b) > 0  # sampling noise, not exactly zero


def test_psi_of_a_shifted_distribution_is_large() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1, 20_000)
    assert psi(a, rng.normal(0.5, 1, 20_000)) > PSI_THRESHOLD  # half a standard deviation: about 0.25
    assert psi(a, rng.normal(1.0, 1, 20_000)) > 0.8
    assert psi(a, rng.normal(0, 2, 20_000)) > PSI_THRESHOLD  # wider, same centre


def test_psi_bins_are_reference_quantiles_open_at_both_ends() -> None:
    ref = np.arange(1.0, 11.0)  # edges at the deciles: 1.9, 2.8, ..., 9.1
    # The same decile shares, however far the values lie: out-of-range values land in the end bins.
    assert psi(ref, ref * 1.001) == pytest.approx(0.0, abs=1e-12)
    assert psi(ref, np.array([-1e9, 2, 3, 4, 5, 6, 7, 8, 9, 1e9])) == pytest.approx(0.0)
    # Everything in the top bin: finite (empty bins get a share of 1e-4), and by the formula.
    everything_high = psi(ref, np.full(10, 100.0))
    expected = 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (1.0 - 0.1) * math.log(1.0 / 0.1)
    assert everything_high == pytest.approx(expected)


def test_psi_merges_tied_edges_and_drops_nans() -> None:
    ref = np.array([0.0] * 60 + list(range(1, 41)), dtype=float)  # six deciles are 0
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)
    # One bin (-inf, 0] holds 60% of the reference; a current with 30% zeros moves it.
    cur = np.array([0.0] * 30 + list(range(1, 71)), dtype=float)
    assert psi(ref, cur) > PSI_THRESHOLD
    assert psi(np.append(ref, np.nan), np.append(ref, [np.nan, np.nan])) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="current"):
        psi(ref, [np.nan])
    with pytest.raises(ValueError, match="reference"):
        psi([], ref)


def test_psi_categorical_hand_computed() -> None:
    # Shares a: 1/2 -> 3/4, b: 1/2 -> 1/4.
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert expected == pytest.approx(0.274653, abs=1e-6)
    assert psi_categorical(["a", "a", "b", "b"], ["a", "b", "a", "a"]) == pytest.approx(expected)
    assert psi_categorical(["a", "b", "b"], ["b", "a", "b"]) == pytest.approx(0.0)
    # A category on one side only: share 1e-4 on the other, large but finite.
    only_one_side = psi_categorical(["a", "b"], ["a", "c"])
    assert only_one_side == pytest.approx(2 * (0.5 - 1e-4) * math.log(0.5 / 1e-4))
    with pytest.raises(ValueError, match="current"):
        psi_categorical(["a"], [])


# --- KS ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_equals_scipy(seed: int) -> None:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, 3_000)
    b = rng.normal(0.1, 1.2, 1_700)
    assert ks_statistic(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
    # Ties within and across the samples (fares in $0.50 steps, whole hours).
    c = rng.integers(0, 24, 2_500).astype(float)
    d = rng.integers(2, 24, 900).astype(float)
    assert ks_statistic(c, d) == pytest.approx(ks_2samp(c, d).statistic, abs=1e-12)
    e, f = np.round(rng.lognormal(2, 0.6, 1_000) * 2) / 2, np.round(rng.lognormal(2.1, 0.6, 800) * 2) / 2
    assert ks_statistic(e, f) == pytest.approx(ks_2samp(e, f).statistic, abs=1e-12)


def test_ks_is_zero_for_identical_samples_and_drops_nans() -> None:
    x = np.random.default_rng(3).integers(0, 5, 500).astype(float)
    assert ks_statistic(x, x) == 0.0
    assert ks_statistic(x, np.concatenate([x, x])) == 0.0  # same empirical distribution
    assert ks_statistic(np.append(x, np.nan), x) == 0.0
    assert ks_statistic([0.0, 1.0], [2.0, 3.0]) == 1.0
    with pytest.raises(ValueError, match="current"):
        ks_statistic(x, [np.nan])


# --- pickup areas ----------------------------------------------------------------------------
def test_pickup_areas_of_known_places() -> None:
    places = {
        "Manhattan": [
            (40.7580, -73.9855),
            (40.7075, -74.0113),
            (40.8500, -73.9380),
        ],  # Times Sq, FiDi, Washington Hts
        "JFK": [(40.6413, -73.7781), (40.6500, -73.7900)],
        "LaGuardia": [(40.7769, -73.8740)],
        "Newark": [(40.6895, -74.1745)],
        "other": [(40.7160, -73.9560), (40.7820, -73.9650), (np.nan, np.nan)],  # Williamsburg, Central Park
    }
    lat = [p[0] for ps in places.values() for p in ps]
    lon = [p[1] for ps in places.values() for p in ps]
    expected = [area for area, ps in places.items() for _ in ps]
    rides = pd.DataFrame({"pickup_latitude": lat, "pickup_longitude": lon})
    assert list(pickup_area(rides)) == expected
    assert set(expected) == set(AREAS)


def test_pickup_area_shares_of_simulated_rides(january: pd.DataFrame) -> None:
    share = pd.Series(pickup_area(january)).value_counts(normalize=True)
    assert 0.85 < share["Manhattan"] < 0.97  # the simulator: about 94% of pickups on the island
    assert 0.003 < share["JFK"] < 0.03
    assert 0.003 < share["LaGuardia"] < 0.04


# --- the report ------------------------------------------------------------------------------
def test_january_against_january_flags_nothing(january: pd.DataFrame) -> None:
    report = drift_report(january, clean_month("train_jan", seed=7))
    assert [item.quantity for item in report.items] == ["trip distance", "fare", "pickup hour", "pickup area"]
    assert not report.drifted
    assert report.summary() == "no drift"
    for item in report.items:
        assert item.psi < 0.01, item
        assert item.ks is None or item.ks < 0.03, item
    assert report.items[-1].ks is None  # the area is a category
    assert report.reference_rows == len(january)
    assert (report.psi_threshold, report.ks_threshold) == (PSI_THRESHOLD, KS_THRESHOLD)


def test_january_against_june_flags_the_fare(january: pd.DataFrame) -> None:
    """What the simulator drifts from January to June (about 5 months, see core/simulator.py):

    * prices: meter units x (1 + 0.01 t) and slow minutes per mile x (1 + 0.04 t): the mean
      fare rises about 15% ($12.6 -> $14.5), but the fare's spread (log-sd about 0.6) is
      wide, so its distribution moves by only a quarter of a standard deviation: fare KS
      about 0.085-0.10, PSI about 0.045-0.055 over seeds;
    * trip mix: JFK/LaGuardia shares and Manhattan->Brooklyn/Queens trips x (1 + 0.05 t):
      a little more long trips (distance KS about 0.02-0.03) and a 2% -> 2.5% JFK share,
      far too small a change of the area shares to count (area PSI about 0.002);
    * nothing of the clock: pickup hours keep the same profile.

    So the fare is the quantity that moves, clearly beyond the month-to-month noise, but it
    sits just below the default thresholds (KS 0.1, PSI 0.2): the test flags it with a KS
    threshold of 0.05, halfway between the noise (below 0.02 at this size) and the drift.
    """
    june = clean_month("train_jun", seed=43)
    same = {i.quantity: i for i in drift_report(january, clean_month("train_jan", seed=7)).items}
    moved = {i.quantity: i for i in drift_report(january, june).items}

    assert june["fare_amount"].mean() > 1.10 * january["fare_amount"].mean()
    fare, fare_noise = moved["fare"], same["fare"]
    assert fare.ks is not None and fare_noise.ks is not None
    assert fare.ks > 0.06 and fare.ks > 5 * fare_noise.ks
    assert fare.psi > 0.025 and fare.psi > 5 * fare_noise.psi
    # The fare moves most; the clock does not move.
    assert all(fare.ks > 2 * (i.ks or 0.0) for q, i in moved.items() if q != "fare")
    hour = moved["pickup hour"]
    assert hour.ks is not None and hour.ks < 0.03 and hour.psi < 0.01
    assert moved["pickup area"].psi < 0.02

    report = drift_report(january, june, ks_threshold=0.05)
    assert [i.quantity for i in report.items if i.drifted] == ["fare"]
    assert report.drifted
    assert report.summary() == f"drift in fare (KS {report.items[1].ks:.2f})"


def test_a_changed_area_share_is_flagged(january: pd.DataFrame) -> None:
    """Current month: the JFK pickups of January, twenty times over (about 1% -> 15% of pickups)."""
    area = pickup_area(january)
    jfk = january[area == "JFK"]
    current = pd.concat([january[area != "JFK"], *[jfk] * 20], ignore_index=True)
    report = drift_report(january, current)
    item = report.items[-1]
    assert item.quantity == "pickup area" and item.ks is None
    assert item.drifted and report.drifted

    # By hand, from the shares of each area on both sides.
    ref = pd.Series(area).value_counts(normalize=True)
    cur = pd.Series(pickup_area(current)).value_counts(normalize=True)
    assert cur["JFK"] > 10 * ref["JFK"]
    expected = sum((cur[a] - ref[a]) * math.log(cur[a] / ref[a]) for a in ref.index)
    assert item.psi == pytest.approx(expected)
    assert item.psi > PSI_THRESHOLD
    assert "pickup area (PSI " in report.summary()


def test_report_dict_and_summary() -> None:
    report = DriftReport(
        items=[
            DriftItem("trip distance", 0.0123456, 0.0111111, False),
            DriftItem("fare", 0.31234, 0.0456, True),
            DriftItem("pickup hour", 0.05, 0.123456, True),
            DriftItem("pickup area", 0.25, None, True),
        ],
        reference_rows=50_000,
        current_rows=40_000,
        psi_threshold=0.2,
        ks_threshold=0.1,
    )
    assert report.summary() == "drift in fare (PSI 0.31), pickup hour (KS 0.12), pickup area (PSI 0.25)"
    d = report.as_dict()
    assert d["drifted"] is True
    assert d["items"][0] == {"quantity": "trip distance", "psi": 0.0123, "ks": 0.0111, "drifted": False}
    assert d["items"][3]["ks"] is None
    assert (d["reference_rows"], d["current_rows"], d["psi_threshold"], d["ks_threshold"]) == (
        50_000,
        40_000,
        0.2,
        0.1,
    )
    assert json.loads(json.dumps(d)) == d


def test_report_needs_columns_and_rows(january: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="current rides miss columns: fare_amount"):
        drift_report(january, january.drop(columns="fare_amount"))
    with pytest.raises(ValueError, match="reference has no rides"):
        drift_report(january.iloc[:0], january)


# --- the reservoir sample ------------------------------------------------------------------------
def numbered(start: int, stop: int) -> pd.DataFrame:
    return pd.DataFrame({"n": np.arange(start, stop)}, index=np.arange(start, stop))


def feed(sample: RideSample, sizes: list[int]) -> RideSample:
    pos = 0
    for size in sizes:
        sample.add(numbered(pos, pos + size))
        pos += size
    return sample


def algorithm_r(sizes: list[int], capacity: int, seed: int) -> list[int]:
    """Algorithm R row by row, with the same random draws as RideSample (one array per chunk)."""
    rng = np.random.default_rng(seed)
    reservoir: list[int] = []
    i = 0
    for size in sizes:
        later = np.arange(max(i, capacity), i + size)
        draws = iter(rng.integers(0, later + 1)) if later.size else iter(())
        for row in range(i, i + size):
            if row < capacity:
                reservoir.append(row)
            else:
                j = int(next(draws))
                if j < capacity:
                    reservoir[j] = row
        i += size
    return reservoir


@pytest.mark.parametrize(
    ("sizes", "capacity"),
    [([1_000], 10), ([30, 500, 470], 20), ([7] * 40, 50), ([100, 0, 250, 3_000, 1], 120)],
)
def test_sample_is_algorithm_r(sizes: list[int], capacity: int) -> None:
    """Same rows in the same slots as the row-by-row algorithm, even when rows of one chunk collide."""
    sample = feed(RideSample(capacity, seed=5), sizes)
    assert list(sample.frame()["n"]) == algorithm_r(sizes, capacity, seed=5)


def test_sample_never_holds_more_than_its_capacity() -> None:
    sample = RideSample(1_000, seed=1)
    pos = 0
    for size in [300, 900, 5_000, 1, 2_500, 10_000]:
        sample.add(numbered(pos, pos + size))
        pos += size
        assert len(sample) == min(1_000, pos)
        assert len(sample._base) + sample._pending_rows <= 2 * 1_000  # kept aside, then merged
    frame = sample.frame()
    assert len(frame) == 1_000 and sample.rows_seen == pos
    assert frame["n"].is_unique and frame["n"].between(0, pos - 1).all()
    assert frame.index.equals(pd.RangeIndex(1_000))


def test_sample_keeps_every_row_when_it_fits() -> None:
    rides = simulate_rides(3_000, seed=3, start=pd.Timestamp("2015-01-01"), end=pd.Timestamp("2015-02-01"))
    sample = RideSample(3_000, seed=0)
    for start in range(0, 3_000, 700):
        sample.add(rides.iloc[start : start + 700])
    pd.testing.assert_frame_equal(sample.frame(), rides.reset_index(drop=True))  # dtypes kept
    assert RideSample().frame().empty


def test_sample_is_deterministic() -> None:
    def sample(seed: int) -> pd.DataFrame:
        s = RideSample(2_000, seed=seed)
        for chunk in iter_simulated_dataset("train_jan", month_rows=10_000, chunk_size=1_500):
            s.add(chunk)
        return s.frame()

    a = sample(11)
    pd.testing.assert_frame_equal(a, sample(11))
    assert not a["key"].equals(sample(12)["key"])


@pytest.mark.parametrize(("sizes", "capacity"), [([100] * 5, 50), ([30, 500, 470], 20)])
def test_every_row_has_the_same_chance(sizes: list[int], capacity: int) -> None:
    seeds = 250
    total = sum(sizes)
    bounds = np.cumsum([0, *sizes])
    chunks = [numbered(lo, hi) for lo, hi in itertools.pairwise(bounds)]
    hits = np.zeros(total)
    for seed in range(seeds):
        sample = RideSample(capacity, seed=seed)
        for chunk in chunks:
            sample.add(chunk)
        hits[sample.frame()["n"].to_numpy()] += 1
    assert hits.sum() == capacity * seeds
    freq = hits / seeds
    p = capacity / total
    # The mean over a chunk of n rows has a standard deviation of about sqrt(p (1 - p) / (n seeds)).
    for chunk_freq, n in ((freq[: sizes[0]].mean(), sizes[0]), (freq[-sizes[-1] :].mean(), sizes[-1])):
        assert abs(chunk_freq - p) < 5 * math.sqrt(p * (1 - p) / (n * seeds)), (chunk_freq, p)
