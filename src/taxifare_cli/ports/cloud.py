"""Cloud training's seams: a job folder of objects, and the runners that start jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class ObjectStore(Protocol):
    """Small named objects under one folder (a cloud job's folder in a bucket)."""

    def uri(self, key: str = "") -> str:
        """Where `key` is, e.g. gs://bucket/jobs/<id>/result.json ("" : the folder)."""
        ...

    def read(self, key: str) -> bytes | None:
        """The bytes of `key`, or None when there is no such object."""
        ...

    def write(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None: ...

    def upload(self, key: str, path: Path) -> None: ...

    def children(self) -> list[str]:
        """The names of the sub-folders (one per job, in the jobs folder)."""
        ...

    def child(self, name: str) -> ObjectStore:
        """The sub-folder `name`."""
        ...

    def check(self) -> None:
        """Raise ConfigError/ServiceError naming what is missing (the bucket, a permission)."""
        ...


@dataclass
class JobLaunch:
    """What a TrainingRunner needs to start one job, and (after `submit`) what it started."""

    job_id: str
    job_uri: str  # gs://bucket/jobs/<id>: the job folder
    wheel_uri: str  # gs://bucket/jobs/<id>/<wheel file>
    startup_script: str
    machine_type: str
    zone: str
    region: str
    project: str | None
    spot: bool = False
    max_hours: float = 4.0
    keep_vm: bool = False
    service_account: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    resource: str | None = None  # the VM name or CustomJob resource name, once started

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "startup_script"}


@dataclass
class RunnerState:
    """Where a started job stands on the machine side: running, or ended (gone) and why."""

    running: bool
    detail: str = ""  # "RUNNING", "TERMINATED", "not found", "JOB_STATE_FAILED: ..."


class TrainingRunner(Protocol):
    """Runs a training job somewhere (this machine, a VM, Vertex AI); the job folder says how it went."""

    kind: str

    def request(self, launch: JobLaunch) -> dict[str, Any]:
        """The exact API request `submit` would send (shown by --dry-run)."""
        ...

    def preflight(self, launch: JobLaunch) -> None:
        """Raise ConfigError (exit 3) or ServiceError (exit 5) naming what is missing; create nothing."""
        ...

    def submit(self, launch: JobLaunch) -> str:
        """Start the job; return the resource started (kept in launch.resource)."""
        ...

    def state(self, launch: JobLaunch) -> RunnerState: ...

    def cancel(self, launch: JobLaunch) -> bool:
        """Stop the job and delete its machine; True if there was something to stop."""
        ...
