"""LocalRunHistory: workflow runs in a directory on this machine.

Layout under workflow.state_path (default ~/.taxifare/workflow):
  runs.jsonl          one finished run per line, appended
  journal/<month>.json what an unfinished run already did (atomic rewrites)
  .lock               an flock held for a whole run; holds the holder's pid
A run killed at any point leaves at most a journal, which the next run of
that month picks up; the lock dies with its process.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxifare_cli.errors import BusyError, ConfigError, DataError
from taxifare_cli.files.atomic import write_json_atomic

if TYPE_CHECKING:
    from taxifare_cli.settings import Settings


class LocalRunHistory:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalRunHistory:
        return cls(settings.workflow_dir)

    def _ensure(self) -> None:
        try:
            (self.root / "journal").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(
                f"workflow directory {self.root} is not writable: {e.strerror}",
                hint="set workflow.state_path (TAXIFARE_WORKFLOW__STATE_PATH) to a directory you can write",
            ) from e

    @contextmanager
    def lock(self) -> Iterator[None]:
        self._ensure()
        path = self.root / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                raise BusyError(
                    f"another workflow run (pid {holder}) holds {path}",
                    hint="wait for it to finish; a run that was killed releases the lock by itself",
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _journal_path(self, month: str) -> Path:
        return self.root / "journal" / f"{month}.json"

    def journal(self, month: str) -> dict[str, Any]:
        path = self._journal_path(month)
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # unreadable: start the month again, which is always safe
        return data if isinstance(data, dict) else {}

    def write_journal(self, month: str, journal: dict[str, Any]) -> None:
        self._ensure()
        write_json_atomic(self._journal_path(month), journal)

    def record(self, run: dict[str, Any]) -> None:
        self._ensure()
        line = json.dumps(run, sort_keys=True, default=str) + "\n"
        # One write on an O_APPEND descriptor: concurrent readers see whole lines.
        fd = os.open(self.root / "runs.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._journal_path(str(run.get("month", ""))).unlink(missing_ok=True)

    def runs(self) -> list[dict[str, Any]]:
        path = self.root / "runs.jsonl"
        if not path.is_file():
            return []
        runs = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                runs.append(json.loads(line))
            except ValueError:
                raise DataError(f"{path} line {number} is not JSON", hint="fix or remove that line") from None
        return runs
