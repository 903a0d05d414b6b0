"""ComputeEngineRunner: a training job on a Compute Engine VM that deletes itself.

The VM boots debian-12 with the job's startup script in its metadata; the
script installs the wheel in a venv and runs the job agent (services/cloud_training.py).
Cost guards, all on the request: the boot disk is deleted with the VM,
`scheduling.maxRunDuration` with `instanceTerminationAction: DELETE` (Google
deletes the VM after --max-hours whatever happens), Spot when asked, labels
with the job id (`gcloud compute instances list --filter labels.app=taxifare`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc
from google.cloud import compute_v1

from taxifare_cli.adapters.compute._google import client_kwargs, google_errors, require_project
from taxifare_cli.errors import ConfigError, ServiceError
from taxifare_cli.ports import JobLaunch, RunnerState

if TYPE_CHECKING:
    from taxifare_cli.settings import Settings

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]  # access is narrowed by the account's roles
GOOGLE = "https://compute.googleapis.com"
RUNNING = {"PROVISIONING", "STAGING", "RUNNING", "REPAIRING"}


class ComputeEngineRunner:
    kind = "compute_engine"

    def __init__(
        self,
        project: str | None,
        *,
        image: str = "projects/debian-cloud/global/images/family/debian-12",
        disk_gb: int = 50,
        endpoint: str | None = None,
        key_file: Path | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.project = project
        self.image = image
        self.disk_gb = disk_gb
        self.endpoint = endpoint
        self.key_file = key_file
        self.timeout_s = timeout_s
        self._clients: dict[str, Any] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ComputeEngineRunner:
        c = settings.cloud
        return cls(
            settings.gcp.project,
            image=c.image,
            disk_gb=c.disk_gb,
            endpoint=c.compute_endpoint,
            key_file=settings.gcp.credentials,
            timeout_s=settings.storage.timeout_s,
        )

    def _client(self, cls: Any) -> Any:
        name = cls.__name__
        if name not in self._clients:
            self._clients[name] = cls(**client_kwargs(self.endpoint, self.key_file))
        return self._clients[name]

    def _errors(self, doing: str) -> Any:
        project = self.project or "?"
        return google_errors(
            "Compute Engine", "compute.googleapis.com", self.endpoint or GOOGLE, project, doing=doing
        )

    # --- the request ---------------------------------------------------------------------
    def instance(self, launch: JobLaunch) -> compute_v1.Instance:
        zone = launch.zone
        scheduling = compute_v1.Scheduling(
            provisioning_model="SPOT" if launch.spot else "STANDARD",
            instance_termination_action="DELETE",
            max_run_duration=compute_v1.Duration(seconds=round(launch.max_hours * 3600)),
            automatic_restart=False,
            on_host_maintenance="TERMINATE" if launch.spot else "MIGRATE",
        )
        accounts = []
        if launch.service_account:
            accounts = [compute_v1.ServiceAccount(email=launch.service_account, scopes=SCOPES)]
        return compute_v1.Instance(
            name=launch.job_id,
            machine_type=f"zones/{zone}/machineTypes/{launch.machine_type}",
            labels=launch.labels,
            description=f"taxifare training job {launch.job_id} ({launch.job_uri})",
            disks=[
                compute_v1.AttachedDisk(
                    boot=True,
                    auto_delete=True,
                    type_="PERSISTENT",
                    initialize_params=compute_v1.AttachedDiskInitializeParams(
                        source_image=self.image,
                        disk_size_gb=self.disk_gb,
                        disk_type=f"zones/{zone}/diskTypes/pd-balanced",
                        labels=launch.labels,
                    ),
                )
            ],
            network_interfaces=[
                compute_v1.NetworkInterface(
                    network="global/networks/default",
                    # An external address to reach PyPI and Debian's mirrors (or use Cloud NAT).
                    access_configs=[compute_v1.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")],
                )
            ],
            service_accounts=accounts,
            scheduling=scheduling,
            metadata=compute_v1.Metadata(
                items=[
                    compute_v1.Items(key="startup-script", value=launch.startup_script),
                    compute_v1.Items(key="taxifare-job", value=launch.job_uri),
                ]
            ),
        )

    def request(self, launch: JobLaunch) -> dict[str, Any]:
        instance = json.loads(compute_v1.Instance.to_json(self.instance(launch)))
        return {
            "method": "POST",
            "url": f"{GOOGLE}/compute/v1/projects/{launch.project}/zones/{launch.zone}/instances",
            "instanceResource": instance,
        }

    # --- the port ------------------------------------------------------------------------
    def preflight(self, launch: JobLaunch) -> None:
        project = require_project(self.project, "a Compute Engine job")
        if not launch.service_account:
            raise ConfigError("a training VM needs a service account", hint="set cloud.service_account")
        with self._errors(f"looking up machine type {launch.machine_type} in {launch.zone}"):
            try:
                mt = self._client(compute_v1.MachineTypesClient).get(
                    project=project,
                    zone=launch.zone,
                    machine_type=launch.machine_type,
                    timeout=self.timeout_s,
                )
            except gexc.NotFound:
                raise ConfigError(
                    f"no machine type {launch.machine_type} in zone {launch.zone}",
                    hint=f"gcloud compute machine-types list --zones {launch.zone}",
                ) from None
        with self._errors(f"reading the CPU quota of {launch.region}"):
            region = self._client(compute_v1.RegionsClient).get(
                project=project, region=launch.region, timeout=self.timeout_s
            )
        metric = "PREEMPTIBLE_CPUS" if launch.spot else "CPUS"
        quotas = {q.metric: q for q in region.quotas}
        quota = quotas.get(metric) or quotas.get("CPUS")
        if quota is not None and quota.limit - quota.usage < mt.guest_cpus:
            raise ServiceError(
                f"not enough {quota.metric} quota in {launch.region}: {mt.guest_cpus} needed, "
                f"{quota.limit - quota.usage:g} of {quota.limit:g} free",
                hint="ask for more (IAM & Admin > Quotas) or use a smaller --machine-type",
            )

    def submit(self, launch: JobLaunch) -> str:
        project = require_project(self.project, "a Compute Engine job")
        with self._errors(f"creating VM {launch.job_id} in {launch.zone}"):
            op = self._client(compute_v1.InstancesClient).insert(
                project=project,
                zone=launch.zone,
                instance_resource=self.instance(launch),
                timeout=self.timeout_s,
            )
            self._wait(project, launch.zone, op.name)
        return launch.job_id

    def _wait(self, project: str, zone: str, operation: str) -> None:
        """Poll the zone operation until DONE (the client's own poller ignores a custom endpoint)."""
        ops = self._client(compute_v1.ZoneOperationsClient)
        for _ in range(30):
            done = ops.wait(project=project, zone=zone, operation=operation, timeout=self.timeout_s)
            if done.status == compute_v1.Operation.Status.DONE:
                if done.error and done.error.errors:
                    first = done.error.errors[0]
                    raise ServiceError(f"Compute Engine refused: {first.code}: {first.message}")
                return
        raise ServiceError(f"Compute Engine operation {operation} did not finish")

    def state(self, launch: JobLaunch) -> RunnerState:
        project = require_project(self.project, "a Compute Engine job")
        with self._errors(f"looking at VM {launch.resource}"):
            try:
                vm = self._client(compute_v1.InstancesClient).get(
                    project=project, zone=launch.zone, instance=launch.resource, timeout=self.timeout_s
                )
            except gexc.NotFound:
                return RunnerState(False, "VM not found")
        return RunnerState(vm.status in RUNNING, vm.status)

    def cancel(self, launch: JobLaunch) -> bool:
        project = require_project(self.project, "a Compute Engine job")
        with self._errors(f"deleting VM {launch.resource}"):
            try:
                op = self._client(compute_v1.InstancesClient).delete(
                    project=project, zone=launch.zone, instance=launch.resource, timeout=self.timeout_s
                )
            except gexc.NotFound:
                return False
            self._wait(project, launch.zone, op.name)
        return True
