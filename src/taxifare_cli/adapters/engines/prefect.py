"""PrefectEngine: a month's steps as a Prefect 3 flow, and `flow.serve` for the schedule.

The flow "taxifare-monthly" has the original project's tasks: preprocess_new_data
(prepare) → evaluate_production_model ‖ re_train (submitted together on a
two-thread task runner) → transition_model → notify (notify, then finish: the
run is recorded in the history by the same task). A task retries only on a
transient error (ServiceError), at most `steps.retries` more times, backing off
as the local engine does. Results live on the steps object, so nothing is
cached or persisted by Prefect.

An error raised by a step surfaces from `run` as that same exception (Prefect
re-raises it), so the CLI maps it to its exit code; Prefect's own failures
(no API, a server that does not answer) become ServiceError. Prefect logs to
stderr (its console handler), never to stdout, which carries the command's result.

With no PREFECT_API_URL, each run starts Prefect's temporary local server
(some seconds); schedules need a real one (`prefect server start` or Prefect Cloud).
Importing this module costs about a second: bootstrap imports it only when the
prefect engine is chosen.
"""

from __future__ import annotations

import os

# Before `import prefect`: its settings and SDK telemetry read the environment once, at import.
# Nothing leaves the machine unless the user asked for it; a cold temporary server may take a while.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.settings import get_current_settings
from prefect.task_runners import ThreadPoolTaskRunner

from taxifare_cli.errors import ConfigError, ServiceError
from taxifare_cli.ports import MonthSteps

if TYPE_CHECKING:
    from taxifare_cli.settings import Settings

FLOW_NAME = "taxifare-monthly"
SCHEDULE_FLOW_NAME = "taxifare-monthly-schedule"
DEPLOYMENT_NAME = "taxifare-monthly"
MAX_BACKOFF_S = 60.0
# The original project's task names, for each step of ports.MonthSteps.
TASK_NAMES = {
    "prepare": "preprocess_new_data",
    "evaluate_champion": "evaluate_production_model",
    "train_challenger": "re_train",
    "transition": "transition_model",
    "notify": "notify",  # steps.notify, then steps.finish
}


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """retry_condition_fn: retry only a ServiceError (Prefect wants a plain function here)."""
    return isinstance(state.data, ServiceError)


def api_url() -> str | None:
    """The Prefect API this process talks to: PREFECT_API_URL, else the active profile's, else None."""
    url = get_current_settings().api.url
    return str(url) if url else None


class PrefectEngine:
    kind = "prefect"

    def __init__(self, *, backoff_s: float = 2.0) -> None:
        self.backoff_s = backoff_s

    @classmethod
    def from_settings(cls, settings: Settings) -> PrefectEngine:
        return cls()

    def _delays(self, retries: int) -> list[float]:
        return [min(self.backoff_s * 2**attempt, MAX_BACKOFF_S) for attempt in range(retries)]

    def _task(self, step: str, fn: Callable[[], None], retries: int, raised: list[BaseException]) -> Any:
        """`fn` as a Prefect task named for `step`; what it raises is remembered in `raised`."""

        def call() -> None:
            try:
                fn()
            except BaseException as e:
                raised.append(e)
                raise

        name = TASK_NAMES[step]
        call.__name__ = call.__qualname__ = name  # Prefect's task key (and the UI) go by it
        return task(
            name=name,
            task_run_name=name,
            retries=retries,
            retry_delay_seconds=self._delays(retries) or 0,
            retry_condition_fn=_transient,
            cache_policy=NONE,
            persist_result=False,
            log_prints=False,
        )(call)

    def run(self, steps: MonthSteps) -> None:
        raised: list[BaseException] = []
        n = steps.retries
        prepare = self._task("prepare", steps.prepare, n, raised)
        champion = self._task("evaluate_champion", steps.evaluate_champion, n, raised)
        challenger = self._task("train_challenger", steps.train_challenger, n, raised)
        transition = self._task("transition", steps.transition, n, raised)

        def notify_and_finish() -> None:
            steps.notify()  # retries delivery itself; never fails the run
            steps.finish()

        notify = self._task("notify", notify_and_finish, 0, raised)

        def monthly() -> None:
            prepare()
            futures = [champion.submit(), challenger.submit()]
            for future in futures:  # both are waited for before either's error is raised
                future.wait()
            for future in futures:
                future.result()
            transition()
            notify()

        runner: Any = ThreadPoolTaskRunner(max_workers=2)  # Prefect types its runners invariantly
        started = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        month_flow = flow(
            name=FLOW_NAME,
            flow_run_name=f"taxifare-{steps.month}-{started}",
            task_runner=runner,
            persist_result=False,
            log_prints=False,
            validate_parameters=False,
        )(monthly)
        try:
            month_flow()
        except Exception as e:
            if any(e is r for r in raised):
                raise  # a step's own error, unchanged: the CLI knows its exit code
            raise ServiceError(
                f"Prefect could not run the {steps.month} flow: {e}",
                hint="check PREFECT_API_URL and that the Prefect server answers, or use --engine local",
            ) from e

    def serve(self, cron: str, job: Callable[[], dict[str, Any]]) -> None:
        """Register the "taxifare-monthly" deployment on `cron` and run it until stopped (Ctrl-C)."""
        if api_url() is None:
            raise ConfigError(
                "the prefect engine cannot schedule without a Prefect server: "
                "the temporary one a flow run starts cannot fire schedules",
                hint="run `prefect server start`, then `export PREFECT_API_URL=http://127.0.0.1:4200/api`",
            )

        def scheduled() -> dict[str, Any]:
            return job()

        schedule_flow = flow(
            name=SCHEDULE_FLOW_NAME,
            persist_result=False,
            log_prints=False,
            validate_parameters=False,
        )(scheduled)
        schedule_flow.serve(name=DEPLOYMENT_NAME, cron=cron)
