"""Progress: where use cases report how far they are; the CLI draws it, cron sees nothing."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """A sink for progress; the CLI draws bars on a terminal, cron sees nothing."""

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None: ...

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None: ...

    def finish(self, task: str) -> None: ...

    def log(self, message: str) -> None: ...


class SilentProgress:
    """Progress that goes nowhere: the default for use cases called from code."""

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None:
        pass

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None:
        pass

    def finish(self, task: str) -> None:
        pass

    def log(self, message: str) -> None:
        pass


SILENT = SilentProgress()
