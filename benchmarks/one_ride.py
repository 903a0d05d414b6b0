"""9. One ride: `taxifare model predict --ride ...` (the whole process) against `python -c "import pandas"`.

A cron job that prices a ride, or a script calling the CLI in a loop, waits for the
whole process: start-up, settings, the registry, loading the weights, the price. The
targets are an absolute second and at most 3x a bare pandas import measured in the
same run (alternating runs, so that noise hits both alike).
"""

from __future__ import annotations

import sys

from benchmarks.harness import Comparison, Record, Run, clean_env, median, run_process, taxifare_exe
from benchmarks.prediction import latest_version

MAX_SECONDS = 1.0
MAX_RATIO = 3.0
RIDE = (
    "pickup_datetime=2015-01-15 08:30:00 UTC",
    "pickup_longitude=-73.985",
    "pickup_latitude=40.758",
    "dropoff_longitude=-73.78",
    "dropoff_latitude=40.644",
    "passenger_count=1",
)


def ride_argv(version: int) -> list[str]:
    argv = [taxifare_exe(), "--json", "model", "predict", "--version", str(version)]
    for field in RIDE:
        argv += ["--ride", field]
    return argv


def measure(run: Run) -> Record:
    version = latest_version(run)
    env = clean_env(TAXIFARE_REGISTRY__LOCAL_PATH=str(run.work / "registry"))
    ours = ride_argv(version)
    bare = [sys.executable, "-c", "import pandas"]
    fare = run_process(ours, env=env, cwd=run.work).check().json()["fares"][0]  # also fills the page cache
    run_process(bare, env=env, cwd=run.work).check()
    ours_s, bare_s = [], []
    for _ in range(run.sizes.startup_runs):
        ours_s.append(run_process(ours, env=env, cwd=run.work).check().wall_s)
        bare_s.append(run_process(bare, env=env, cwd=run.work).check().wall_s)
    value, ref = median(ours_s), median(bare_s)
    ratio = value / ref
    return Record(
        name="one_ride",
        title="One ride: taxifare model predict --ride ...",
        value=value,
        unit="s",
        comparisons=[
            Comparison(target=f"≤ {MAX_SECONDS:g} s", met=value <= MAX_SECONDS),
            Comparison(
                reference='python -c "import pandas"',
                reference_value=ref,
                ratio=ratio,
                target=f"ratio ≤ {MAX_RATIO:g}",
                met=ratio <= MAX_RATIO,
            ),
        ],
        command=run.command("one_ride"),
        measured=(
            "taxifare --json model predict --version N --ride pickup_datetime=... (six fields), whole "
            f'process wall time vs python -c "import pandas", median of {run.sizes.startup_runs} '
            "alternating runs"
        ),
        details={"samples_s": ours_s, "reference_samples_s": bare_s, "fare": fare, "model_version": version},
    )
