from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.factories import ride_frame

from taxifare_cli.core.schema import RAW_COLUMNS
from taxifare_cli.errors import DataError
from taxifare_cli.files.ride_csv import (
    bytes_opener,
    count_rows,
    file_opener,
    iter_csv_chunks,
    write_csv_atomic,
)

HEADER = ",".join(RAW_COLUMNS)
LINE = "2013-07-02 19:54:00.0000003,{fare},2013-07-02 19:54:00 UTC,-73.98,40.712278000000005,-73.95,40.75,{pax}"


def read_all(data: bytes, chunk: int = 1000) -> list[pd.DataFrame]:
    return list(iter_csv_chunks(bytes_opener(data), chunk, name="test"))


def test_types_and_values_of_a_real_looking_file() -> None:
    data = "\n".join([HEADER, LINE.format(fare=4.5, pax=1), LINE.format(fare="", pax="")]).encode()
    (df,) = read_all(data)
    assert list(df.columns) == list(RAW_COLUMNS)
    assert str(df["pickup_datetime"].dt.tz) == "UTC"
    assert df["pickup_datetime"].iloc[0] == pd.Timestamp("2013-07-02 19:54:00", tz="UTC")
    assert df["pickup_latitude"].iloc[0] == 40.712278000000005
    assert np.isnan(df["fare_amount"].iloc[1]) and np.isnan(df["passenger_count"].iloc[1])


def test_chunks_have_the_asked_size() -> None:
    lines = [HEADER] + [LINE.format(fare=i, pax=1) for i in range(2_500)]
    chunks = read_all("\n".join(lines).encode(), chunk=1_000)
    assert [len(c) for c in chunks] == [1_000, 1_000, 500]
    assert pd.concat(chunks)["fare_amount"].tolist() == [float(i) for i in range(2_500)]


def test_lines_with_wrong_field_count_are_skipped_and_counted() -> None:
    data = "\n".join([HEADER, LINE.format(fare=5, pax=1), "a,b,c", LINE.format(fare=6, pax=2)]).encode()
    chunks = read_all(data)
    assert sum(len(c) for c in chunks) == 2
    assert sum(c.attrs["malformed_rows"] for c in chunks) == 1


def test_a_file_of_many_pieces_keeps_every_row_in_order_and_counts_every_bad_line() -> None:
    # Several MiB, so the file is cut into pieces and each piece parsed in several blocks
    # on several threads; every 97th line is malformed.
    lines, fares = [HEADER], []
    for i in range(60_000):
        if i % 97 == 0:
            lines.append("a,b,c")
        else:
            lines.append(LINE.format(fare=i, pax=1))
            fares.append(float(i))
    chunks = read_all("\n".join(lines).encode(), chunk=25_000)
    assert pd.concat(chunks)["fare_amount"].tolist() == fares
    assert sum(c.attrs["malformed_rows"] for c in chunks) == 60_000 - len(fares)
    assert [len(c) for c in chunks[:-1]] == [25_000] * (len(chunks) - 1)


def test_unparseable_values_become_nulls_not_a_crash() -> None:
    lines = [HEADER] + [LINE.format(fare=5, pax=1)] * 3 + [LINE.format(fare="abc", pax=1)]
    lines.append(LINE.replace("2013-07-02 19:54:00 UTC", "yesterday").format(fare=7, pax=1))
    df = pd.concat(read_all("\n".join(lines).encode(), chunk=2))
    assert len(df) == 5
    assert np.isnan(df["fare_amount"].iloc[3])
    assert pd.isna(df["pickup_datetime"].iloc[4])
    assert df["fare_amount"].iloc[:3].tolist() == [5.0, 5.0, 5.0]


def test_missing_columns_are_named() -> None:
    data = b"key,fare_amount,pickup_datetime\nx,1,2015-01-01 00:00:00 UTC\n"
    with pytest.raises(DataError, match="lacks column"):
        read_all(data)


def test_empty_file_is_a_data_error() -> None:
    with pytest.raises(DataError, match="empty"):
        read_all(b"")


def test_extra_columns_are_ignored_and_order_does_not_matter() -> None:
    cols = ["extra", *reversed(RAW_COLUMNS)]
    row = ["z", "1", "40.75", "-73.95", "40.71", "-73.98", "2015-01-01 00:00:00 UTC", "9.5", "k"]
    (df,) = read_all((",".join(cols) + "\n" + ",".join(row) + "\n").encode())
    assert list(df.columns) == list(RAW_COLUMNS)
    assert df["fare_amount"].iloc[0] == 9.5


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    frame = ride_frame(5)
    path = tmp_path / "train_1k.csv"
    rows, digest = write_csv_atomic([frame.iloc[:2], frame.iloc[2:]], path)
    assert rows == 5 and digest.startswith("sha256:")
    text = path.read_text().splitlines()
    assert text[0] == ",".join(RAW_COLUMNS)  # no quotes, like the public files
    assert text[1].split(",")[2] == "2015-01-01 13:00:00 UTC"
    back = pd.concat(iter_csv_chunks(file_opener(path), 100, name="t"))
    pd.testing.assert_frame_equal(
        back.reset_index(drop=True)[["fare_amount", "pickup_latitude"]],
        frame[["fare_amount", "pickup_latitude"]],
    )
    assert count_rows(path) == 5


def test_failed_write_leaves_previous_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "train_1k.csv"
    write_csv_atomic([ride_frame(2)], path)
    before = path.read_bytes()

    def broken():  # type: ignore[no-untyped-def]
        yield ride_frame(1)
        raise RuntimeError("simulated crash mid-write")

    with pytest.raises(RuntimeError):
        write_csv_atomic(broken(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["train_1k.csv"]


def test_count_rows_without_final_newline(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text(HEADER + "\n" + LINE.format(fare=1, pax=1))
    assert count_rows(p) == 1


def test_a_byte_order_mark_and_crlf_line_ends_are_read_like_plain_lines() -> None:
    plain = "key,fare_amount,pickup_datetime,pickup_longitude,pickup_latitude,dropoff_longitude,dropoff_latitude,passenger_count\nk1,7.5,2015-01-15 08:30:00 UTC,-73.98,40.75,-73.96,40.77,1\n"
    windows = ("\ufeff" + plain.replace("\n", "\r\n")).encode("utf-8")
    (a,) = read_all(plain.encode(), 10)
    (b,) = read_all(windows, 10)
    pd.testing.assert_frame_equal(a, b)
    assert b.columns[0] == "key" and b["key"].tolist() == ["k1"]


@pytest.mark.parametrize("lenient", [False, True], ids=["typed", "lenient"])
def test_a_key_that_reads_like_a_null_is_kept_as_written(lenient: bool) -> None:
    # Found by the property tests: "NaN" is a key a user can give, and predict writes keys back.
    keys = ["NaN", "NA", "null", "None", "k-1"]
    lines = [HEADER] + [LINE.replace("2013-07-02 19:54:00.0000003", k).format(fare=5, pax=1) for k in keys]
    if lenient:  # a value that does not parse sends the file through the lenient pass
        lines.append(LINE.format(fare="abc", pax=1))
    df = pd.concat(read_all("\n".join(lines).encode()))
    assert df["key"].tolist()[: len(keys)] == keys
    assert df["fare_amount"].tolist()[: len(keys)] == [5.0] * len(keys)
