"""PrefectEngine against a real Prefect 3 server (prefect_test_harness): no mocks of Prefect.

One harness for the module (a server subprocess on a temporary database, some
seconds to start); each flow run is then about a second. A recording fake of
ports.MonthSteps shows the order, the overlap of the two middle steps and the
retries; a real Taxifare app runs two months end to end on the prefect engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taxifare_cli.errors import ConfigError, ServiceError

# Nothing leaves the machine, and a cold server on a busy machine has time to start.
OFFLINE = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}
TASK_NAMES = {"preprocess_new_data", "evaluate_production_model", "re_train", "transition_model", "notify"}
MIDDLE = ("evaluate_champion", "train_challenger")


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prefect server for the module (PREFECT_HOME in a tmp dir); yields its API URL."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
        for name, value in OFFLINE.items():
            mp.setenv(name, os.environ.get(name, value))
        from prefect.settings import PREFECT_API_URL
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            url = PREFECT_API_URL.value()
            assert url
            yield str(url)


class RecordingSteps:
    """ports.MonthSteps that records each call (attempts too), its thread and its time span."""

    def __init__(
        self, *, retries: int = 0, sleep: float = 0.5, fail: dict[str, list[BaseException]] | None = None
    ):
        self.month = f"t{uuid.uuid4().hex[:8]}"  # a unique month label, to find the flow run by name
        self.retries = retries
        self.sleep = sleep
        self.fail = fail or {}
        self.calls: list[str] = []
        self.threads: dict[str, str] = {}
        self.spans: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _step(self, name: str, sleep: float = 0.0) -> None:
        start = time.monotonic()
        with self._lock:
            self.calls.append(name)
            self.threads[name] = threading.current_thread().name
            pending = self.fail.get(name)
            error = pending.pop(0) if pending else None
        if error is not None:
            raise error
        time.sleep(sleep)
        self.spans[name] = (start, time.monotonic())

    def prepare(self) -> None:
        self._step("prepare")

    def evaluate_champion(self) -> None:
        self._step("evaluate_champion", self.sleep)

    def train_challenger(self) -> None:
        self._step("train_challenger", self.sleep)

    def transition(self) -> None:
        self._step("transition")

    def notify(self) -> None:
        self._step("notify")

    def finish(self) -> None:
        self._step("finish")


def _engine(prefect_api: str) -> Any:
    from taxifare_cli.adapters.engines.prefect import PrefectEngine

    return PrefectEngine(backoff_s=0.05)


def _flow_run(month: str) -> Any:
    """The one flow run of "taxifare-monthly" whose name carries `month`."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["taxifare-monthly"])),
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=f"taxifare-{month}-")),
        )
    assert len(runs) == 1, [r.name for r in runs]
    return runs[0]


