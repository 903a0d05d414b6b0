"""What every measurement shares: its record, the run's sizes, timing and subprocess helpers.

A measurement is a function `measure(run: Run) -> Record`. A record holds the product's
figure and one or more comparisons, each with its reference figure, the ratio
(always figure / reference figure) and the target on that ratio. The machines are
shared and noisy, so figures are medians over repeats and judged as ratios to a
reference taken in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent

# Quiet TensorFlow (both are needed) and keep the developer's own settings out of the runs.
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}
_LEAKY = (
    "TAXIFARE_CONFIG", "DATA_SIZE", "DATASET_SIZE", "VALIDATION_DATASET_SIZE", "CHUNK_SIZE", "DATA_SOURCE",
    "MODEL_TARGET", "LOCAL_DATA_PATH", "LOCAL_REGISTRY_PATH", "GCP_PROJECT", "GCP_REGION", "BUCKET_NAME",
    "BQ_DATASET", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT", "MLFLOW_MODEL_NAME",
)  # fmt: skip


@dataclass(frozen=True)
class Sizes:
    """How big and how often: the full run and the quick one differ only here."""

    startup_runs: int
    preprocess_rows: int
    preprocess_repeats: int
    reference_repeats: int
    reference_parallel: bool  # the original ColumnTransformer's n_jobs=-1 (process pool start-up)
    memory_rows: tuple[int, ...]
    memory_val_rows: int
    chunk_size: int
    pipeline_rows: int
    pipeline_epochs: int  # rounds of one epoch each way; the first is warm-up (tracing)
    predict_rows: int
    predict_repeats: int
    quality_part: str  # a dataset size: train_<part> -> val_<part>
    quality_epochs: int | None  # None: the product's default (early stopping decides)
    workflow_month_rows: int  # rides of a simulated month (train + val) in the workflow benchmark
    workflow_epochs: int
    workflow_prefect: bool  # also time the Prefect engine (its temporary server takes 8-15 s to start)
    serving_train_rows: int  # rows of the one epoch the served model is trained on
    serving_requests: int  # one-ride requests per round and server
    serving_concurrency: int  # keep-alive connections sending them
    serving_batch_requests: int  # requests of 1,000 rides per round and server
    serving_batch_concurrency: int
    serving_rounds: int  # alternating rounds (medians are taken over them)
    serving_cap_s: float  # a load run stops after this long, whatever is left to send
    seed: int = 42


FULL = Sizes(
    startup_runs=15,
    preprocess_rows=1_000_000,
    preprocess_repeats=5,
    reference_repeats=3,
    reference_parallel=True,
    memory_rows=(100_000, 1_000_000, 5_000_000),
    memory_val_rows=100_000,
    chunk_size=100_000,
    pipeline_rows=1_000_000,
    pipeline_epochs=4,
    predict_rows=1_000_000,
    predict_repeats=3,
    quality_part="100k",
    quality_epochs=None,
    workflow_month_rows=100_000,
    workflow_epochs=5,
    workflow_prefect=True,
    serving_train_rows=100_000,
    serving_requests=2_000,
    serving_concurrency=8,
    serving_batch_requests=40,
    serving_batch_concurrency=2,
    serving_rounds=3,
    serving_cap_s=30.0,
)
QUICK = Sizes(
    startup_runs=3,
    preprocess_rows=5_000,
    preprocess_repeats=3,
    reference_repeats=1,
    reference_parallel=False,
    memory_rows=(2_000, 10_000),
    memory_val_rows=1_000,
    chunk_size=1_000,
    pipeline_rows=5_000,
    pipeline_epochs=2,
    predict_rows=10_000,
    predict_repeats=1,
    quality_part="10k",
    quality_epochs=2,
    workflow_month_rows=3_000,
    workflow_epochs=1,
    workflow_prefect=False,
    serving_train_rows=2_000,
    serving_requests=200,
    serving_concurrency=4,
    serving_batch_requests=6,
    serving_batch_concurrency=2,
    serving_rounds=1,
    serving_cap_s=20.0,
)


@dataclass
class Comparison:
    """The figure against one reference (or against an absolute bound when reference is None)."""

    target: str
    met: bool
    reference: str | None = None
    reference_value: float | None = None
    ratio: float | None = None


@dataclass
class Record:
    name: str
    title: str
    value: float
    unit: str
    comparisons: list[Comparison]
    command: str  # how to reproduce it: the benchmark invocation
    measured: str  # what exactly was measured (the product command or call)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return all(c.met for c in self.comparisons)

    def as_dict(self, env: dict[str, Any]) -> dict[str, Any]:
        first = next((c for c in self.comparisons if c.reference is not None), None)
        return {
            "name": self.name,
            "title": self.title,
            "value": self.value,
            "unit": self.unit,
            "reference": first.reference if first else None,
            "reference_value": first.reference_value if first else None,
            "ratio": first.ratio if first else None,
            "target": "; ".join(c.target for c in self.comparisons),
            "met": self.met,
            "comparisons": [asdict(c) for c in self.comparisons],
            "command": self.command,
            "measured": self.measured,
            "details": self.details,
            "note": None,  # filled from benchmarks/notes.py by report.annotate
            "remark": None,
            **env,
        }


@dataclass
class Run:
    """One invocation of the benchmarks: sizes, where to work, where to write."""

    sizes: Sizes
    quick: bool
    work: Path
    output: Path
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))
    state: dict[str, Any] = field(default_factory=dict)  # shared between measurements of one run

    def command(self, name: str) -> str:
        return f"python -m benchmarks{' --quick' if self.quick else ''} --only {name}"


def environment() -> dict[str, Any]:
    """Date, machine and versions, stamped on every record (TensorFlow is not imported for this)."""

    def version(*names: str) -> str | None:
        for n in names:
            try:
                return metadata.version(n)
            except metadata.PackageNotFoundError:
                continue
        return None

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "tensorflow": version("tensorflow-cpu", "tensorflow"),
        "keras": version("keras"),
        "numpy": version("numpy"),
        "pandas": version("pandas"),
        "pyarrow": version("pyarrow"),
        "taxifare": version("taxifare"),
    }


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples))


def timed(fn: Callable[[], Any], repeats: int, *, warmup: int = 0) -> tuple[list[float], Any]:
    """Wall times of `repeats` calls after `warmup` untimed ones, and the last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t)
    return samples, result


