"""7. The monthly workflow: its two middle steps in parallel beside one after the other, and Prefect.

One simulated month (February) goes through `workflow run`'s steps with Production
from January in place. Each timed run starts from the same snapshot of the data,
the registry and the history, so every run does the same work: fetch (already
held), drift, evaluate Production ‖ train a challenger, decide, record.
- parallel: the local engine as `workflow run` uses it (two threads);
- sequential: the same engine with parallel=False (the reference);
- prefect: the Prefect engine on the same month, in the same process; its first
  flow run starts Prefect's temporary server, which is part of what a user waits for.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Comparison, Record, Run, median

MAX_RATIO = 0.8
MAX_PREFECT_OVERHEAD_S = 20.0


def _app(root: Path, run: Run) -> Any:
    from taxifare_cli.app import Taxifare
    from taxifare_cli.settings import load_settings

    s = run.sizes
    flags = {
        "data.local_path": str(root / "data"),
        "registry.local_path": str(root / "registry"),
        "workflow.state_path": str(root / "workflow"),
        "data.synthetic_month_rows": s.workflow_month_rows,
        "training.epochs": s.workflow_epochs,
        "workflow.policy": "auto",
        "workflow.origin": "synthetic",
        "data.origin": "synthetic",
    }
    return Taxifare(load_settings(config=None, flags=flags).settings)


def _restore(snapshot: Path, root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(snapshot, root)


def _timed_month(snapshot: Path, root: Path, run: Run, engine: Any) -> float:
    _restore(snapshot, root)
    app = _app(root, run)
    t = time.perf_counter()
    with app.history.lock():
        engine.run(app.month_run("feb"))
    return time.perf_counter() - t


def measure(run: Run) -> Record:
    from taxifare_cli.adapters.engines.local import LocalEngine

    base = run.work / "workflow"
    snapshot, root = base / "snapshot", base / "run"
    shutil.rmtree(base, ignore_errors=True)
    run.log(f"  January through the workflow ({run.sizes.workflow_month_rows:,} rides a month), then the snapshot")
    app = _app(snapshot, run)
    app.run_workflow("jan")
    app.fetch(month="feb")  # both sides find February on disk: fetching is not what is compared
    repeats = 1 if run.quick else 2
    parallel, sequential = [], []
    for i in range(repeats):
        run.log(f"  round {i + 1}/{repeats}: February in parallel, then one step after the other")
        parallel.append(_timed_month(snapshot, root, run, LocalEngine(backoff_s=0)))
        sequential.append(_timed_month(snapshot, root, run, LocalEngine(parallel=False, backoff_s=0)))
    par, seq = median(parallel), median(sequential)
    comparisons = [
        Comparison(
            target=f"parallel / sequential <= {MAX_RATIO}",
            met=par / seq <= MAX_RATIO,
            reference="the same steps one after the other",
            reference_value=seq,
            ratio=par / seq,
        )
    ]
    details: dict[str, Any] = {"parallel_s": parallel, "sequential_s": sequential}
    if run.sizes.workflow_prefect and importlib.util.find_spec("prefect") is not None:
        from taxifare_cli.adapters.engines.prefect import PrefectEngine

        run.log("  February on the Prefect engine (first flow run of the process, then a second)")
        first = _timed_month(snapshot, root, run, PrefectEngine())
        second = _timed_month(snapshot, root, run, PrefectEngine())
        overhead = first - par
        details.update(prefect_first_s=first, prefect_second_s=second, prefect_overhead_s=overhead)
        comparisons.append(
            Comparison(
                target=f"Prefect overhead <= {MAX_PREFECT_OVERHEAD_S:.0f} s",
                met=overhead <= MAX_PREFECT_OVERHEAD_S,
                reference="the local engine, parallel",
                reference_value=par,
                ratio=first / par,
            )
        )
    shutil.rmtree(root, ignore_errors=True)
    return Record(
        name="workflow",
        title="workflow run: evaluate Production and train the challenger in parallel",
        value=par,
        unit="s",
        comparisons=comparisons,
        command=run.command("workflow"),
        measured="one simulated month through the local engine's steps (taxifare workflow run)",
        details=details,
    )
