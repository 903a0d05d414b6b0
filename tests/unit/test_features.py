import numpy as np
import pandas as pd
import pytest
from tests.factories import ride_frame

from taxifare_cli.core.features import FEATURE_NAMES, N_FEATURES, compute_features, haversine_km, local_time


def col(name: str) -> int:
    return FEATURE_NAMES.index(name)


def test_haversine_known_distance() -> None:
    # JFK to LaGuardia is about 17.0 km as the crow flies.
    d = haversine_km(np.array([40.6413]), np.array([-73.7781]), np.array([40.7769]), np.array([-73.8740]))
    assert d[0] == pytest.approx(17.0, abs=0.4)


def test_feature_matrix_shape_and_finiteness() -> None:
    x = compute_features(ride_frame(50))
    assert x.shape == (50, N_FEATURES) and x.dtype == np.float32
    assert np.isfinite(x).all()


def test_times_are_read_as_new_york_wall_clock() -> None:
    stamped = pd.Series(pd.to_datetime(["2015-01-15 13:00:00", "2015-07-15 13:00:00"], utc=True))
    assert local_time(stamped).hour.tolist() == [13, 13]  # no shift, no daylight-saving wobble


def test_one_month_of_training_data_does_not_blow_up_the_next_month() -> None:
    from taxifare_cli.core.features import min_variance
    from taxifare_cli.core.model import RunningStats

    jan = ride_frame(200, pickup_datetime=pd.date_range("2015-01-01", "2015-01-31", periods=200, tz="UTC"))
    jun = ride_frame(1, pickup_datetime=pd.to_datetime(["2015-06-30"], utc=True))
    stats = RunningStats(N_FEATURES)
    stats.update(compute_features(jan))
    z = (compute_features(jun)[0] - stats.mean) / np.sqrt(stats.variance(min_variance()))
    assert abs(z[col("years_since_2009")]) < 1 and abs(z[col("month_cos")]) < 4


def test_time_flags() -> None:
    # 2015-01-05 was a Monday: 17:00 is the weekday rush. 2015-01-10 was a Saturday: 23:00 is night.
    df = ride_frame(2, pickup_datetime=pd.to_datetime(["2015-01-05 17:00", "2015-01-10 23:00"], utc=True))
    x = compute_features(df)
    assert x[:, col("weekday_rush")].tolist() == [1.0, 0.0]
    assert x[:, col("night")].tolist() == [0.0, 1.0]
    assert x[:, col("weekend")].tolist() == [0.0, 1.0]


def test_fare_rise_and_year_trend() -> None:
    df = ride_frame(2, pickup_datetime=pd.to_datetime(["2012-09-03 12:00", "2012-09-05 12:00"], utc=True))
    x = compute_features(df)
    assert x[:, col("after_fare_rise")].tolist() == [0.0, 1.0]
    assert x[0, col("years_since_2009")] == pytest.approx(3.67, abs=0.01)


def test_airport_flags_and_grid_distance() -> None:
    df = ride_frame(
        2,
        pickup_latitude=[40.758, 40.758],
        pickup_longitude=[-73.985, -73.985],
        dropoff_latitude=[40.6413, 40.770],
        dropoff_longitude=[-73.7781, -73.975],
    )
    x = compute_features(df)
    assert x[:, col("airport_jfk")].tolist() == [1.0, 0.0]
    # Along the street grid a trip is never shorter than in a straight line.
    assert (x[:, col("grid_km")] >= x[:, col("haversine_km")] - 1e-4).all()
    assert x[0, col("haversine_km")] == pytest.approx(22.5, abs=1.0)


def test_same_place_trips_flagged() -> None:
    df = ride_frame(1, dropoff_latitude=[40.758], dropoff_longitude=[-73.985])
    assert compute_features(df)[0, col("same_place")] == 1.0
