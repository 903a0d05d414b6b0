"""Known exceptions -> one line on stderr and an exit code, in one place."""

from __future__ import annotations

import os
import traceback

from taxifare_cli.cli._console import Output
from taxifare_cli.errors import TaxifareError


def report(exc: BaseException, out: Output) -> int:
    """Print `exc` as the user should see it; return the exit code."""
    show_trace = out.verbose or os.environ.get("TAXIFARE_DEBUG") == "1"
    if isinstance(exc, TaxifareError):
        out.error(_escape(exc.message))
        if exc.hint:
            out.err.print(f"  hint: {_escape(exc.hint)}", highlight=False)
        if show_trace:
            out.err.print(traceback.format_exc(), markup=False, highlight=False)
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        out.error("interrupted")
        return 130
    if isinstance(exc, MemoryError):
        out.error("out of memory: lower data.chunk_size (env CHUNK_SIZE) or train on a larger machine")
        return 1
    out.error(f"unexpected {type(exc).__name__}: {_escape(str(exc))}")
    if show_trace:
        out.err.print(traceback.format_exc(), markup=False, highlight=False)
    else:
        out.err.print("  hint: run again with --verbose for the traceback, and report it", highlight=False)
    return 1


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
