"""`taxifare`: the root command and its groups."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from taxifare_cli import __version__
from taxifare_cli.cli import cloud, config, data, model, workflow
from taxifare_cli.cli._console import Output
from taxifare_cli.cli._context import state
from taxifare_cli.cli._errors import report
from taxifare_cli.errors import EXIT_CODES, STOP, Terminated

EPILOG = (
    "Exit codes: "
    + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items())
    + ". Global options may also follow the command: taxifare model ls --json."
)

GLOBAL_FLAGS = frozenset({"--json", "--quiet", "-q", "--verbose"})
GLOBAL_WITH_VALUE = frozenset({"--config"})


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """Move global options typed after the command to the front, as gh and kubectl allow.

    Everything after `--` is left alone, and so is the value of `--config`.
    """
    front: list[str] = []
    rest: list[str] = []
    it = iter(args)
    for arg in it:
        if arg == "--":
            rest.append(arg)
            rest.extend(it)
            break
        if arg in GLOBAL_FLAGS or arg.startswith("--config="):
            front.append(arg)
        elif arg in GLOBAL_WITH_VALUE:
            front.append(arg)
            value = next(it, None)
            if value is not None:
                front.append(value)
        else:
            rest.append(arg)
    return front + rest


class RootGroup(TyperGroup):
    """The root command: global options anywhere, and every failure as one line and an exit code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's click Context
        return super().parse_args(ctx, hoist_global_options(args))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # exits and usage errors: click's own
            raise
        except Exception as e:  # KeyboardInterrupt too, below: click would say only "Aborted!"
            raise typer.Exit(report(e, state(ctx).output)) from None
        except (KeyboardInterrupt, Terminated) as e:
            raise typer.Exit(report(e, state(ctx).output)) from None


app = typer.Typer(
    name="taxifare",
    cls=RootGroup,
    help="The whole life of the WagonCab taxi-fare model: data, training, registry, promotion.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for group in (config.app, data.app, model.app, workflow.app, cloud.app):
    app.add_typer(group)


def _version(value: bool) -> None:
    if value:
        print(f"taxifare {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="TOML settings file (else TAXIFARE_CONFIG, else ./taxifare.toml)."),
    ] = None,
    json_mode: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="More detail; tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    st = state(ctx)
    st.config = config_file
    st.output.json_mode = json_mode
    st.output.quiet = quiet
    st.output.verbose = verbose


def _terminate(signum: int, _frame: object) -> None:
    STOP.set(signum)  # for the steps running on other threads
    raise Terminated(signum)


def run(argv: list[str] | None = None) -> None:
    """Entry point: usage errors are click's (exit 2); every other failure is one line and a code.

    SIGTERM and SIGHUP (a cron job stopped, a terminal closed) unwind like Ctrl-C does,
    so that temporary files are removed on the way out.
    """
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    STOP.watch()  # other threads see a stop before this thread's handler has run
    try:
        app(args=argv, prog_name="taxifare")
    except SystemExit:
        raise
    except BaseException as e:  # raised outside a command (while parsing): no output settings yet
        sys.exit(report(e, Output()))
