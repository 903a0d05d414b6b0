"""1. Start-up: `taxifare --help` against a bare `python -c "import typer"`."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

from benchmarks.harness import Comparison, Record, Run, clean_env, median, shell_line, taxifare_exe

MAX_SECONDS = 0.35
MAX_RATIO = 3.0


def _wall(argv: list[str], env: dict[str, str], cwd: str) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def measure(run: Run) -> Record:
    env = clean_env()
    cwd = str(run.work)
    ours = [taxifare_exe(), "--help"]
    bare = [sys.executable, "-c", "import typer"]
    # One untimed run of each fills the page cache; then alternate, so noise hits both alike.
    _wall(ours, env, cwd)
    _wall(bare, env, cwd)
    ours_s, bare_s = [], []
    for _ in range(run.sizes.startup_runs):
        ours_s.append(_wall(ours, env, cwd))
        bare_s.append(_wall(bare, env, cwd))
    details: dict[str, object] = {"samples_s": ours_s, "reference_samples_s": bare_s}
    if not run.quick:
        # For the record: the same with no bytecode cache at all (every module compiled each time).
        with tempfile.TemporaryDirectory(prefix="bench-nopyc-") as empty:
            cold_env = {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty}
            details["no_bytecode_cache_s"] = median([_wall(ours, cold_env, cwd) for _ in range(3)])
            details["no_bytecode_cache_reference_s"] = median([_wall(bare, cold_env, cwd) for _ in range(3)])
    value, ref = median(ours_s), median(bare_s)
    ratio = value / ref
    return Record(
        name="startup",
        title="Start-up: taxifare --help",
        value=value,
        unit="s",
        comparisons=[
            Comparison(target=f"≤ {MAX_SECONDS} s", met=value <= MAX_SECONDS),
            Comparison(
                reference='python -c "import typer"',
                reference_value=ref,
                ratio=ratio,
                target=f"ratio ≤ {MAX_RATIO:g}",
                met=ratio <= MAX_RATIO,
            ),
        ],
        command=run.command("startup"),
        measured=(
            f"{shell_line(ours)} vs {shell_line(bare)}, median of {run.sizes.startup_runs} alternating runs"
        ),
        details=details,
    )
