"""The Compute Engine and Vertex AI runners, through the REAL google clients, against a stand-in.

No local Compute Engine or Vertex AI exists: `fake_google_api` stands in for Google's REST
APIs (it records each request and answers as the API does), and the job folder lives in a real
fake-gcs-server bucket. What the VM or the Vertex job would do (write progress, a result, the
done-marker) is scripted by each test on the job folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.emulators import Emulator
from tests.integration.fake_google_api import FakeGoogle, start_fake_google
from typer.testing import CliRunner

from taxifare_cli.cli.main import app

PROJECT = "wagoncab-test"


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    fake, server = start_fake_google()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(home: Path, gcs_emulator: Emulator, bucket: str, google: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "TAXIFARE_STORAGE__BUCKET": bucket,
        "TAXIFARE_STORAGE__GCS_ENDPOINT": gcs_emulator.url,
        "TAXIFARE_GCP__PROJECT": PROJECT,
        "TAXIFARE_CLOUD__COMPUTE_ENDPOINT": google.url,
        "TAXIFARE_CLOUD__VERTEX_ENDPOINT": google.url,
        "TAXIFARE_CLOUD__POLL_S": "0.05",
        "TAXIFARE_STORAGE__TIMEOUT_S": "10",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args), prog_name="taxifare")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def job_writer(gcs_client: Any, bucket: str) -> Callable[[str, str, Any], None]:
    def write(job_uri: str, key: str, value: Any) -> None:
        folder = job_uri.split("/", 3)[3]
        data = value if isinstance(value, str) else json.dumps(value)
        gcs_client.bucket(bucket).blob(f"{folder}/{key}").upload_from_string(data)

    return write


def metadata(instance: dict[str, Any]) -> dict[str, str]:
    return {item["key"]: item["value"] for item in instance["metadata"]["items"]}


def finish_job(write: Callable[[str, str, Any], None], job_uri: str, *, ok: bool = True) -> None:
    """What the job agent on the machine would write."""
    write(job_uri, "progress.jsonl", '{"kind": "start", "task": "training", "total": 2, "unit": "epochs"}\n'
          '{"kind": "advance", "task": "training", "amount": 1, "info": "mae 3.10 val_mae 3.20"}\n')
    if ok:
        write(job_uri, "result.json", {"version": 7, "metrics": {"val_mae": 2.5}})
        write(job_uri, "done.json", {"status": "succeeded", "exit_code": 0})
    else:
        write(job_uri, "log.txt", "setting up\npip install failed: no space left on device\n")
        write(job_uri, "done.json", {"status": "failed", "exit_code": 1, "stage": "setup", "error": "cannot install the wheel"})


def test_vm_train_sends_the_request_an_engineer_expects_and_exits_0_on_success(
    env: dict[str, str], google: FakeGoogle, gcs_client: Any, bucket: str
) -> None:
    write = job_writer(gcs_client, bucket)
    google.on_insert = lambda vm: finish_job(write, metadata(vm)["taxifare-job"])
    r = invoke("--json", "cloud", "vm-train", "--size", "1m", "--source", "bigquery", "--epochs", "30",
               "--machine-type", "e2-standard-8", "--zone", "europe-west1-c", "--spot", "--max-hours", "2")
    assert r.exit_code == 0, r.stdout + r.stderr
    outcome = json.loads(r.stdout)
    assert outcome["status"] == "succeeded" and outcome["result"]["version"] == 7
    assert "training: mae 3.10 val_mae 3.20" in r.stderr

    # Pre-flight: the machine type and the region's CPU quota were looked at first.
    assert google.calls("GET", r"/zones/europe-west1-c/machineTypes/e2-standard-8$")
    assert google.calls("GET", r"/regions/europe-west1$")
    [insert] = google.calls("POST", rf"/projects/{PROJECT}/zones/europe-west1-c/instances$")
    vm = insert.body
    job_id = outcome["job_id"]
    assert vm["name"] == job_id
    assert vm["machineType"] == "zones/europe-west1-c/machineTypes/e2-standard-8"
    [disk] = vm["disks"]
    assert disk["boot"] and disk["autoDelete"] is True
    assert disk["initializeParams"]["sourceImage"] == "projects/debian-cloud/global/images/family/debian-12"
    assert disk["initializeParams"]["diskSizeGb"] == "50"
    assert vm["scheduling"]["provisioningModel"] == "SPOT"
    assert vm["scheduling"]["instanceTerminationAction"] == "DELETE"
    assert vm["scheduling"]["maxRunDuration"] == {"seconds": "7200"}
    assert vm["labels"] == {"taxifare-job": job_id, "app": "taxifare", "runner": "compute-engine"}
    [account] = vm["serviceAccounts"]
    assert account == {"email": f"taxifare-trainer@{PROJECT}.iam.gserviceaccount.com",
                       "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
    script = metadata(vm)["startup-script"]
    assert script.startswith("#!/bin/bash") and "python3 -m venv" in script
    assert "-m taxifare_cli.jobs.agent \"gs://$BUCKET/$FOLDER\"" in script
    # The wheel, the spec and the launch record are in the job folder.
    names = {b.name.rsplit("/", 1)[-1] for b in gcs_client.list_blobs(bucket, prefix=f"jobs/{job_id}/")}
    assert {"job.json", "launch.json", "startup.sh", "taxifare-0.1.0-py3-none-any.whl"} <= names
    spec = json.loads(gcs_client.bucket(bucket).blob(f"jobs/{job_id}/job.json").download_as_bytes())
    assert spec["command"] == ["taxifare", "model", "train", "--size", "1m"]
    assert spec["settings"]["storage.backend"] == "bigquery" and spec["settings"]["training.epochs"] == 30
    jobs = json.loads(invoke("--json", "cloud", "jobs").stdout)
    assert jobs[0]["job_id"] == job_id and jobs[0]["state"] == "succeeded" and jobs[0]["machine"] == "e2-standard-8 spot"


def test_a_vm_that_vanishes_without_a_done_marker_is_preempted_exit_5(env: dict[str, str], google: FakeGoogle) -> None:
    google.vm_status = lambda name, n: "RUNNING" if n < 3 else None  # then 404: gone
    r = invoke("cloud", "vm-train", "--size", "1k")
    assert r.exit_code == 5, r.stdout + r.stderr
    assert "preempted or failed" in r.stderr and r.stdout == ""


def test_a_failed_job_exits_non_zero_with_its_last_log_lines(
    env: dict[str, str], google: FakeGoogle, gcs_client: Any, bucket: str
) -> None:
    write = job_writer(gcs_client, bucket)
    google.on_insert = lambda vm: finish_job(write, metadata(vm)["taxifare-job"], ok=False)
    r = invoke("cloud", "vm-train", "--size", "1k")
    assert r.exit_code == 1, r.stdout + r.stderr
    assert "failed during setup: cannot install the wheel" in r.stderr
    assert "| pip install failed: no space left on device" in r.stderr


def test_dry_run_prints_the_request_and_creates_nothing(env: dict[str, str], google: FakeGoogle, gcs_client: Any, bucket: str) -> None:
    r = invoke("--json", "cloud", "vm-train", "--size", "1k", "--keep-vm", "--dry-run")
    assert r.exit_code == 0, r.stderr
    planned = json.loads(r.stdout)
    assert planned["started"] is False
    vm = planned["request"]["instanceResource"]
    assert vm["scheduling"]["provisioningModel"] == "STANDARD" and vm["scheduling"]["maxRunDuration"] == {"seconds": "14400"}
    assert "KEEP_VM=1" in planned["startup_script"]
    assert google.requests == [] and list(gcs_client.list_blobs(bucket)) == []
    r = invoke("cloud", "vm-train", "--size", "1k", "--dry-run")
    assert '"instanceResource"' in r.stdout and "#!/bin/bash" in r.stdout and google.requests == []


@pytest.mark.parametrize(
    ("setup", "code", "message"),
    [
        (lambda g: setattr(g, "forbid", "Compute Engine API has not been used in project wagoncab-test before or it is disabled."),
         5, "the Compute Engine API is not enabled in project wagoncab-test"),
        (lambda g: setattr(g, "cpu_quota", (8.0, 6.0)), 5, "not enough CPUS quota in europe-west1: 4 needed, 2 of 8 free"),
    ],
)
def test_pre_flight_names_what_is_missing_and_creates_nothing(
    env: dict[str, str], google: FakeGoogle, setup: Any, code: int, message: str
) -> None:
    setup(google)
    r = invoke("cloud", "vm-train", "--size", "1k")
    assert r.exit_code == code, r.stdout + r.stderr
    assert message in r.stderr
    assert not google.calls("POST", r"/instances$")


def test_pre_flight_without_a_project_or_a_bucket_is_a_configuration_error(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, google: FakeGoogle) -> None:
    monkeypatch.delenv("TAXIFARE_GCP__PROJECT")
    r = invoke("cloud", "vm-train", "--size", "1k")
    assert r.exit_code == 3 and "needs a Google Cloud project" in r.stderr
    monkeypatch.delenv("TAXIFARE_STORAGE__BUCKET")
    r = invoke("cloud", "vm-train", "--size", "1k")
    assert r.exit_code == 3 and "needs a Cloud Storage bucket" in r.stderr
    assert google.requests == []


def test_vertex_train_creates_a_custom_job_with_a_python_package_spec(
    env: dict[str, str], google: FakeGoogle, gcs_client: Any, bucket: str
) -> None:
    write = job_writer(gcs_client, bucket)
    google.on_insert = lambda job: finish_job(write, job["jobSpec"]["workerPoolSpecs"][0]["pythonPackageSpec"]["args"][0])
    r = invoke("--json", "cloud", "vertex-train", "--size", "1k", "--spot", "--machine-type", "n1-standard-4")
    assert r.exit_code == 0, r.stdout + r.stderr
    job_id = json.loads(r.stdout)["job_id"]
    [create] = google.calls("POST", rf"/v1/projects/{PROJECT}/locations/europe-west1/customJobs$")
    job = create.body
    assert job["displayName"] == job_id and job["labels"]["taxifare-job"] == job_id
    [pool] = job["jobSpec"]["workerPoolSpecs"]
    assert pool["machineSpec"]["machineType"] == "n1-standard-4"
    spec = pool["pythonPackageSpec"]
    assert spec["executorImageUri"] == "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest"
    assert spec["packageUris"] == [f"gs://{bucket}/jobs/{job_id}/taxifare-0.1.0-py3-none-any.whl"]
    assert spec["pythonModule"] == "taxifare_cli.jobs.agent" and spec["args"] == [f"gs://{bucket}/jobs/{job_id}"]
    # The REST transport sends enums as numbers (Scheduling.Strategy.SPOT == 4); --dry-run shows the name.
    assert job["jobSpec"]["scheduling"]["strategy"] in ("SPOT", 4) and job["jobSpec"]["scheduling"]["timeout"] == "14400s"
    assert job["jobSpec"]["serviceAccount"] == f"taxifare-trainer@{PROJECT}.iam.gserviceaccount.com"


def test_ctrl_c_without_a_terminal_deletes_the_vm(env: dict[str, str], google: FakeGoogle, home: Path) -> None:
    """A real process, interrupted as a shell's Ctrl-C does (SIGINT), with stdin closed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "taxifare_cli", "cloud", "vm-train", "--size", "1k"],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, cwd=home,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not google.calls("GET", r"/instances/taxifare-") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert google.calls("GET", r"/instances/taxifare-"), "the VM was never followed"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert len(google.calls("DELETE", rf"/projects/{PROJECT}/zones/europe-west1-b/instances/taxifare-")) == 1
    assert google.instances == {}
    assert "deleted" in err
