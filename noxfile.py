"""Sessions: tests (the whole suite), lint (ruff + mypy), bench (benchmarks)."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint"]

PYTHON = "3.11"
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite: unit, integration (real servers on 127.0.0.1), e2e."""
    session.install("-e", ".[gcp,cloud,mlflow,prefect,serve,test,bench]")
    session.run("lint-imports")  # the layer contracts (docs/architecture.md)
    # One file per worker (--dist loadfile): a file's session servers start once in its worker.
    args = session.posargs or ["-q", "--durations=15", "-n", "2", "--dist", "loadfile"]
    prefect = {  # Prefect's state in the session's tmp dir, nothing sent anywhere, time for a cold server
        "PREFECT_HOME": f"{session.create_tmp()}/prefect",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    }
    session.run("pytest", *args, env={**QUIET_TF, **prefect})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (style, imports, bugs), mypy (types) and import-linter (the layer contracts)."""
    session.install("-e", ".[lint,serve]")  # mypy reads the web face's FastAPI types
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("mypy")
    session.run("lint-imports")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks beside their references; writes benchmarks/results.json and BENCHMARKS.md.

    `nox -s bench -- --quick` runs a small version in seconds.
    """
    session.install("-e", ".[gcp,mlflow,prefect,serve,test,bench]")
    session.run("python", "-m", "benchmarks", *session.posargs, env=QUIET_TF)
