"""Two months of `workflow run` with MLflow as the registry, against the session's real `mlflow server`.

In-process (the CLI's CliRunner fixture), on small simulated months. Each test has its
own registered model name and experiment, so it sees only its own versions and runs.
What is checked in MLflow itself, with its client: Production's evaluation on the new
month is an evaluate run linked to version 1 and val_feb, and the decision is kept with
version 2.
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cli.conftest import Cli, Run, cli  # noqa: F401  (the in-process CLI fixture)
from tests.integration.mlflow_server import MlflowServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True, scope="module")
def _restore_process_state() -> Iterator[None]:
    """The MLflow registry sets MLflow's environment defaults; loading a model may extend sys.path."""
    environ, path = dict(os.environ), list(sys.path)
    yield
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path


@pytest.fixture
def names(home: Path, mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """After `home` cleaned the environment: MLflow as the registry, a model and experiment of this test's own."""
    unique = uuid.uuid4().hex[:10]
    chosen = {"model": f"taxifare-wf-{unique}", "experiment": f"taxifare-wf-{unique}"}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    monkeypatch.setenv("TAXIFARE_REGISTRY__BACKEND", "mlflow")
    monkeypatch.setenv("TAXIFARE_MLFLOW__MODEL_NAME", chosen["model"])
    monkeypatch.setenv("TAXIFARE_MLFLOW__EXPERIMENT", chosen["experiment"])
    monkeypatch.setenv("TAXIFARE_DATA__SYNTHETIC_MONTH_ROWS", "2000")
    monkeypatch.setenv("TAXIFARE_TRAINING__HIDDEN_LAYERS", "[8]")
    return chosen


def ok(r: Run) -> Any:
    assert r.code == 0 and r.exception is None, r
    return r.json()


def cli_json(cli: Cli, *args: str) -> Any:
    """`cli(*args)`'s JSON; a CliRunner whose stdout was closed under it is reported as what it means."""
    try:
        return ok(cli(*args))
    except ValueError as e:
        if "closed file" not in str(e):
            raise
        raise AssertionError(
            f"`taxifare {' '.join(args)}` left sys.stdout swapped for another stream, so the "
            "CliRunner's own stdout was closed under it (see the thread test below)"
        ) from e


def test_two_months_with_mlflow_as_the_registry(
    cli: Cli,
    names: dict[str, str],
    mlflow_server: MlflowServer,
) -> None:
    from mlflow import MlflowClient

    jan = cli_json(cli, "--json", "workflow", "run", "--policy", "auto", "--epochs", "1")
    assert (jan["month"], jan["verdict"], jan["challenger_version"]) == ("jan", "promoted", 1)
    feb = cli_json(cli, "--json", "workflow", "run", "--policy", "auto", "--epochs", "1")
    assert feb["month"] == "feb" and feb["production_version"] == 1 and feb["challenger_version"] == 2
    assert feb["parent_version"] == 1

    # the registry: two versions, the second fine-tuned from the first
    versions = {v["version"]: v for v in cli_json(cli, "--json", "model", "ls")}
    assert sorted(versions) == [1, 2]
    assert versions[2]["parent_version"] == 1 and versions[1]["parent_version"] is None
    production = [n for n, v in versions.items() if v["stage"] == "Production"]
    assert production == ([2] if feb["verdict"] == "promoted" else [1])

    # the decision is kept with version 2
    decisions = [e for e in versions[2]["evaluations"] if "decision" in e]
    assert len(decisions) == 1
    d = decisions[0]
    assert d["decision"] == feb["verdict"] and d["month"] == "feb" and d["dataset"] == "val_feb"
    assert d["production_version"] == 1 and d["production_mae"] == pytest.approx(feb["production_mae"])

    # MLflow itself: Production's evaluation on February is a run of the experiment
    client = MlflowClient(tracking_uri=mlflow_server.uri)
    experiment = client.get_experiment_by_name(names["experiment"])
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.context = 'evaluate'")
    tagged = [(r, r.data.tags) for r in runs]
    champion = [
        r
        for r, t in tagged
        if t.get("taxifare.model_version") == "1"
        and t.get("taxifare.data.dataset") == "val_feb"
        and "taxifare.workflow.decision" not in t
    ]
    assert len(champion) == 1, [t for _, t in tagged]
    run = champion[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags.get("taxifare.model_name") == names["model"]
    assert run.data.metrics["mae"] == pytest.approx(feb["production_mae"])
    decided = [
        r
        for r, t in tagged
        if t.get("taxifare.model_version") == "2" and t.get("taxifare.workflow.decision") == feb["verdict"]
    ]
    assert len(decided) == 1 and decided[0].data.tags.get("taxifare.workflow.month") == "feb"
    # the history agrees
    history = cli_json(cli, "--json", "workflow", "history")
    assert [h["month"] for h in history] == ["feb", "jan"]


def test_registry_calls_from_two_threads_leave_stdout_as_it_was() -> None:
    """LocalEngine evaluates Production and trains the challenger on two threads, and both call
    the registry at once; each MLflow call runs inside `mlflow_errors`, which sends MLflow's prints
    to stderr. When the two calls overlap without nesting (A in, B in, A out, B out), stdout must
    still be stdout afterwards, or the command's result (`--json`) goes to stderr.
    """
    from taxifare_cli.adapters.registry.mlflow.errors import mlflow_errors

    original = sys.stdout
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def a() -> None:
        with mlflow_errors("reading Production", "http://127.0.0.1:1"):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with mlflow_errors("reading Production", "http://127.0.0.1:1"):
            b_in.set()
            a_out.wait(5)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    after = sys.stdout
    sys.stdout = original  # put it back before asserting, for the tests that follow
    assert after is original, f"sys.stdout is now {after!r}, not {original!r}"
