"""ConsoleNotifier: workflow verdicts on stderr, for a human at a terminal or a cron mail.

stdout carries the command's result (a table or JSON), so a notification never
goes there. Colour only when the stream is a terminal and NO_COLOR is unset.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from taxifare_cli.errors import ServiceError

if TYPE_CHECKING:
    from taxifare_cli.ports import Notification
    from taxifare_cli.settings import Settings

_INDENT = "  "
_RESET = "\033[0m"
_STYLE = {"info": "\033[1m", "warning": "\033[1;33m", "error": "\033[1;31m"}


class ConsoleNotifier:
    """Writes the subject, then each line indented, to `stream` (sys.stderr at the time of writing)."""

    kind = "console"

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self.stream = stream
        self.color = color  # None: colour when the stream is a terminal and NO_COLOR is unset

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleNotifier:
        return cls()

    def __repr__(self) -> str:
        return f"ConsoleNotifier(stream={'stderr' if self.stream is None else self.stream!r})"

    def _use_color(self, stream: TextIO) -> bool:
        if self.color is not None:
            return self.color
        if os.environ.get("NO_COLOR"):
            return False
        try:
            return stream.isatty()
        except (AttributeError, ValueError, OSError):
            return False

    def render(self, note: Notification, *, color: bool = False) -> str:
        subject = " ".join(note.subject.splitlines()) or "(no subject)"
        if color:
            subject = f"{_STYLE.get(note.level, _STYLE['info'])}{subject}{_RESET}"
        out = [subject]
        for line in note.lines:
            out.extend(f"{_INDENT}{part}".rstrip() for part in (str(line).splitlines() or [""]))
        return "\n".join(out) + "\n"

    def notify(self, note: Notification) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        try:
            stream.write(self.render(note, color=self._use_color(stream)))
            stream.flush()
        except (OSError, ValueError) as e:  # a closed pipe or file
            raise ServiceError(
                f"could not write the notification to the console: {e.__class__.__name__} {e}".strip(),
                hint="run the command with stderr attached, or set notify.backend = 'webhook'",
            ) from e
