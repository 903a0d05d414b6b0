"""LocalEngine: the order of a month's steps, the two middle ones at once, retries of transient failures.

The steps are a recording fake of ports.MonthSteps: each notes when it started
and ended (time.monotonic) and on which thread, and can sleep or fail on demand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from taxifare_cli.adapters.engines.local import LocalEngine
from taxifare_cli.errors import DataError, ServiceError
from taxifare_cli.ports import MonthSteps

STEPS = ("prepare", "evaluate_champion", "train_challenger", "transition", "notify", "finish")
MIDDLE = ("evaluate_champion", "train_challenger")
_sleep = time.sleep  # the steps' own, untouched when a test patches the engine's


@dataclass
class Span:
    step: str
    start: float
    end: float
    thread: str
    failed: bool


@dataclass
class RecordingSteps(MonthSteps):
    """Each step sleeps `sleep[step]` seconds; `fail[step]` lists what its successive calls raise (None: succeed)."""

    month: str = "jan"
    retries: int = 2
    sleep: dict[str, float] = field(default_factory=dict)
    fail: dict[str, list[Exception | None]] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _step(self, name: str) -> None:
        start = time.monotonic()
        _sleep(self.sleep.get(name, 0.0))
        queue = self.fail.get(name) or []
        error = queue.pop(0) if queue else None
        with self._lock:
            self.spans.append(
                Span(name, start, time.monotonic(), threading.current_thread().name, error is not None)
            )
        if error is not None:
            raise error

    def calls(self, name: str) -> int:
        return sum(s.step == name for s in self.spans)

    def span(self, name: str) -> Span:
        [s] = [s for s in self.spans if s.step == name and not s.failed]
        return s

    def prepare(self) -> None:
        self._step("prepare")

    def evaluate_champion(self) -> None:
        self._step("evaluate_champion")

    def train_challenger(self) -> None:
        self._step("train_challenger")

    def transition(self) -> None:
        self._step("transition")

    def notify(self) -> None:
        self._step("notify")

    def finish(self) -> None:
        self._step("finish")


def timed(run: Callable[[], None]) -> float:
    start = time.monotonic()
    run()
    return time.monotonic() - start


@pytest.mark.parametrize("parallel", [True, False])
def test_steps_run_once_each_in_order(parallel: bool) -> None:
    steps = RecordingSteps()
    LocalEngine(parallel=parallel, backoff_s=0).run(steps)
    assert sorted(s.step for s in steps.spans) == sorted(STEPS)
    prepare, transition = steps.span("prepare"), steps.span("transition")
    for middle in MIDDLE:
        s = steps.span(middle)
        assert prepare.end <= s.start and s.end <= transition.start
    assert [s.step for s in steps.spans][-3:] == ["transition", "notify", "finish"]
    assert steps.spans[0].step == "prepare"


def test_the_middle_steps_overlap_when_parallel() -> None:
    steps = RecordingSteps(sleep=dict.fromkeys(MIDDLE, 0.3))
    elapsed = timed(lambda: LocalEngine(parallel=True, backoff_s=0).run(steps))
    assert elapsed < 0.5, f"{elapsed:.2f} s: the two 0.3 s steps did not run at once"
    a, b = steps.span("evaluate_champion"), steps.span("train_challenger")
    assert a.start < b.end and b.start < a.end  # the intervals intersect
    assert a.thread != b.thread


def test_the_middle_steps_do_not_overlap_when_not_parallel() -> None:
    steps = RecordingSteps(sleep=dict.fromkeys(MIDDLE, 0.3))
    elapsed = timed(lambda: LocalEngine(parallel=False, backoff_s=0).run(steps))
    assert elapsed >= 0.6
    a, b = steps.span("evaluate_champion"), steps.span("train_challenger")
    assert a.end <= b.start
    assert a.thread == b.thread == threading.current_thread().name


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("step", ["prepare", "train_challenger", "transition"])
def test_a_transient_failure_is_retried_until_it_succeeds(parallel: bool, step: str) -> None:
    steps = RecordingSteps(retries=2, fail={step: [ServiceError("503"), ServiceError("503")]})
    LocalEngine(parallel=parallel, backoff_s=0).run(steps)
    assert steps.calls(step) == 3
    assert steps.calls("finish") == 1


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("step", ["prepare", "evaluate_champion", "transition"])
def test_a_transient_failure_is_raised_after_the_retries(parallel: bool, step: str) -> None:
    steps = RecordingSteps(retries=2, fail={step: [ServiceError(f"down {i}") for i in range(5)]})
    with pytest.raises(ServiceError, match="down 2"):  # the last of 1 + 2 attempts
        LocalEngine(parallel=parallel, backoff_s=0).run(steps)
    assert steps.calls(step) == 3
    assert steps.calls("finish") == 0 and steps.calls("notify") == 0


def test_no_retries_means_one_attempt() -> None:
    steps = RecordingSteps(retries=0, fail={"prepare": [ServiceError("down")]})
    with pytest.raises(ServiceError):
        LocalEngine(backoff_s=0).run(steps)
    assert steps.calls("prepare") == 1
    assert steps.calls("evaluate_champion") == steps.calls("train_challenger") == 0


def test_the_backoff_doubles_between_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("taxifare_cli.adapters.engines.local.time.sleep", slept.append)
    steps = RecordingSteps(retries=3, fail={"prepare": [ServiceError("x")] * 3})
    LocalEngine(backoff_s=0.5).run(steps)
    assert slept == [0.5, 1.0, 2.0]


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("error", [DataError("bad month"), ValueError("a bug")])
def test_a_non_transient_error_is_not_retried(parallel: bool, error: Exception) -> None:
    steps = RecordingSteps(retries=3, fail={"train_challenger": [error]})
    with pytest.raises(type(error)):
        LocalEngine(parallel=parallel, backoff_s=0).run(steps)
    assert steps.calls("train_challenger") == 1
    assert steps.calls("transition") == 0 and steps.calls("finish") == 0


@pytest.mark.parametrize("failing", MIDDLE)
def test_when_one_middle_step_fails_the_other_finishes_first(failing: str) -> None:
    other = next(s for s in MIDDLE if s != failing)
    steps = RecordingSteps(retries=0, sleep={other: 0.3}, fail={failing: [DataError("broken")]})
    with pytest.raises(DataError, match="broken"):
        LocalEngine(parallel=True, backoff_s=0).run(steps)
    raised_at = time.monotonic()
    done = steps.span(other)  # it ran to its end ...
    assert done.end <= raised_at  # ... before the error reached the caller
    assert done.end - done.start >= 0.3
    assert steps.calls("transition") == 0


def test_notify_is_not_retried_and_a_failure_there_is_the_steps_business() -> None:
    """notify retries delivery itself (MonthRun.notify never raises); the engine calls it once."""
    steps = RecordingSteps(retries=3)
    LocalEngine(backoff_s=0).run(steps)
    assert steps.calls("notify") == 1 and steps.calls("finish") == 1
