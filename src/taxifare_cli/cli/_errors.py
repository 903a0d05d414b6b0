"""Known exceptions -> one line on stderr and an exit code, in one place."""

from __future__ import annotations

import os
import signal
import traceback

from taxifare_cli.cli._console import Output
from taxifare_cli.errors import DiskFullError, TaxifareError, Terminated, no_space, redact


def report(exc: BaseException, out: Output) -> int:
    """Print `exc` as the user should see it; return the exit code.

    With --json, stdout still gets its one document: {"error", "hint", "exit_code"}.
    """
    show_trace = out.verbose or os.environ.get("TAXIFARE_DEBUG") == "1"
    hint: str | None
    full = None if isinstance(exc, TaxifareError) else no_space(exc)
    if full is not None:  # a write no atomic helper wrapped (a library's own): still the disk-full code
        where = f" writing {full.filename}" if full.filename else ""
        disk_full = DiskFullError(
            f"no space left on the disk{where}", hint="free some space, or point the path at another disk"
        )
        disk_full.__cause__ = exc  # --verbose still shows where it happened
        exc = disk_full
    if isinstance(exc, TaxifareError):
        code, message, hint = exc.exit_code, exc.message, exc.hint
    elif isinstance(exc, KeyboardInterrupt):
        code, message, hint = (
            130,
            "interrupted: temporary files removed, nothing left half-written",
            None,
        )
        show_trace = False
    elif isinstance(exc, Terminated):
        name = signal.Signals(exc.signum).name
        code, message = (
            128 + exc.signum,
            f"stopped by {name}: temporary files removed, nothing left half-written",
        )
        hint, show_trace = "run the command again to finish", False
    elif isinstance(exc, MemoryError):
        code, message = 1, "out of memory"
        hint = "lower data.chunk_size (env CHUNK_SIZE) or train on a larger machine"
    else:
        code, message = 1, f"unexpected {type(exc).__name__}: {exc}"
        hint = None if show_trace else "run again with --verbose for the traceback, and report it"
    # A URL's password (a tracking URI with credentials) is masked in everything said here.
    message, hint = redact(message), redact(hint) if hint else None
    out.error(_escape(message))
    if hint:
        out.err.print(f"  hint: {_escape(hint)}", highlight=False)
    if show_trace:
        out.err.print(redact("".join(traceback.format_exception(exc))), markup=False, highlight=False)
    if out.json_mode:
        out.result({"error": message, "hint": hint, "exit_code": code})
    return code


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
