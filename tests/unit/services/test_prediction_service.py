"""parse_ride, predict_rides and predict_file with the session's trained model in a fake registry."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.factories import ride_frame
from tests.fakes import FakeRegistry, RecordingProgress

from taxifare_cli.artifact import FareModel
from taxifare_cli.core.pricing import NEW_YORK_HINT
from taxifare_cli.errors import DataError, NotFoundError, UsageError
from taxifare_cli.files.ride_csv import write_csv_atomic
from taxifare_cli.ports import ModelRef
from taxifare_cli.services.prediction import PRED_COLUMN, parse_ride, predict_file, predict_rides

V1 = ModelRef(version=1)
RIDE = [  # the first ride of tests.factories.ride_frame, as --ride pairs
    "pickup_datetime=2015-01-01 13:00:00 UTC",
    "pickup_longitude=-73.985",
    "pickup_latitude=40.758",
    "dropoff_longitude=-73.965",
    "dropoff_latitude=40.776",
]


# -- parse_ride -----------------------------------------------------------------------------


def test_parse_ride_makes_one_typed_ride_with_one_passenger_by_default() -> None:
    ride = parse_ride([*RIDE[:2], " pickup_latitude = 40.758 ", *RIDE[3:]])
    assert len(ride) == 1
    assert ride.loc[0, "pickup_datetime"] == pd.Timestamp("2015-01-01 13:00:00", tz="UTC")
    assert ride.loc[0, "pickup_latitude"] == 40.758
    assert ride.loc[0, "passenger_count"] == 1.0
    assert parse_ride([*RIDE, "passenger_count=3"]).loc[0, "passenger_count"] == 3.0


@pytest.mark.parametrize(
    ("pairs", "error", "message"),
    [
        # The shape of the command line: usage errors (exit 2).
        ([*RIDE, "fare_amount=12"], UsageError, "--ride 'fare_amount=12' is not FIELD=VALUE"),
        ([*RIDE, "passenger_count"], UsageError, "--ride 'passenger_count' is not FIELD=VALUE"),
        (RIDE[1:], UsageError, "the ride lacks pickup_datetime"),
        # Values that cannot be a ride: bad input data (exit 4).
        ([*RIDE[:1], "pickup_longitude=west", *RIDE[2:]], DataError, "a ride field is not a number"),
        (["pickup_datetime=yesterday", *RIDE[1:]], DataError, "pickup_datetime 'yesterday' is not a time"),
    ],
)
def test_parse_ride_refuses_what_is_not_a_ride(
    pairs: list[str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse_ride(pairs)


# -- predict_rides --------------------------------------------------------------------------


def test_predict_rides_prices_each_ride_to_the_cent(registry: FakeRegistry) -> None:
    rides = ride_frame(4)
    pred = predict_rides(registry, V1, rides)
    assert pred.version.version == 1 and len(pred.fares) == 4
    assert all(math.isfinite(f) and f > 0 for f in pred.fares)
    assert pred.fares == [round(f, 2) for f in pred.fares]
    expected = FareModel.load(registry.artifact_dir(1)).price(rides).fares
    assert pred.fares == pytest.approx(expected, abs=0.005)
    assert predict_rides(registry, V1, parse_ride(RIDE)).fares == pred.fares[:1]


def test_predict_rides_by_stage(registry: FakeRegistry) -> None:
    with pytest.raises(NotFoundError, match="no model is in Production"):
        predict_rides(registry, ModelRef(stage="Production"), ride_frame(1))
    registry.promote(1, "Production", by="test")
    assert predict_rides(registry, ModelRef(stage="Production"), ride_frame(1)).version.stage == "Production"


def test_a_ride_outside_new_york_is_a_data_error(registry: FakeRegistry) -> None:
    rides = ride_frame(2, dropoff_latitude=[40.776, 51.5])  # the second ends in London
    with pytest.raises(DataError, match="cannot price this ride: outside New York") as e:
        predict_rides(registry, V1, rides)
    assert e.value.hint == NEW_YORK_HINT
    outside = [p.replace("pickup_longitude=-73.985", "pickup_longitude=2.35") for p in RIDE]
    with pytest.raises(DataError, match="outside New York"):
        predict_rides(registry, V1, parse_ride(outside))


# -- predict_file ---------------------------------------------------------------------------


@pytest.fixture
def rides_file(tmp_path: Path) -> Path:
    """Seven rides: 0, 2, 4, 5, 6 priceable; 1 outside New York; 3 with no passengers; plus a broken line."""
    rides = ride_frame(7)
    rides.loc[1, "pickup_latitude"] = 0.0
    rides.loc[3, "passenger_count"] = 0.0
    path = tmp_path / "in" / "rides.csv"
    write_csv_atomic([rides], path)
    with path.open("a") as f:
        f.write("a,broken,line,with,far,too,many,fields,here\n")
    return path


def test_predict_file_writes_every_key_with_a_fare_or_nothing(
    registry: FakeRegistry, rides_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "fares.csv"
    progress = RecordingProgress()
    result, frame = predict_file(registry, V1, rides_file, out, chunk_size=3, progress=progress)
    assert frame is None and result.output == out and result.version.version == 1
    written = pd.read_csv(out, dtype={"key": str})
    assert list(written.columns) == ["key", PRED_COLUMN]
    assert list(written["key"]) == list(ride_frame(7)["key"])
    missing = written[PRED_COLUMN].isna()
    assert list(missing[missing].index) == [1, 3]
    good = written.loc[~missing, PRED_COLUMN]
    assert np.isfinite(good).all() and (good > 0).all()
    assert (result.rows, result.predicted) == (7, 5)
    assert result.report.rows_in == 8  # the broken line counts as read
    assert dict(result.report.dropped) == {
        "outside New York": 1,
        "passenger count out of range": 1,
        "malformed line": 1,
    }
    assert result.as_dict()["skipped"] == {
        "malformed line": 1,
        "passenger count out of range": 1,
        "outside New York": 1,
    }
    assert progress.advanced("predicting rides.csv") == 7
    assert [p.name for p in out.parent.iterdir()] == ["fares.csv"]  # no temporary file left


def test_predict_file_agrees_with_predict_rides(registry: FakeRegistry, tmp_path: Path) -> None:
    rides = ride_frame(5)
    path = tmp_path / "rides.csv"
    write_csv_atomic([rides], path)
    result, frame = predict_file(registry, V1, path, None, chunk_size=2)
    assert result.output is None and frame is not None
    assert list(frame["key"]) == list(rides["key"])
    assert list(frame[PRED_COLUMN]) == pytest.approx(predict_rides(registry, V1, rides).fares, abs=0.006)


def test_without_a_key_column_rows_are_numbered(registry: FakeRegistry, tmp_path: Path) -> None:
    path = tmp_path / "rides.csv"
    ride_frame(5).drop(columns=["key", "fare_amount"]).to_csv(path, index=False)
    _, frame = predict_file(registry, V1, path, None, chunk_size=2)
    assert frame is not None and list(frame["key"]) == [0, 1, 2, 3, 4]


def test_missing_or_unfit_input_is_a_data_error_and_writes_nothing(
    registry: FakeRegistry, tmp_path: Path
) -> None:
    out = tmp_path / "out.csv"
    with pytest.raises(DataError, match="does not exist"):
        predict_file(registry, V1, tmp_path / "nope.csv", out, chunk_size=10)
    path = tmp_path / "rides.csv"
    ride_frame(3).drop(columns=["dropoff_latitude"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="lacks column"):
        predict_file(registry, V1, path, out, chunk_size=10)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry", "rides.csv"]


class PricingFailed(RuntimeError):
    pass


@pytest.fixture
def pricing_fails_on_second_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = FareModel.predict_features  # the network: what every pricing path calls once a chunk
    calls = []

    def predict_features(self: FareModel, x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        if len(calls) % 2 == 0:  # the second chunk of each call of predict_file
            raise PricingFailed("the model broke halfway")
        return real(self, x)

    monkeypatch.setattr(FareModel, "predict_features", predict_features)


@pytest.mark.usefixtures("pricing_fails_on_second_chunk")
def test_output_is_atomic_when_pricing_fails_midway(
    registry: FakeRegistry, rides_file: Path, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(PricingFailed):
        predict_file(registry, V1, rides_file, out_dir / "fares.csv", chunk_size=3)
    assert list(out_dir.iterdir()) == []  # no fares.csv, no .fares.csv.*.part

    (out_dir / "fares.csv").write_text("key,fare_prediction\nold,1.0\n")
    with pytest.raises(PricingFailed):
        predict_file(registry, V1, rides_file, out_dir / "fares.csv", chunk_size=3)
    assert (out_dir / "fares.csv").read_text() == "key,fare_prediction\nold,1.0\n"  # what was there stays
    assert [p.name for p in out_dir.iterdir()] == ["fares.csv"]


def test_a_file_with_no_rides_gives_a_csv_with_just_the_header(
    registry: FakeRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "rides.csv"
    ride_frame(0).to_csv(path, index=False)
    out = tmp_path / "fares.csv"
    result, _ = predict_file(registry, V1, path, out, chunk_size=10)
    assert (result.rows, result.predicted) == (0, 0)
    # The output is a CSV of key and prediction, whatever the number of rows.
    assert out.read_text() == f"key,{PRED_COLUMN}\n"
