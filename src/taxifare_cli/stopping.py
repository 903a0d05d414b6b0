"""The process-wide stop request: a signal asked the command to stop; long loops on any thread check it.

Python runs a signal's handler on the main thread only, and only once that thread
is scheduled and holds the GIL. On a loaded machine that can be tens of
milliseconds after the signal was sent, long enough for a step on another thread
(the workflow's two middle steps) to pass its commit point and register a model
the user asked not to have. So `check()` also looks, on whatever thread calls it,
at what the kernel already knows:
- a signal still queued for the process (seen by threads that block it, which is
  what `defer_signals_to_main` makes the step threads do);
- a signal already delivered, whose number CPython's C-level handler wrote to the
  wake-up pipe before the Python handler had a chance to run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable

STOPPING_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


class StopRequest:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum = 0
        self._watched: frozenset[int] = frozenset()
        self._wakeup: int | None = None  # read end of the pipe CPython's C-level handler writes to

    def watch(self, signums: Iterable[int] = STOPPING_SIGNALS) -> None:
        """On the main thread, once the handlers are installed: see these signals from any thread."""
        if self._wakeup is not None:
            return
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        try:
            signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        except ValueError:  # not the main thread: the Python handler is all there is
            os.close(read)
            os.close(write)
            return
        self._watched = frozenset(int(s) for s in signums)
        self._wakeup = read

    def defer_signals_to_main(self) -> None:
        """For a worker thread's initializer: the watched signals go to the main thread, and stay
        visible to this thread's `check()` until they are delivered there."""
        if self._watched:
            signal.pthread_sigmask(signal.SIG_BLOCK, self._watched)

    def set(self, signum: int) -> None:
        self.signum = signum
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def check(self) -> None:
        from taxifare_cli.errors import Terminated

        if not self._event.is_set():
            self._look()
        if self._event.is_set():
            raise Terminated(self.signum)

    def _look(self) -> None:
        if not self._watched:
            return
        seen = {int(s) for s in signal.sigpending()} & self._watched
        if self._wakeup is not None:
            with contextlib.suppress(BlockingIOError):  # nothing written
                seen |= set(os.read(self._wakeup, 256)) & self._watched
        if seen:
            self.set(min(seen))


STOP = StopRequest()
