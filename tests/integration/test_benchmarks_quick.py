"""The benchmark harness runs end to end at tiny sizes, so it never rots (`python -m benchmarks --quick`)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SIX = ("startup", "preprocessing", "memory", "pipeline", "prediction", "quality")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_benchmarks_write_six_numeric_records(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    checked_in = REPO / "benchmarks" / "results.json"
    before = checked_in.stat().st_mtime_ns if checked_in.is_file() else None
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAXIFARE_")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    results = json.loads((out / "results.json").read_text())
    records = {r["name"]: r for r in results["records"]}
    assert set(SIX) <= set(records), f"missing: {set(SIX) - set(records)}"
    for name in SIX:
        r = records[name]
        for key in ("value", "reference_value", "ratio"):
            assert isinstance(r[key], int | float) and math.isfinite(r[key]) and r[key] > 0, (
                name,
                key,
                r[key],
            )
        assert isinstance(r["met"], bool)
        assert r["command"].startswith("python -m benchmarks")
        assert r["cpu_count"] and r["python"] and r["tensorflow"] and r["date"]
        assert r["quick"] is True
    assert results["runs"][-1]["mode"] == "quick"

    report = (out / "BENCHMARKS.md").read_text()
    assert "| # | measurement |" in report
    assert (out / "growth.png").stat().st_size > 0
    # The checked-in figures are never touched by a quick run.
    assert (checked_in.stat().st_mtime_ns if checked_in.is_file() else None) == before