def _task_runs(flow_run_id: Any, expected: int, timeout_s: float = 15.0) -> list[Any]:
    """The flow run's task runs; Prefect 3 records them from events, a moment after the run ends."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            done = [r for r in runs if r.state is not None and r.state.is_final()]
            if len(done) >= expected or time.monotonic() > deadline:
                return runs
            time.sleep(0.2)


def test_flow_runs_each_step_once_in_order_with_the_middle_two_at_once(prefect_api: str) -> None:
    steps = RecordingSteps()
    _engine(prefect_api).run(steps)

    assert steps.calls[0] == "prepare"
    assert sorted(steps.calls[1:3]) == sorted(MIDDLE)
    assert steps.calls[3:] == ["transition", "notify", "finish"]
    # The two middle steps overlap: each sleeps 0.5 s, together they take well under 1 s.
    start = min(steps.spans[s][0] for s in MIDDLE)
    end = max(steps.spans[s][1] for s in MIDDLE)
    assert end - start < 0.9, steps.spans
    assert steps.threads["evaluate_champion"] != steps.threads["train_challenger"]

    run = _flow_run(steps.month)
    assert run.name.startswith(f"taxifare-{steps.month}-") and run.state.is_completed()
    tasks = _task_runs(run.id, expected=5)
    assert {t.name for t in tasks} == TASK_NAMES, [t.name for t in tasks]
    assert all(t.state.is_completed() for t in tasks), [(t.name, t.state) for t in tasks]


def test_a_transient_error_is_retried(prefect_api: str) -> None:
    steps = RecordingSteps(retries=1, sleep=0.0, fail={"train_challenger": [ServiceError("registry down")]})
    _engine(prefect_api).run(steps)

    assert steps.calls.count("train_challenger") == 2
    assert steps.calls[-3:] == ["transition", "notify", "finish"]
    (re_train,) = [t for t in _task_runs(_flow_run(steps.month).id, expected=5) if t.name == "re_train"]
    assert re_train.run_count == 2 and re_train.state.is_completed()


def test_a_transient_error_surfaces_unchanged_once_retries_are_spent(prefect_api: str) -> None:
    errors: list[BaseException] = [
        ServiceError("down", hint="later"),
        ServiceError("still down", hint="later"),
    ]
    last = errors[-1]
    steps = RecordingSteps(retries=1, sleep=0.0, fail={"prepare": errors})
    with pytest.raises(ServiceError) as caught:
        _engine(prefect_api).run(steps)
    assert caught.value is last and caught.value.hint == "later"  # the CLI maps it to exit 5
    assert steps.calls == ["prepare", "prepare"]


def test_any_other_error_is_not_retried_and_surfaces_as_itself(prefect_api: str) -> None:
    boom = ValueError("bad month")
    steps = RecordingSteps(retries=2, sleep=0.1, fail={"train_challenger": [boom]})
    with pytest.raises(ValueError, match="bad month") as caught:
        _engine(prefect_api).run(steps)
    assert caught.value is boom
    assert steps.calls.count("train_challenger") == 1
    assert "evaluate_champion" in steps.spans  # the other middle step was waited for
    assert "transition" not in steps.calls and "finish" not in steps.calls
    assert _flow_run(steps.month).state.is_failed()


def test_a_prefect_server_that_does_not_answer_is_a_service_error(prefect_api: str) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    steps = RecordingSteps(sleep=0.0)
    with (
        temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}),
        pytest.raises(ServiceError, match="Prefect could not run") as caught,
    ):
        _engine(prefect_api).run(steps)
    assert "127.0.0.1:9" in str(caught.value) and caught.value.exit_code == 5
    assert steps.calls == []


def test_prefect_logs_go_to_stderr_and_stdout_stays_clean(prefect_api: str, tmp_path: Path) -> None:
    """In a real process: stdout carries the command's result, so Prefect must not write there."""
    script = textwrap.dedent(
        """
        from taxifare_cli.adapters.engines.prefect import PrefectEngine

        class Steps:
            month, retries = "stdout-check", 0
            def prepare(self): pass
            def evaluate_champion(self): pass
            def train_challenger(self): pass
            def transition(self): pass
            def notify(self): pass
            def finish(self): pass

        PrefectEngine().run(Steps())
        """
    )
    env = {**os.environ, **OFFLINE, "PREFECT_API_URL": prefect_api, "PREFECT_HOME": str(tmp_path / "prefect")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "taxifare-stdout-check" in done.stderr  # Prefect's logs are there


def test_two_months_end_to_end_on_the_prefect_engine(
    prefect_api: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from taxifare_cli.app import Taxifare
    from taxifare_cli.settings import load_settings

    monkeypatch.setenv("TAXIFARE_DATA__SYNTHETIC_MONTH_ROWS", "2000")
    monkeypatch.setenv("TAXIFARE_TRAINING__HIDDEN_LAYERS", "[8]")
    flags = {
        "workflow.engine": "prefect",
        "workflow.policy": "auto",
        "workflow.min_gain": 0.0,
        "training.epochs": 1,
    }
    app = Taxifare(load_settings(config=None, flags=flags).settings)

    jan = app.run_workflow("jan")
    assert jan.status == "done" and jan.outcome is not None
    assert jan.outcome.engine == "prefect" and jan.outcome.verdict == "promoted"
    assert jan.outcome.production_version is None and jan.outcome.notified is True

    feb = app.run_workflow("feb")
    assert feb.status == "done" and feb.outcome is not None
    assert feb.outcome.production_version == jan.outcome.challenger_version
    assert feb.outcome.production_mae is not None and feb.outcome.production_mae > 0
    assert feb.outcome.verdict in ("promoted", "kept")

    assert [r["month"] for r in app.history.runs()] == ["jan", "feb"]
    assert app.done_months() == ["jan", "feb"]
    for month in ("jan", "feb"):
        assert _flow_run(month).state.is_completed()


def test_serve_without_a_prefect_server_says_how_to_start_one(
    prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    engine = _engine(prefect_api)
    with temporary_settings(restore_defaults={PREFECT_API_URL}), pytest.raises(ConfigError) as caught:
        engine.serve("0 3 1 * *", dict)
    message = str(caught.value)
    assert "prefect server start" in message and "PREFECT_API_URL=http://127.0.0.1:4200/api" in message
    assert "\n" not in message
    assert caught.value.exit_code == 3
