"""All output goes through here: results to stdout, everything else to stderr.

With --json, stdout gets exactly one JSON document per command. Progress bars
are drawn on stderr only when it is a terminal, so cron logs stay clean.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress as RichProgressBar
    from rich.progress import TaskID


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "as_dict"):
        return o.as_dict()
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    raise TypeError(f"cannot serialise {type(o).__name__}")


@dataclass
class Output:
    json_mode: bool = False
    quiet: bool = False
    verbose: bool = False

    # rich is imported on first output, not at start-up.
    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console(soft_wrap=True)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, soft_wrap=True)

    # -- results (stdout) --------------------------------------------------
    def result(self, payload: Any, human: Any = None) -> None:
        """The command's result: JSON in --json mode, else `human` (a renderable or str)."""
        if self.json_mode:
            sys.stdout.write(json.dumps(payload, default=_default, indent=2) + "\n")
            sys.stdout.flush()
        elif isinstance(human, str) and _plain(human, sys.stdout):
            sys.stdout.write(human + "\n")
        elif human is not None:
            self.out.print(human)

    def table(self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
        from rich.table import Table

        t = Table(title=title, title_justify="left", header_style="bold")
        for c in columns:
            t.add_column(c, overflow="fold")
        for r in rows:
            t.add_row(*("" if v is None else str(v) for v in r))
        return t

    # -- messages (stderr) -------------------------------------------------
    def info(self, message: str) -> None:
        if self.quiet:
            return
        if _plain(message, sys.stderr):
            sys.stderr.write(message + "\n")
        else:
            self.err.print(message, highlight=False)

    def success(self, message: str) -> None:
        if not self.quiet:
            self.err.print(f"[green]✓[/] {message}", highlight=False)

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {message}", highlight=False)

    def error(self, message: str) -> None:
        self.err.print(f"[red]error:[/] {message}", highlight=False, markup=True)

    def debug(self, message: str) -> None:
        if self.verbose:
            self.err.print(f"[dim]{message}[/]", highlight=False)

    def progress(self) -> Any:
        """A Progress sink (ports.Progress): bars on a terminal, else nothing."""
        from taxifare_cli.ports import SILENT

        if self.quiet or (not _isatty(sys.stderr) and "FORCE_TERMINAL" not in os.environ):
            return SILENT  # decided without importing rich: a script's quick command stays quick
        if not self.err.is_terminal:
            return SILENT
        return RichProgress(self.err)


class RichProgress:
    """Progress drawn with rich on stderr; one bar per task."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._console = console
        self._units: dict[str, str] = {}
        self._ids: dict[str, TaskID] = {}
        self._bar: RichProgressBar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._bytes_bar = DownloadColumn()
        self._running = False

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None:
        if not self._running:
            self._bar.start()
            self._running = True
        self._units[task] = unit
        self._ids[task] = self._bar.add_task(f"{task} ({unit})", total=total, info="")

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None:
        if task in self._ids:
            self._bar.update(self._ids[task], advance=amount, info=info)

    def finish(self, task: str) -> None:
        task_id = self._ids.pop(task, None)
        if task_id is not None:
            self._bar.remove_task(task_id)
        if not self._ids and self._running:
            self._bar.stop()
            self._running = False

    def log(self, message: str) -> None:
        self._console.print(message, highlight=False)


def _plain(text: str, stream: Any) -> bool:
    """Text rich would print unchanged: no terminal to style, no markup or emoji code to read.
    Writing it directly spares a script pricing one ride the import of rich (~0.1 s)."""
    return not _isatty(stream) and "[" not in text and ":" not in text


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed
        return False


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def human_time(t: datetime | None) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M") if t else ""
