"""Cloud training end to end on this machine: the job folder in a real fake-gcs-server bucket, the
startup script run by the `local` runner in a subprocess, the job agent training a tiny model, and
the CLI following it. No Google account, nothing in the cloud.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.integration.emulators import Emulator
from typer.testing import CliRunner

from taxifare_cli.cli.main import app

pytestmark = pytest.mark.slow


@pytest.fixture
def cloud_env(home: Path, gcs_emulator: Emulator, bucket: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "TAXIFARE_STORAGE__BUCKET": bucket,
        "TAXIFARE_STORAGE__GCS_ENDPOINT": gcs_emulator.url,
        "TAXIFARE_TRAINING__HIDDEN_LAYERS": "[8]",
        "TAXIFARE_TRAINING__EPOCHS": "2",
        "TAXIFARE_CLOUD__POLL_S": "0.2",
        "TAXIFARE_MLFLOW__TRACKING_TOKEN": "s3cret-token",  # a secret: must never reach the bucket
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args), prog_name="taxifare")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def blobs(gcs_client: Any, bucket: str, job_id: str) -> dict[str, bytes]:
    return {
        b.name.rsplit("/", 1)[-1]: b.download_as_bytes()
        for b in gcs_client.list_blobs(bucket, prefix=f"jobs/{job_id}/")
    }


def test_a_job_runs_through_the_job_folder_and_the_cli_exits_0(cloud_env: dict[str, str], gcs_client: Any, bucket: str) -> None:
    assert invoke("data", "fetch", "--size", "1k", "--source", "synthetic").exit_code == 0
    r = invoke("--json", "cloud", "local-train", "--size", "1k", "--epochs", "1")
    assert r.exit_code == 0, r.stdout + r.stderr
    outcome = json.loads(r.stdout)
    assert outcome["status"] == "succeeded"
    assert outcome["result"]["version"] == 1 and outcome["result"]["metrics"]["val_mae"] > 0
    assert "training: started" in r.stderr  # progress lines followed without a terminal
    files = blobs(gcs_client, bucket, outcome["job_id"])
    assert {"job.json", "launch.json", "startup.sh", "progress.jsonl", "log.txt", "result.json", "done.json"} <= set(files)
    assert any(name.endswith(".whl") for name in files)
    spec = json.loads(files["job.json"])
    assert spec["train"]["size"] == "1k" and spec["settings"]["training.epochs"] == 1
    assert b"s3cret-token" not in files["job.json"] and "mlflow.tracking_token" not in spec["settings"]
    assert json.loads(files["done.json"])["status"] == "succeeded"
    # The model is in the registry the job was told to use.
    models = json.loads(invoke("--json", "model", "ls").stdout)
    assert [m["version"] for m in models] == [1]
    # And the job is listed.
    jobs = json.loads(invoke("--json", "cloud", "jobs").stdout)
    assert [(j["job_id"], j["state"], j["runner"]) for j in jobs] == [(outcome["job_id"], "succeeded", "local")]
    # One writer at a time: the script's setup lines, then the agent's, whole and final at the marker.
    log = invoke("cloud", "logs", outcome["job_id"]).stdout
    assert "setting up" in log and "running the job agent" in log and "version 1: val MAE" in log, log


def test_a_failing_job_exits_with_its_code_and_shows_the_log(cloud_env: dict[str, str]) -> None:
    # No train_1k on disk: the agent fails with a data error (exit 4), written in the done-marker.
    r = invoke("cloud", "local-train", "--size", "1k", "--epochs", "1")
    assert r.exit_code == 4, r.stdout + r.stderr
    assert "failed during training" in r.stderr and "train_1k" in r.stderr
    assert "  | " in r.stderr  # the job's last log lines


def test_dry_run_prints_the_script_and_creates_nothing(cloud_env: dict[str, str], gcs_client: Any, bucket: str) -> None:
    r = invoke("cloud", "local-train", "--size", "1k", "--dry-run")
    assert r.exit_code == 0, r.stderr
    assert "#!/bin/bash" in r.stdout and "taxifare_cli.jobs.agent" in r.stdout
    assert list(gcs_client.list_blobs(bucket)) == []
