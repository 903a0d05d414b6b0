import numpy as np
import pandas as pd
from tests.factories import ride_frame

from taxifare_cli.core.cleaning import REASONS, CleaningReport, clean_chunk, inside_nyc


def test_clean_rows_pass_untouched() -> None:
    df = ride_frame(5)
    out, report = clean_chunk(df)
    assert len(out) == 5
    assert report.rows_in == report.rows_out == 5
    assert report.rows_dropped == 0


def test_each_dirty_kind_is_counted_under_its_reason() -> None:
    df = ride_frame(10)
    df.loc[0, "pickup_longitude"] = 0.0  # zero coordinates
    df.loc[0, "pickup_latitude"] = 0.0
    df.loc[1, "dropoff_latitude"] = 41.2  # outside the box
    df.loc[2, "fare_amount"] = -3.0
    df.loc[3, "fare_amount"] = 93_000.0
    df.loc[4, "passenger_count"] = 208
    df.loc[5, "passenger_count"] = 0
    df.loc[6, "dropoff_longitude"] = np.nan
    df.loc[7] = df.loc[8]  # a duplicate of the next row
    out, report = clean_chunk(df)
    assert report.dropped["outside New York"] == 2
    assert report.dropped["fare out of range"] == 2
    assert report.dropped["passenger count out of range"] == 2
    assert report.dropped["missing or unparseable value"] == 1
    assert report.dropped["duplicate"] == 1
    assert report.rows_out == len(out) == 2
    assert report.rows_in == report.rows_out + report.rows_dropped
    assert set(report.as_dict()["dropped"]) <= set(REASONS)


def test_fare_bounds_are_exclusive() -> None:
    df = ride_frame(3, fare_amount=[0.0, 0.01, 400.0])
    out, _ = clean_chunk(df)
    assert out["fare_amount"].tolist() == [0.01]


def test_malformed_lines_from_the_reader_are_counted() -> None:
    df = ride_frame(2)
    df.attrs["malformed_rows"] = 3
    _, report = clean_chunk(df)
    assert report.rows_in == 5
    assert report.dropped["malformed line"] == 3


def test_prediction_mode_needs_no_fare_and_keeps_duplicates() -> None:
    df = ride_frame(2).drop(columns=["fare_amount", "key"])
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    out, report = clean_chunk(df, require_fare=False, dedupe=False)
    assert len(out) == 3 and report.rows_dropped == 0


def test_inside_nyc_box_edges() -> None:
    df = ride_frame(2, pickup_latitude=[40.5, 40.49], pickup_longitude=[-74.3, -74.0])
    assert inside_nyc(df).tolist() == [True, False]


def test_reports_add_up() -> None:
    a, b = CleaningReport(), CleaningReport()
    _, a = clean_chunk(ride_frame(3, fare_amount=[1.0, -1.0, 2.0]))
    _, b = clean_chunk(ride_frame(2, passenger_count=[9, 1]))
    a.add(b)
    assert (a.rows_in, a.rows_out, a.rows_dropped) == (5, 3, 2)
