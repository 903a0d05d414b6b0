"""Property-based tests (hypothesis) of what reads user input: the ride CSV reader and the `--ride` parser.

The properties: valid input comes back exactly, however it is chunked; any input at
all ends in frames or in a taxifare error (DataError, UsageError), never in another
exception (which the CLI would report as a bug, exit 1).
"""

from __future__ import annotations

import contextlib
import math
import string
from datetime import datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taxifare_cli.core.schema import RAW_COLUMNS, RIDE_FIELDS
from taxifare_cli.errors import DataError, TaxifareError, UsageError
from taxifare_cli.files.ride_csv import bytes_opener, iter_csv_chunks
from taxifare_cli.services.prediction import _pickup, parse_ride, ride_values

# A fixed seed in the suite, so that CI never meets a case no one has seen here first; explore with
# more examples and new seeds by editing these (600 and 3,000 examples passed on 2026-12-01).
CSV = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
FAST = settings(max_examples=300, deadline=None, derandomize=True)
HEADER = ",".join(RAW_COLUMNS)

times = st.datetimes(min_value=datetime(2009, 1, 1), max_value=datetime(2015, 12, 31)).map(
    lambda t: t.replace(microsecond=0)
)
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
rides = st.fixed_dictionaries(
    {
        "key": st.text(string.ascii_letters + string.digits + "-:. ", min_size=1, max_size=30).map(str.strip)
        .filter(bool),
        "fare_amount": finite,
        "pickup_datetime": times,
        "pickup_longitude": finite,
        "pickup_latitude": finite,
        "dropoff_longitude": finite,
        "dropoff_latitude": finite,
        "passenger_count": st.integers(0, 9),
    }
)  # fmt: skip


def line(ride: dict[str, object]) -> str:
    when = ride["pickup_datetime"]
    assert isinstance(when, datetime)
    fields = {**ride, "pickup_datetime": when.strftime("%Y-%m-%d %H:%M:%S UTC")}
    return ",".join(repr(fields[c]) if isinstance(fields[c], float) else str(fields[c]) for c in RAW_COLUMNS)


def read_all(data: bytes, chunk_size: int) -> list[pd.DataFrame]:
    return list(iter_csv_chunks(bytes_opener(data), chunk_size, name="rides"))


@CSV
@given(st.lists(rides, min_size=1, max_size=40), st.integers(1, 50), st.sampled_from(["\n", "\r\n"]))
def test_valid_rides_come_back_exactly_however_chunked(
    batch: list[dict], chunk_size: int, newline: str
) -> None:
    data = newline.join([HEADER, *(line(r) for r in batch)]) + newline
    frames = read_all(data.encode(), chunk_size)
    assert all(len(f) <= chunk_size for f in frames)
    got = pd.concat(frames, ignore_index=True)
    assert len(got) == len(batch)
    assert sum(f.attrs.get("malformed_rows", 0) for f in frames) == 0
    for ride, (_, row) in zip(batch, got.iterrows(), strict=True):
        assert row["key"] == ride["key"]
        assert row["passenger_count"] == ride["passenger_count"]
        assert row["pickup_datetime"].tz_convert(None).to_pydatetime() == ride["pickup_datetime"]
        for c in (
            "fare_amount",
            "pickup_longitude",
            "pickup_latitude",
            "dropoff_longitude",
            "dropoff_latitude",
        ):
            assert math.isclose(row[c], ride[c], rel_tol=1e-6, abs_tol=1e-9), c


@CSV
@given(st.lists(rides, min_size=1, max_size=10), st.data())
def test_a_byte_that_is_not_utf8_is_named_by_its_line(batch: list[dict], data: st.DataObject) -> None:
    lines = [HEADER.encode(), *(line(r).encode() for r in batch)]
    bad = data.draw(st.integers(1, len(batch)), label="bad line index")
    lines[bad] = lines[bad].replace(b",", b"\xff,", 1)  # in the key: a string column
    with pytest.raises(DataError, match=f"rides line {bad + 1} is not UTF-8"):
        read_all(b"\n".join(lines) + b"\n", 7)


@CSV
@given(st.binary(max_size=600), st.integers(1, 20))
def test_any_bytes_after_a_header_end_in_frames_or_a_data_error(body: bytes, chunk_size: int) -> None:
    try:
        frames = read_all(HEADER.encode() + b"\n" + body, chunk_size)
    except DataError:
        return
    rows = sum(len(f) for f in frames) + sum(f.attrs.get("malformed_rows", 0) for f in frames)
    assert rows <= body.count(b"\n") + body.count(b"\r") + 1


@CSV
@given(st.text(max_size=300))
def test_any_text_as_a_file_ends_in_frames_or_a_data_error(text: str) -> None:
    with contextlib.suppress(DataError):
        read_all(text.encode("utf-8", "surrogatepass"), 5)


# -- the --ride parser ------------------------------------------------------------------


field_names = st.sampled_from([*RIDE_FIELDS, "fare", "", " pickup_latitude ", "key"])
pairs = st.lists(
    st.one_of(st.text(max_size=30), st.tuples(field_names, st.text(max_size=30)).map("=".join)), max_size=10
)


@FAST
@given(pairs)
def test_any_ride_flags_give_every_field_or_a_usage_error(given_pairs: list[str]) -> None:
    try:
        values = ride_values(given_pairs)
    except UsageError:
        return
    assert set(RIDE_FIELDS) <= set(values)


@FAST
@given(pairs)
def test_any_ride_flags_parse_or_fail_as_taxifare_errors(given_pairs: list[str]) -> None:
    # Exit 2 (usage) or 4 (data), never an unexpected error: both parsers the CLI uses.
    try:
        frame = parse_ride(given_pairs)
    except (UsageError, DataError):
        pass
    else:
        assert len(frame) == 1
    try:
        values = ride_values(given_pairs)
        _pickup(values["pickup_datetime"])
    except TaxifareError as e:
        assert e.exit_code in (2, 4)


@FAST
@given(
    times,
    st.lists(st.floats(-180, 180, allow_nan=False), min_size=4, max_size=4),
    st.integers(1, 6),
    st.sampled_from(["%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
)
def test_a_ride_given_in_full_comes_back_exactly(
    when: datetime, coords: list[float], passengers: int, fmt: str
) -> None:
    names = ["pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"]
    given_pairs = [f"pickup_datetime={when.strftime(fmt)}", f"passenger_count={passengers}"]
    given_pairs += [f"{n}={v!r}" for n, v in zip(names, coords, strict=True)]
    frame = parse_ride(given_pairs)
    assert frame["pickup_datetime"][0].tz_convert(None).to_pydatetime() == when
    assert [frame[n][0] for n in names] == coords and frame["passenger_count"][0] == passengers
    assert _pickup(when.strftime(fmt)) == when


@FAST
@given(times, st.integers(-14, 14))
def test_an_offset_time_is_read_as_utc(when: datetime, hours: int) -> None:
    offset = f"{'+' if hours >= 0 else '-'}{abs(hours):02d}:00"
    assert _pickup(when.strftime("%Y-%m-%dT%H:%M:%S") + offset) == when - timedelta(hours=hours)
