"""files.ride_csv.write_fares: the fares of a file of rides, as a CSV any reader reads back."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from taxifare_cli.files.ride_csv import write_fares


def written(keys: object, fares: np.ndarray) -> str:
    out = io.BytesIO()
    write_fares(out, keys, fares, "fare_prediction")  # type: ignore[arg-type]
    return out.getvalue().decode()


def test_plain_keys_are_written_as_they_are_and_an_unpriced_ride_has_no_fare() -> None:
    text = written(pd.Series(["a", "b", "c"]), np.array([14.714, np.nan, 52.0]))
    assert text.splitlines() == ["a,14.71", "b,", "c,52"]


@pytest.mark.parametrize("keys", [["plain", 'say "hi"'], ["2015-01-01,a", "plain"], ["two\nlines", "x"]])
def test_keys_that_need_quotes_read_back_as_they_were(keys: list[str]) -> None:
    text = written(pd.Series(keys), np.array([3.0, 4.5]))
    back = pd.read_csv(io.StringIO(text), header=None, names=["key", "fare"], dtype={"key": str})
    assert list(back["key"]) == keys and list(back["fare"]) == [3.0, 4.5]


def test_fares_are_those_of_numpy_round_to_the_cent_and_numbers_as_keys_work() -> None:
    rng = np.random.default_rng(3)
    fares = rng.uniform(2.5, 90, 5_000)
    fares[::11] = np.nan
    text = written(pd.Series(range(5_000)), fares)
    back = pd.read_csv(io.StringIO(text), header=None, names=["key", "fare"])
    assert list(back["key"]) == list(range(5_000))
    np.testing.assert_array_equal(back["fare"].to_numpy(), np.round(fares, 2))
