"""Run the real `taxifare` as a shell would: a subprocess, no terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


Cli = Callable[..., Run]


@pytest.fixture
def cli(home: Path) -> Cli:
    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Run:
        full_env = {**os.environ, **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "taxifare_cli", *args],
            capture_output=True, text=True, env=full_env, cwd=home, timeout=timeout, stdin=subprocess.DEVNULL,
        )
        return Run(proc)

    return run
