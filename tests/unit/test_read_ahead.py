"""files.read_ahead: items made on another thread, in order; errors raised where they belong."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from taxifare_cli.files.read_ahead import map_in_order, read_ahead


def test_items_come_in_order_made_on_another_thread() -> None:
    makers: list[str] = []

    def items() -> Iterator[int]:
        for i in range(50):
            makers.append(threading.current_thread().name)
            yield i

    assert list(read_ahead(items(), depth=2)) == list(range(50))
    assert set(makers) == {"taxifare-read-ahead"}


def test_the_next_item_is_made_while_the_consumer_works() -> None:
    made = threading.Event()

    def items() -> Iterator[int]:
        yield 1
        made.set()
        yield 2

    it = read_ahead(items())
    assert next(it) == 1
    assert made.wait(5)  # made before it was asked for
    assert list(it) == [2]


def test_an_error_of_the_producer_is_raised_in_the_consumer_after_what_came_before() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("line 7 is not a ride")

    got: list[int] = []
    with pytest.raises(ValueError, match="line 7"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1]


def test_a_consumer_that_stops_early_stops_the_producer() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1000):
            made.append(i)
            yield i

    for item in read_ahead(items(), depth=1):
        if item == 3:
            break
    count = len(made)
    time.sleep(0.3)
    assert count == len(made) <= 3 + 3  # the one consumed, one queued, one being offered


def test_map_in_order_keeps_the_order_whatever_finishes_first() -> None:
    def slow_for_evens(i: int) -> int:
        time.sleep(0.02 if i % 2 == 0 else 0.0)
        return i * 10

    assert list(map_in_order(slow_for_evens, iter(range(9)), workers=3, name="t")) == [
        i * 10 for i in range(9)
    ]


def test_map_in_order_raises_the_error_of_its_item_and_closes_the_source_when_stopped() -> None:
    closed: list[bool] = []
    started: list[int] = []

    def source():  # type: ignore[no-untyped-def]
        try:
            yield from range(100)
        finally:
            closed.append(True)

    def work(i: int) -> int:
        started.append(i)
        if i == 3:
            raise ValueError(f"bad item {i}")
        return i

    out = map_in_order(work, source(), workers=2, name="t")
    assert [next(out), next(out), next(out)] == [0, 1, 2]
    with pytest.raises(ValueError, match="bad item 3"):
        next(out)
    assert closed == [True]  # the source was closed, not read to its end
    assert max(started) < 10  # only a few items in flight, never the whole source
