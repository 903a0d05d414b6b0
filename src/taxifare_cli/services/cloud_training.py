"""Training on Google's machines: plan a job, start it, follow it through its job folder, list, cancel.

The runner (ports.TrainingRunner: a local subprocess, a Compute Engine VM, a
Vertex AI CustomJob) only starts and stops machines; everything about the job
itself goes through the job folder (services/job_folder.py).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taxifare_cli.errors import NotFoundError
from taxifare_cli.ports import JobLaunch, ObjectStore, Progress, TrainingRunner
from taxifare_cli.services.job_folder import (
    STARTUP,
    DoneMarker,
    JobFolder,
    ProgressLine,
    TrainRequest,
    new_job_id,
    now_iso,
)
from taxifare_cli.services.job_package import extras_for, startup_script

# Rough on-demand prices, US$ per hour, europe-west1 (2025): an estimate for `cloud jobs`, not a bill.
HOURLY_USD: dict[str, float] = {
    "e2-standard-2": 0.073,
    "e2-standard-4": 0.147,
    "e2-standard-8": 0.294,
    "e2-standard-16": 0.588,
    "e2-highmem-4": 0.198,
    "n2-standard-4": 0.213,
    "n2-standard-8": 0.426,
    "n1-standard-4": 0.209,
    "n1-standard-8": 0.418,
    "c2-standard-8": 0.459,
}
SPOT_FACTOR = 0.3  # Spot VMs cost very roughly 60-91 % less
VERTEX_FACTOR = 1.15  # Vertex AI training charges a premium over the bare VM


# -- a job: planned, started, followed ----------------------------------------------------------


@dataclass
class CloudJob:
    """A job as planned: its folder, its spec, what the runner gets, and the exact request."""

    launch: JobLaunch
    spec: dict[str, Any]
    request: dict[str, Any]
    wheel: Path | None = None
    started: bool = False

    @property
    def job_id(self) -> str:
        return self.launch.job_id

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "job_uri": self.launch.job_uri,
            "runner": self.spec.get("runner"),
            "started": self.started,
            "resource": self.launch.resource,
            "request": self.request,
            "startup_script": self.launch.startup_script,
        }


@dataclass
class MachineOptions:
    machine_type: str
    zone: str
    region: str
    project: str | None
    spot: bool
    max_hours: float
    keep_vm: bool
    service_account: str | None


def plan_job(
    runner: TrainingRunner,
    jobs: ObjectStore,
    *,
    train: TrainRequest,
    settings_flat: dict[str, Any],
    machine: MachineOptions,
    command: list[str],
    wheel_name: str,
    job_id: str | None = None,
) -> CloudJob:
    """Everything about a job, before anything is created."""
    job_id = job_id or new_job_id()
    folder_store = jobs.child(job_id)
    job_uri = folder_store.uri()
    bucket, _, folder = job_uri[len("gs://") :].partition("/")
    launch = JobLaunch(
        job_id=job_id,
        job_uri=job_uri,
        wheel_uri=folder_store.uri(wheel_name),
        startup_script=startup_script(
            job_id=job_id,
            bucket=bucket,
            folder=folder,
            wheel=wheel_name,
            extras=extras_for(settings_flat),
            keep_vm=machine.keep_vm,
        ),
        machine_type=machine.machine_type,
        zone=machine.zone,
        region=machine.region,
        project=machine.project,
        spot=machine.spot,
        max_hours=machine.max_hours,
        keep_vm=machine.keep_vm,
        service_account=machine.service_account,
        labels={"taxifare-job": job_id, "app": "taxifare", "runner": runner.kind.replace("_", "-")},
    )
    spec = {
        "job_id": job_id,
        "runner": runner.kind,
        "created_at": now_iso(),
        "command": command,
        "train": train.as_dict(),
        "machine": {k: v for k, v in launch.as_dict().items() if k not in {"resource"}},
        "settings": settings_flat,
        "wheel": wheel_name,
    }
    return CloudJob(launch, spec, runner.request(launch))


def start_job(
    runner: TrainingRunner, jobs: ObjectStore, job: CloudJob, wheel: Path, *, progress: Progress
) -> CloudJob:
    """Pre-flight, upload wheel + spec + script, start the machine, record what was started."""
    jobs.check()
    runner.preflight(job.launch)
    folder = JobFolder(jobs.child(job.job_id))
    progress.log(f"uploading {wheel.name} and the job spec to {folder.uri}")
    folder.store.upload(wheel.name, wheel)
    folder.store.write(STARTUP, job.launch.startup_script.encode(), content_type="text/x-shellscript")
    folder.write_spec(job.spec)
    job.launch.resource = runner.submit(job.launch)
    job.started = True
    folder.write_launch(job.launch)
    return job


@dataclass
class JobOutcome:
    job_id: str
    status: str  # succeeded, failed, preempted
    exit_code: int
    error: str | None = None
    result: dict[str, Any] | None = None
    log_tail: list[str] = field(default_factory=list)
    machine: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status,
            "exit_code": self.exit_code,
            "error": self.error,
            "result": self.result,
            "log_tail": self.log_tail,
        }


def follow_job(
    runner: TrainingRunner,
    folder: JobFolder,
    launch: JobLaunch,
    *,
    on_line: Callable[[ProgressLine], None],
    poll_s: float = 10.0,
    gone_checks: int = 2,
    sleep: Callable[[float], None] | None = None,
) -> JobOutcome:
    """Replay the job's progress lines until its done-marker; a machine gone without one is a failure.

    The done-marker decides: succeeded only when it says so. A machine seen gone
    `gone_checks` times in a row with no marker was preempted or failed (exit 5).
    """
    seen = 0
    gone = 0
    while True:
        lines = folder.progress()
        for line in lines[seen:]:
            on_line(line)
        seen = max(seen, len(lines))
        done = folder.done()
        if done is not None:
            for line in folder.progress()[seen:]:
                on_line(line)
            return _outcome(folder, done)
        state = runner.state(launch)
        gone = 0 if state.running else gone + 1
        if gone >= gone_checks:
            done = folder.done()  # it may have finished just before it went
            if done is not None:
                return _outcome(folder, done)
            return JobOutcome(
                launch.job_id,
                "preempted",
                5,
                error=f"the job's machine is gone ({state.detail or 'no longer running'}) with no "
                "done-marker: it was preempted or failed",
                log_tail=folder.log_tail(),
            )
        (sleep or time.sleep)(poll_s)


def _outcome(folder: JobFolder, done: DoneMarker) -> JobOutcome:
    if done.succeeded:
        return JobOutcome(folder.job_id, "succeeded", 0, result=folder.result())
    return JobOutcome(
        folder.job_id,
        "failed",
        done.exit_code or 1,
        error=f"the job failed during {done.stage}: {done.error or 'no reason given'}",
        log_tail=folder.log_tail(),
    )


# -- jobs already started -----------------------------------------------------------------------


@dataclass
class JobSummary:
    job_id: str
    runner: str
    state: str  # succeeded, failed, running, gone (no marker), unknown
    machine: str
    created_at: datetime | None
    hours: float | None
    cost_usd: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "runner": self.runner,
            "state": self.state,
            "machine": self.machine,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "hours": None if self.hours is None else round(self.hours, 3),
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 3),
        }


def cost_estimate(runner: str, machine_type: str, spot: bool, hours: float) -> float | None:
    price = HOURLY_USD.get(machine_type)
    if price is None:
        return None
    if spot:
        price *= SPOT_FACTOR
    if runner == "vertex":
        price *= VERTEX_FACTOR
    return price * hours if runner != "local" else 0.0


def _when(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def summarize(folder: JobFolder, runners: Callable[[str], TrainingRunner] | None = None) -> JobSummary:
    spec = folder.spec() or {}
    machine = spec.get("machine", {})
    runner_name = str(spec.get("runner", "?"))
    created = _when(spec.get("created_at"))
    done = folder.done()
    end = _when(done.finished_at) if done else None
    if done is not None:
        state = done.status
    elif runners is not None and (launch := folder.launch()) is not None:
        try:
            state = "running" if runners(runner_name).state(launch).running else "gone"
        except Exception:  # a job of a runner whose extra is missing, a refused call: still listed
            state = "unknown"
    else:
        state = "unknown"
    now = datetime.now(timezone.utc)
    hours = None if created is None else ((end or now) - created).total_seconds() / 3600
    cost = (
        cost_estimate(runner_name, str(machine.get("machine_type", "")), bool(machine.get("spot")), hours)
        if hours is not None
        else None
    )
    return JobSummary(
        folder.job_id,
        runner_name,
        state,
        f"{machine.get('machine_type', '?')}{' spot' if machine.get('spot') else ''}",
        created,
        hours,
        cost,
    )


def list_jobs(jobs: ObjectStore, runners: Callable[[str], TrainingRunner] | None = None) -> list[JobSummary]:
    """Every job in the jobs folder, newest first."""
    summaries = [summarize(JobFolder(jobs.child(name)), runners) for name in jobs.children()]
    return sorted(summaries, key=lambda s: s.job_id, reverse=True)


def open_job(jobs: ObjectStore, job_id: str) -> tuple[JobFolder, dict[str, Any]]:
    folder = JobFolder(jobs.child(job_id))
    spec = folder.spec()
    if spec is None:
        raise NotFoundError(
            f"no job {job_id} in {jobs.uri()}", hint="taxifare cloud jobs lists the jobs there"
        )
    return folder, spec


def cancel_job(runner: TrainingRunner, folder: JobFolder) -> bool:
    """Stop the job's machine; True if there was one to stop."""
    launch = folder.launch()
    if launch is None or launch.resource is None:
        return False
    return runner.cancel(launch)


def temporary_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
