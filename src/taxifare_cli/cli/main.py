"""`taxifare`: the root command and its groups."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from taxifare_cli import __version__
from taxifare_cli.cli import config, data, model, workflow
from taxifare_cli.cli._console import Output
from taxifare_cli.cli._context import state
from taxifare_cli.cli._errors import report
from taxifare_cli.errors import EXIT_CODES

EPILOG = "Exit codes: " + "; ".join(f"{code} {what}" for code, what in EXIT_CODES.items())

app = typer.Typer(
    name="taxifare",
    help="The whole life of the WagonCab taxi-fare model: data, training, registry, promotion.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for group in (config.app, data.app, model.app, workflow.app):
    app.add_typer(group)


# The output of the running command, so errors raised out of it are printed its way.
_OUTPUT: list[Output] = []


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
    _OUTPUT[:] = [st.output]
    st.config = config_file
    st.output.json_mode = json_mode
    st.output.quiet = quiet
    st.output.verbose = verbose


def run(argv: list[str] | None = None) -> None:
    """Entry point: usage errors are click's (exit 2); every other failure is one line and a code."""
    try:
        app(args=argv, prog_name="taxifare")
    except SystemExit:
        raise
    except BaseException as e:
        sys.exit(report(e, _OUTPUT[0] if _OUTPUT else Output()))