def clean_env(**extra: str) -> dict[str, str]:
    """The parent's environment without taxifare settings, quiet TensorFlow, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("TAXIFARE_") or k in _LEAKY)}
    env.update(QUIET_ENV)
    env.update(extra)
    return env


def taxifare_exe() -> str:
    """The `taxifare` console script of the interpreter running the benchmarks."""
    beside = Path(sys.executable).with_name("taxifare")
    if beside.is_file():
        return str(beside)
    found = shutil.which("taxifare")
    if found is None:
        raise RuntimeError("the taxifare console script is not installed: pip install -e .")
    return found


@dataclass
class ProcessRun:
    argv: list[str]
    returncode: int
    wall_s: float
    peak_rss_bytes: int  # the kernel's high-water mark of the process (ru_maxrss)
    polled_peak_bytes: int  # psutil: largest RSS sum of the process and its children seen
    stdout: str
    stderr: str

    def check(self) -> ProcessRun:
        if self.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv)} exited {self.returncode}:\n{self.stderr[-3000:]}")
        return self

    def json(self) -> Any:
        return json.loads(self.stdout)


def run_process(
    argv: list[str], *, env: dict[str, str], cwd: Path, poll_s: float = 0.02, timeout_s: float = 1800
) -> ProcessRun:
    """Run `argv` to the end, measuring wall time and peak resident memory.

    The peak is the kernel's own (`wait4`'s ru_maxrss, exact); a psutil thread also
    samples the RSS of the process tree every `poll_s` as a cross-check.
    """
    import psutil

    out_path = cwd / f".stdout-{os.getpid()}-{time.monotonic_ns()}"
    err_path = out_path.with_name(out_path.name.replace("stdout", "stderr"))
    polled = 0
    done = threading.Event()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)

        def sample() -> None:
            nonlocal polled
            try:
                root = psutil.Process(proc.pid)
            except psutil.NoSuchProcess:
                return
            while not done.is_set():
                try:
                    procs = [root, *root.children(recursive=True)]
                    total = 0
                    for p in procs:
                        with contextlib.suppress(psutil.NoSuchProcess):
                            total += p.memory_info().rss
                    polled = max(polled, total)
                except psutil.NoSuchProcess:
                    return
                done.wait(poll_s)

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        deadline = start + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)
    return ProcessRun(
        argv=argv,
        returncode=proc.returncode,
        wall_s=wall,
        peak_rss_bytes=usage.ru_maxrss * 1024,  # kilobytes on Linux
        polled_peak_bytes=polled,
        stdout=stdout,
        stderr=stderr,
    )


def shell_line(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    """`argv` as one line a person can paste (taxifare by its name; settings given shown)."""
    shown = [("taxifare" if a == taxifare_exe() else "python" if a == sys.executable else a) for a in argv]
    settings = [f"{k}={v}" for k, v in (env or {}).items() if k.startswith("TAXIFARE_")]
    return " ".join([*settings, *(a if " " not in a else repr(a) for a in shown)])


def mib(n: float) -> float:
    return n / (1024 * 1024)
