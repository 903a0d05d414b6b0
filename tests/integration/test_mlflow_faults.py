"""The MLflow server gone while `model train --target mlflow` runs: exit 5, nothing registered, a rerun completes.

The session's real server (tests/integration/mlflow_server.py) is reached through a
relay on 127.0.0.1 (conftest's CuttingProxy); cutting the relay is what the client
sees of a server stopped or crashed: every connection reset. Healing it is the
server back. (Stopping the shared server itself would cost two boots, ~40 s.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from tests.integration.conftest import CuttingProxy
from tests.integration.mlflow_server import MlflowServer
from typer.testing import CliRunner

from taxifare_cli.cli.main import app

TRAIN = ["model", "train", "--size", "1k", "--target", "mlflow"]
QUICK = {
    "TAXIFARE_TRAINING__EPOCHS": "3",
    "TAXIFARE_TRAINING__HIDDEN_LAYERS": "[8]",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",  # bounded: two retries, then exit 5
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def taxifare(*args: str, uri: str, env: dict[str, str]) -> subprocess.Popen[str]:
    env = {**os.environ, **env, "MLFLOW_TRACKING_URI": uri}
    return subprocess.Popen(
        [sys.executable, "-m", "taxifare_cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.slow
def test_a_server_gone_mid_train_registers_nothing_and_a_rerun_completes(
    home: Path, mlflow_server: MlflowServer
) -> None:
    from mlflow import MlflowClient

    fetched = CliRunner().invoke(app, ["data", "fetch", "--size", "1k", "--source", "synthetic"])
    assert fetched.exit_code == 0, fetched.output
    relay = CuttingProxy(int(mlflow_server.uri.rsplit(":", 1)[1]))
    name = f"faults-{uuid.uuid4().hex[:8]}"
    env = {**QUICK, "TAXIFARE_MLFLOW__MODEL_NAME": name, "TAXIFARE_MLFLOW__EXPERIMENT": name}
    try:
        run = taxifare(*TRAIN, uri=relay.url, env=env)
        assert run.stderr is not None
        said = run.stderr.readline()  # "training on train_1k ...": the model is being fitted now
        assert "training on" in said, said
        relay.cut_after(0)  # the server is gone: every connection from now on is reset
        started = time.monotonic()
        out, err = run.communicate(timeout=180)
        assert run.returncode == 5, (said, out, err)
        assert time.monotonic() - started < 120, "retries must be bounded"
        assert "Traceback" not in err and out == "", err
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("train")]
        assert lines[0].startswith("error: cannot reach the MLflow server"), err
        assert all(line.startswith("  hint:") for line in lines[1:]), err

        client = MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)
        assert client.search_model_versions(f"name = '{name}'") == [], "a half-registered version"
        relay.heal()  # the server is back
        # The rerun in-process: this worker has imported TensorFlow and MLflow already.
        env |= {"MLFLOW_TRACKING_URI": relay.url}
        rerun = CliRunner().invoke(app, TRAIN, env=env)
        assert rerun.exit_code == 0, rerun.output
        [version] = client.search_model_versions(f"name = '{name}'")
        assert version.version == "1"
        priced = CliRunner().invoke(app, ["model", "predict", "--target", "mlflow", "--version", "1",
                                          "--input", str(home / "data" / "val_1k.csv")], env=env)  # fmt: skip
        assert priced.exit_code == 0, priced.output
    finally:
        relay.close()
