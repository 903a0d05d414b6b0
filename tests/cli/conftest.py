"""Drive `taxifare` in-process with Typer's CliRunner: the commands, as a user types them, fast.

State goes through the click context (no module globals), so each invocation is
independent. What only a real process shows (start-up cost, a cron job's
environment, exit codes seen by a shell) is in tests/e2e.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taxifare_cli.cli.main import app


@dataclass
class Run:
    code: int
    out: str
    err: str
    exception: BaseException | None = None

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}\n--- exception\n{self.exception!r}"


Cli = Callable[..., Run]


@pytest.fixture
def cli(home: Path) -> Cli:
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Run:
        result = runner.invoke(app, list(args), env=env, input=input, prog_name="taxifare")
        # A SystemExit is how click ends; anything else escaping the root group is a bug to show.
        unexpected = None if isinstance(result.exception, SystemExit) else result.exception
        return Run(result.exit_code, result.stdout, result.stderr, unexpected)

    return run
