"""How services report progress without knowing who is watching."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """A sink for progress; the CLI draws bars on a terminal, cron sees nothing."""

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None: ...

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None: ...

    def finish(self, task: str) -> None: ...

    def log(self, message: str) -> None: ...


class SilentProgress:
    """Progress that goes nowhere: the default for services called from code."""

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None:
        pass

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None:
        pass

    def finish(self, task: str) -> None:
        pass

    def log(self, message: str) -> None:
        pass


SILENT = SilentProgress()
