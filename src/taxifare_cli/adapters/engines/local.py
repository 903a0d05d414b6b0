"""LocalEngine: a month's steps in this process, the two middle ones on two threads.

Evaluating Production and training the challenger read different files and
spend their time in numpy and TensorFlow, which release the GIL, so on two
cores they overlap. A step that fails on a transient error (ServiceError) is
retried with exponential backoff, at most `steps.retries` more times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from taxifare_cli.errors import STOP, ServiceError
from taxifare_cli.ports import MonthSteps

if TYPE_CHECKING:
    from taxifare_cli.settings import Settings

MAX_BACKOFF_S = 60.0


class LocalEngine:
    kind = "local"

    def __init__(self, *, parallel: bool = True, backoff_s: float = 2.0) -> None:
        self.parallel = parallel
        self.backoff_s = backoff_s

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalEngine:
        return cls()

    def run(self, steps: MonthSteps) -> None:
        self._retried(steps.prepare, steps.retries)
        if self.parallel:
            with ThreadPoolExecutor(
                max_workers=2, thread_name_prefix="taxifare-step", initializer=STOP.defer_signals_to_main
            ) as pool:
                champion = pool.submit(self._retried, steps.evaluate_champion, steps.retries)
                challenger = pool.submit(self._retried, steps.train_challenger, steps.retries)
                # Both are waited for before either's error is raised: no step is left running.
                errors = [f.exception() for f in (champion, challenger)]
            for error in errors:
                if error is not None:
                    raise error
        else:
            self._retried(steps.evaluate_champion, steps.retries)
            self._retried(steps.train_challenger, steps.retries)
        self._retried(steps.transition, steps.retries)
        steps.notify()  # retries delivery itself; never fails the run
        steps.finish()

    def _retried(self, step: Callable[[], None], retries: int) -> None:
        for attempt in range(retries + 1):
            try:
                step()
                return
            except ServiceError:
                if attempt == retries:
                    raise
                time.sleep(min(self.backoff_s * 2**attempt, MAX_BACKOFF_S))
