"""LocalRunHistory on a real directory: runs.jsonl, the journal, and the lock between two real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taxifare_cli.adapters.history.local import LocalRunHistory
from taxifare_cli.errors import BusyError, DataError

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def history(tmp_path: Path) -> LocalRunHistory:
    return LocalRunHistory(tmp_path / "workflow")


# -- runs and journals ---------------------------------------------------------------------------


def test_runs_come_back_in_the_order_recorded(history: LocalRunHistory) -> None:
    assert history.runs() == []
    first = {"month": "jan", "verdict": "promoted", "production_mae": None, "drift": None}
    second = {"month": "feb", "verdict": "kept", "production_mae": 2.5, "drift": {"summary": "no drift"}}
    history.record(first)
    history.record(second)
    assert history.runs() == [first, second]
    lines = (history.root / "runs.jsonl").read_text().splitlines()
    assert [json.loads(line)["month"] for line in lines] == ["jan", "feb"]  # one run a line
    assert LocalRunHistory(history.root).runs() == [first, second]  # read by another instance too


def test_the_journal_is_written_read_and_cleared_by_record(history: LocalRunHistory) -> None:
    assert history.journal("feb") == {}
    history.write_journal("feb", {"champion": {"version": 1, "mae": 2.5}})
    history.write_journal("feb", {"champion": {"version": 1, "mae": 2.5}, "challenger": {"version": 2}})
    history.write_journal("mar", {"challenger": {"version": 3}})
    assert history.journal("feb") == {"champion": {"version": 1, "mae": 2.5}, "challenger": {"version": 2}}
    assert LocalRunHistory(history.root).journal("feb")["challenger"] == {"version": 2}
    history.record({"month": "feb", "verdict": "kept"})
    assert history.journal("feb") == {}
    assert not (history.root / "journal" / "feb.json").exists()
    assert history.journal("mar") == {"challenger": {"version": 3}}  # another month's is left alone
    assert [p.name for p in (history.root / "journal").iterdir()] == ["mar.json"]  # no temporary files


@pytest.mark.parametrize("content", ["{not json", "", "[1, 2]", '"a string"'])
def test_an_unreadable_journal_reads_as_empty(history: LocalRunHistory, content: str) -> None:
    history.write_journal("feb", {"challenger": {"version": 2}})
    (history.root / "journal" / "feb.json").write_text(content)
    assert history.journal("feb") == {}


def test_a_corrupt_runs_line_is_a_data_error_naming_the_line(history: LocalRunHistory) -> None:
    history.record({"month": "jan", "verdict": "promoted"})
    with (history.root / "runs.jsonl").open("a") as f:
        f.write("\n{half a line\n")
    history.record({"month": "feb", "verdict": "kept"})
    with pytest.raises(DataError) as caught:
        history.runs()
    assert "line 3" in caught.value.message and "runs.jsonl" in caught.value.message
    assert caught.value.exit_code == 4


def test_a_second_lock_in_one_process_is_busy_and_a_released_one_is_free(history: LocalRunHistory) -> None:
    """Held twice in one process (two descriptors) is busy; after release it can be taken again."""
    with history.lock():
        assert (history.root / ".lock").read_text().strip() == str(os.getpid())
        with pytest.raises(BusyError), LocalRunHistory(history.root).lock():
            pass
    with history.lock():
        pass
    assert (history.root / ".lock").read_text() == ""  # no stale pid once released


# -- the lock between two processes ----------------------------------------------------------------

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from taxifare_cli.adapters.history.local import LocalRunHistory

    root, ready = Path(sys.argv[1]), Path(sys.argv[2])
    with LocalRunHistory(root).lock():
        ready.write_text("locked")
        time.sleep(120)
    """
)


@pytest.fixture
def holder(tmp_path: Path, history: LocalRunHistory) -> Iterator[subprocess.Popen[bytes]]:
    """Another process that takes the history's lock, says so in a file, and holds it until killed."""
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(history.root), str(ready)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if proc.poll() is not None:
                raise AssertionError(f"the holder exited {proc.returncode}: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the holder never took the lock"
            time.sleep(0.02)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


def test_a_lock_held_by_another_process_is_busy_until_that_process_dies(
    history: LocalRunHistory, holder: subprocess.Popen[bytes]
) -> None:
    started = time.monotonic()
    with pytest.raises(BusyError) as caught, history.lock():
        pass
    assert time.monotonic() - started < 1.0  # at once, not after a wait
    err = caught.value
    assert f"pid {holder.pid}" in err.message
    assert err.exit_code == 6 and err.hint and "\n" not in err.message

    os.kill(holder.pid, signal.SIGKILL)  # no chance to release anything
    assert holder.wait(10) == -signal.SIGKILL
    with history.lock():  # the lock died with its process
        assert (history.root / ".lock").read_text().strip() == str(os.getpid())
    history.record({"month": "jan", "verdict": "promoted"})
    assert [r["month"] for r in history.runs()] == ["jan"]
