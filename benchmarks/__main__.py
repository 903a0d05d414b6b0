"""`python -m benchmarks [--quick] [--only NAME ...] [--output DIR]`: run, record, report.

The full run writes benchmarks/results.json, benchmarks/growth.png and BENCHMARKS.md
at the repository root. `--quick` runs tiny sizes in well under a minute, for the test
suite; it writes under benchmarks/.work/quick unless --output says where, so it never
overwrites the checked-in figures. `--only` runs some measurements and merges them into
the results already there.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import memory, report
from benchmarks.harness import BENCH_DIR, FULL, QUICK, QUIET_ENV, REPO, Record, Run, environment

# name -> "module:function"; imported when run, after the bytecode cache is set up.
MEASUREMENTS: dict[str, str] = {
    "startup": "benchmarks.startup:measure",
    "preprocessing": "benchmarks.preprocessing:measure",
    "memory": "benchmarks.memory:measure",
    "pipeline": "benchmarks.pipeline:measure",
    "prediction": "benchmarks.prediction:measure",
    "quality": "benchmarks.quality:measure",
    "workflow": "benchmarks.workflow:measure",
    "quality_1m": "benchmarks.quality:measure_1m",  # only on request: a million rows, to convergence
    "serving": "benchmarks.serving:measure",  # only on request: taxifare model serve vs mlflow models serve
    "one_ride": "benchmarks.one_ride:measure",
}
DEFAULT = ("startup", "preprocessing", "memory", "pipeline", "prediction", "one_ride", "quality", "workflow")
EXTRA = ("cloud",)  # benchmarks/cloud_io.py, GCS/BigQuery throughput against emulators


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes, well under a minute (for the test suite)"
    )
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these (repeat or comma-separate): {', '.join([*MEASUREMENTS, *EXTRA])}",
    )
    p.add_argument("--output", type=Path, help="directory for results.json, BENCHMARKS.md and the plot")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: rewrite BENCHMARKS.md (and the notes in results.json) from results.json",
    )
    p.add_argument("--work", type=Path, help="directory for data and models (kept between runs)")
    p.add_argument(
        "--pycache",
        type=Path,
        default=BENCH_DIR / ".work" / "pycache",
        help="bytecode cache for every Python process measured (see use_bytecode_cache)",
    )
    args = p.parse_args(argv)
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in MEASUREMENTS and n not in EXTRA]
    if unknown:
        p.error(
            f"unknown measurement(s) {', '.join(unknown)}: choose from {', '.join([*MEASUREMENTS, *EXTRA])}"
        )
    args.names = names or list(DEFAULT)
    return args


def use_bytecode_cache(directory: Path) -> None:
    """Let this process and its children cache compiled bytecode in `directory`.

    pip compiles bytecode when it installs, so a user's `import tensorflow` reads .pyc
    files. This machine sets PYTHONDONTWRITEBYTECODE=1 and its venvs are made by uv, which
    does not compile: every process would compile TensorFlow from source (16-22 s instead
    of 5-8 s here). A cache outside the venv measures what a user sees without touching it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    sys.pycache_prefix = str(directory.resolve())
    sys.dont_write_bytecode = False
    os.environ["PYTHONPYCACHEPREFIX"] = sys.pycache_prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def measurement(name: str) -> Callable[[Run], Record]:
    module, _, func = MEASUREMENTS[name].partition(":")
    fn: Callable[[Run], Record] = getattr(importlib.import_module(module), func)
    return fn


def run_cloud(run: Run) -> None:
    """Hand over to benchmarks/cloud_io.py (written separately) when it is there.

    Its main() parses its own arguments, so it is given none of ours; whatever it
    returns is kept beside results.json as cloud_io.json.
    """
    if importlib.util.find_spec("benchmarks.cloud_io") is None:
        run.log("cloud: benchmarks/cloud_io.py is not there yet; nothing to run")
        return
    module = importlib.import_module("benchmarks.cloud_io")
    cloud_main = getattr(module, "main", None)
    if cloud_main is None:
        run.log("cloud: benchmarks/cloud_io.py has no main(); nothing to run")
        return
    takes_argv = bool(inspect.signature(cloud_main).parameters)
    result = cloud_main([]) if takes_argv else cloud_main()
    if isinstance(result, dict):
        (run.output / "cloud_io.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        run.log(f"cloud: wrote {run.output / 'cloud_io.json'}")


def write_report(data: dict[str, Any], output: Path, md_path: Path) -> None:
    plot_path = output / report.PLOT
    memory_record = next((r for r in data["records"] if r["name"] == "memory"), None)
    has_plot = report.plot_growth(memory_record, plot_path, memory.MAX_RATIO)
    report.render(data, md_path, plot_path if has_plot else None)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    use_bytecode_cache(args.pycache)
    sizes = QUICK if args.quick else FULL
    if args.output is not None:
        output = args.output
        md_path = output / "BENCHMARKS.md"
    elif args.quick:
        output = BENCH_DIR / ".work" / "quick"
        md_path = output / "BENCHMARKS.md"
    else:
        output = BENCH_DIR
        md_path = REPO / "BENCHMARKS.md"
    work = args.work or (output / ".work" if output != BENCH_DIR else BENCH_DIR / ".work")
    output.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    run = Run(sizes=sizes, quick=args.quick, work=work.resolve(), output=output.resolve())
    if args.report_only:
        results_path = output / report.RESULTS
        data = report.load(results_path)
        data["records"] = [report.annotate(r) for r in data["records"]]
        report.write_json(results_path, data)
        write_report(data, output, md_path)
        return 0

    started = time.perf_counter()
    env = environment()
    records = []
    failed = []
    for name in args.names:
        if name == "cloud":
            run_cloud(run)
            continue
        run.log(f"[{time.perf_counter() - started:6.1f} s] {name}")
        t = time.perf_counter()
        try:
            record = measurement(name)(run)
        except Exception:
            failed.append(name)
            run.log(f"{name} failed:\n{traceback.format_exc()}")
            continue
        seconds = time.perf_counter() - t
        record.details["measurement_wall_s"] = seconds
        records.append(record.as_dict({**environment(), "quick": args.quick}))
        verdict = "met" if record.met else "MISSED"
        elapsed = time.perf_counter() - started
        run.log(f"[{elapsed:6.1f} s] {name}: {record.value:.4g} {record.unit} ({verdict}; {seconds:.0f} s)")

    results_path = output / report.RESULTS
    run_meta = {
        **env,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "measured": [r["name"] for r in records],
        "failed": failed,
        "wall_s": time.perf_counter() - started,
        "results": str(results_path),
    }
    data = report.merge(report.load(results_path), records, run_meta)
    report.write_json(results_path, data)
    write_report(data, output, md_path)
    run.log(f"wrote {results_path} and {md_path} in {run_meta['wall_s']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
