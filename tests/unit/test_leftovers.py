"""What a killed process leaves behind is swept by the next one; what a live one writes is not touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from taxifare_cli.files.atomic import scratch_dir, sweep_leftovers, temp_path_beside


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def test_temporary_names_carry_the_process_id(tmp_path: Path) -> None:
    tmp = temp_path_beside(tmp_path / "train_1k.csv")
    assert tmp.name.startswith(f".train_1k.csv.{os.getpid()}.") and tmp.name.endswith(".part")


def test_a_dead_process_leftover_is_swept_and_a_live_one_kept(tmp_path: Path) -> None:
    dead = tmp_path / f".train_1k.csv.{dead_pid()}.a1b2.part"
    mine = tmp_path / f".val_1k.csv.{os.getpid()}.c3d4.part"
    parent = tmp_path / f".val_1k.csv.{os.getppid()}.e5f6.part"  # a live process that is not this one
    dataset = tmp_path / "train_1k.csv"
    for path in (dead, mine, parent, dataset):
        path.write_text("x")
    assert sweep_leftovers(tmp_path) == [dead]
    assert not dead.exists() and mine.exists() and parent.exists() and dataset.exists()


def test_a_scratch_folder_of_a_dead_process_is_swept_when_another_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    orphan = tmp_path / f"taxifare-train-{dead_pid()}-zz9"
    (orphan / "sub").mkdir(parents=True)
    (orphan / "sub" / "train.f32").write_bytes(b"\0" * 64)
    with scratch_dir("eval") as work:
        assert work.parent == tmp_path and work.name.startswith(f"taxifare-eval-{os.getpid()}-")
        assert not orphan.exists()
    assert not work.exists()


def test_only_names_of_ours_are_swept_whatever_digits_others_carry(tmp_path: Path) -> None:
    # A cloud job's work folder lives in the same temporary folder, and its date looks like a pid.
    job = tmp_path / "taxifare-20261201-071847-d8ce-mmokupwx"
    plots = tmp_path / "taxifare-plots-12345678"  # a random suffix made of digits: no pid in it
    other = tmp_path / "taxifare-notes-2026.txt"
    orphan = tmp_path / f"taxifare-train-{dead_pid()}-zz9"
    for path in (job, plots, orphan):
        path.mkdir()
    other.write_text("x")
    assert sweep_leftovers(tmp_path, "taxifare-*") == [orphan]
    assert job.is_dir() and plots.is_dir() and other.exists()
    staging = tmp_path / f".new-{dead_pid()}-ab12"
    staging.mkdir()
    assert sweep_leftovers(tmp_path, ".new-*") == [staging]
