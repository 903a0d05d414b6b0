"""VertexRunner: a training job as a Vertex AI CustomJob on a prebuilt TensorFlow CPU container.

A Python package spec: Vertex installs the wheel from the job folder
(`packageUris`) in `cloud.vertex_image` and runs `python -m
taxifare_cli.jobs.agent gs://<bucket>/jobs/<id>`: the same agent and job folder
as a VM. `scheduling.timeout` is --max-hours; SPOT is Vertex's Spot strategy.
The REST transport is used, the same against Google and a stand-in server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.cloud import aiplatform_v1
from google.protobuf import duration_pb2

from taxifare_cli.adapters.compute._google import client_kwargs, google_errors, require_project
from taxifare_cli.ports import JobLaunch, RunnerState

if TYPE_CHECKING:
    from taxifare_cli.settings import Settings

AGENT_MODULE = "taxifare_cli.jobs.agent"
ACTIVE = {"JOB_STATE_QUEUED", "JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_UPDATING"}


class VertexRunner:
    kind = "vertex"

    def __init__(
        self,
        project: str | None,
        region: str,
        *,
        image: str,
        endpoint: str | None = None,
        key_file: Path | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.project = project
        self.region = region
        self.image = image
        self.endpoint = endpoint
        self.key_file = key_file
        self.timeout_s = timeout_s
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> VertexRunner:
        return cls(
            settings.gcp.project,
            settings.gcp.region,
            image=settings.cloud.vertex_image,
            endpoint=settings.cloud.vertex_endpoint,
            key_file=settings.gcp.credentials,
            timeout_s=settings.storage.timeout_s,
        )

    @property
    def google_endpoint(self) -> str:
        return f"{self.region}-aiplatform.googleapis.com"

    @property
    def client(self) -> Any:
        if self._client is None:
            kwargs = client_kwargs(self.endpoint, self.key_file)
            kwargs.setdefault("client_options", {"api_endpoint": self.google_endpoint})
            self._client = aiplatform_v1.JobServiceClient(transport="rest", **kwargs)
        return self._client

    def _errors(self, doing: str) -> Any:
        endpoint = self.endpoint or self.google_endpoint
        return google_errors(
            "Vertex AI", "aiplatform.googleapis.com", endpoint, self.project or "?", doing=doing
        )

    def parent(self, launch: JobLaunch) -> str:
        return f"projects/{launch.project}/locations/{launch.region}"

    def custom_job(self, launch: JobLaunch) -> aiplatform_v1.CustomJob:
        strategy = aiplatform_v1.Scheduling.Strategy
        return aiplatform_v1.CustomJob(
            display_name=launch.job_id,
            labels=launch.labels,
            job_spec=aiplatform_v1.CustomJobSpec(
                worker_pool_specs=[
                    aiplatform_v1.WorkerPoolSpec(
                        machine_spec=aiplatform_v1.MachineSpec(machine_type=launch.machine_type),
                        replica_count=1,
                        python_package_spec=aiplatform_v1.PythonPackageSpec(
                            executor_image_uri=self.image,
                            package_uris=[launch.wheel_uri],
                            python_module=AGENT_MODULE,
                            args=[launch.job_uri],
                        ),
                    )
                ],
                service_account=launch.service_account or "",
                scheduling=aiplatform_v1.Scheduling(
                    timeout=duration_pb2.Duration(seconds=round(launch.max_hours * 3600)),
                    strategy=strategy.SPOT if launch.spot else strategy.STANDARD,
                    disable_retries=True,
                ),
            ),
        )

    def request(self, launch: JobLaunch) -> dict[str, Any]:
        return {
            "method": "POST",
            "url": f"https://{self.google_endpoint}/v1/{self.parent(launch)}/customJobs",
            "customJob": json.loads(aiplatform_v1.CustomJob.to_json(self.custom_job(launch))),
        }

    def preflight(self, launch: JobLaunch) -> None:
        require_project(self.project, "a Vertex AI job")
        with self._errors(f"listing custom jobs in {launch.region}"):
            self.client.list_custom_jobs(
                request={"parent": self.parent(launch), "page_size": 1}, timeout=self.timeout_s
            )

    def submit(self, launch: JobLaunch) -> str:
        require_project(self.project, "a Vertex AI job")
        with self._errors(f"creating custom job {launch.job_id} in {launch.region}"):
            job = self.client.create_custom_job(
                parent=self.parent(launch), custom_job=self.custom_job(launch), timeout=self.timeout_s
            )
        return str(job.name)

    def state(self, launch: JobLaunch) -> RunnerState:
        with self._errors(f"looking at custom job {launch.resource}"):
            try:
                job = self.client.get_custom_job(name=launch.resource, timeout=self.timeout_s)
            except gexc.NotFound:
                return RunnerState(False, "custom job not found")
        state = aiplatform_v1.JobState(job.state).name
        detail = f"{state}: {job.error.message}" if job.error and job.error.message else state
        return RunnerState(state in ACTIVE, detail)

    def cancel(self, launch: JobLaunch) -> bool:
        if not self.state(launch).running:
            return False
        with self._errors(f"cancelling custom job {launch.resource}"):
            self.client.cancel_custom_job(name=launch.resource, timeout=self.timeout_s)
        return True
