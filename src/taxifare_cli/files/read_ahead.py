"""Work on a stream of chunks on other threads while this one works.

`read_ahead`: the next item of an iterator made on another thread. `map_in_order`: a
function applied to items on a few threads at once, results in the items' order.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
U = TypeVar("U")
_DONE = object()


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield what `items` yields, producing up to `depth` items ahead on a daemon thread.

    An exception raised by `items` is raised here, where it would have been. When the
    consumer stops early (an error, a break), the producer stops at its next item.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as e:  # handed to the consumer, raised there
            put(e)

    worker = threading.Thread(target=produce, name="taxifare-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


def map_in_order(
    fn: Callable[[T], U],
    items: Iterable[T],
    *,
    workers: int,
    name: str,
    initializer: Callable[[], object] | None = None,
) -> Iterator[U]:
    """Yield `fn(item)` for each item, computed on `workers` threads, in the items' order.

    At most `workers` items are in flight, so memory stays that of a few chunks. An
    exception raised by `fn` is raised here, for its item. When the consumer stops early,
    work not started is cancelled, the threads are joined and `items` is closed.
    """
    pool = ThreadPoolExecutor(workers, name, initializer=initializer)
    pending: deque[Future[U]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            del item  # the worker holds it now
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for job in pending:
            job.cancel()
        pool.shutdown(wait=True)
        close = getattr(items, "close", None)
        if close is not None:
            close()
