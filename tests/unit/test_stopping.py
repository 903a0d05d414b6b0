"""The stop request sees a signal from any thread before Python has run the main thread's handler.

Each case runs in a child interpreter: it changes the process's signal handlers,
masks and wake-up fd, which must not leak into the test runner.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def run_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )


def test_a_signal_still_queued_for_the_process_stops_a_thread_that_defers_it() -> None:
    # The main thread blocks SIGTERM too, so the signal stays queued: no handler runs at all.
    r = run_child(
        """
        import os, signal, threading
        from taxifare_cli.errors import Terminated
        from taxifare_cli.stopping import StopRequest
        stop = StopRequest()
        stop.watch()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        seen = []
        def step():
            stop.defer_signals_to_main()
            stop.check()  # nothing yet
            os.kill(os.getpid(), signal.SIGTERM)
            try:
                stop.check()
            except Terminated as e:
                seen.append(e.signum)
        t = threading.Thread(target=step)
        t.start(); t.join()
        print(seen)
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"[{int(__import__('signal').SIGTERM)}]"


def test_a_delivered_signal_is_seen_before_the_python_handler_has_said_so() -> None:
    # The Python handler does nothing: only the byte CPython's C handler wrote can tell.
    r = run_child(
        """
        import os, signal, threading
        from taxifare_cli.errors import Terminated
        from taxifare_cli.stopping import StopRequest
        signal.signal(signal.SIGHUP, lambda *_: None)
        stop = StopRequest()
        stop.watch()
        os.kill(os.getpid(), signal.SIGHUP)
        seen = []
        def step():
            try:
                stop.check()
            except Terminated as e:
                seen.append(e.signum)
        t = threading.Thread(target=step)
        t.start(); t.join()
        print(seen)
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"[{int(__import__('signal').SIGHUP)}]"


def test_without_a_signal_check_lets_the_step_go_on() -> None:
    r = run_child(
        """
        import signal, threading
        from taxifare_cli.stopping import StopRequest
        signal.signal(signal.SIGUSR1, lambda *_: None)
        stop = StopRequest()
        stop.watch()
        signal.raise_signal(signal.SIGUSR1)  # a signal that is not a stop writes a byte too
        t = threading.Thread(target=lambda: [stop.check() for _ in range(100)])
        t.start(); t.join()
        print("went on")
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "went on"


@pytest.mark.parametrize("signum", [1, 15])
def test_a_stop_set_by_the_handler_is_raised_on_every_thread(signum: int) -> None:
    from taxifare_cli.errors import Terminated
    from taxifare_cli.stopping import StopRequest

    stop = StopRequest()
    stop.check()
    stop.set(signum)
    with pytest.raises(Terminated) as raised:
        stop.check()
    assert raised.value.signum == signum
    stop.clear()
    stop.check()
