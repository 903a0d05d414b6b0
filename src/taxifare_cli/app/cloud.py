"""Training on Google's machines: the use cases behind `taxifare cloud`, mixed into Taxifare."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from taxifare_cli import bootstrap
from taxifare_cli.core.vocabulary import LoadableStage
from taxifare_cli.errors import ConfigError
from taxifare_cli.ports import SILENT, Progress
from taxifare_cli.settings import Settings

if TYPE_CHECKING:
    from taxifare_cli.ports import ObjectStore, TrainingRunner
    from taxifare_cli.services.cloud_training import CloudJob, JobOutcome, JobSummary
    from taxifare_cli.services.job_folder import JobFolder, ProgressLine


class CloudTraining:
    """`cloud vm-train | vertex-train | local-train | jobs | logs | cancel` as methods."""

    settings: Settings
    progress: Progress = SILENT

    def training_parts(self, size: str | None, month: str | None) -> tuple[str, str]:
        raise NotImplementedError  # Taxifare's rule for dataset parts

    def runner(self, name: str) -> TrainingRunner:
        """What starts a cloud job: local (a subprocess), compute_engine, vertex."""
        return bootstrap.build_runner(self.settings, name)

    @cached_property
    def jobs_folder(self) -> ObjectStore:
        """gs://<storage.bucket>/<cloud.jobs_prefix>: one folder per cloud job."""
        return bootstrap.build_jobs_folder(self.settings)

    def public_settings(self) -> dict[str, object]:
        """The effective settings as dotted keys, without secrets: what a job's spec carries."""
        from pydantic import SecretStr

        from taxifare_cli.services.job_folder import public_settings

        secret_keys: set[str] = set()

        def walk(d: dict[str, object], prefix: str) -> None:
            for k, v in d.items():
                if isinstance(v, dict):
                    walk(v, f"{prefix}{k}.")
                elif isinstance(v, SecretStr):
                    secret_keys.add(f"{prefix}{k}")

        walk(self.settings.model_dump(mode="python"), "")
        return public_settings(self.settings.model_dump(mode="json"), secret_keys)

    def plan_cloud_training(
        self,
        runner: str,
        size: str | None = None,
        month: str | None = None,
        *,
        from_stage: LoadableStage | None = None,
        flags: dict[str, object] | None = None,
        keep_vm: bool = False,
    ) -> CloudJob:
        """A training job for `runner`, with its exact request and startup script; nothing created."""
        from taxifare_cli import __version__
        from taxifare_cli.services.cloud_training import MachineOptions, plan_job
        from taxifare_cli.services.job_folder import TrainRequest

        part, _ = self.training_parts(size, month)  # a bad --size fails here, not on the VM
        c, g = self.settings.cloud, self.settings.gcp
        default_account = f"taxifare-trainer@{g.project}.iam.gserviceaccount.com" if g.project else None
        account = c.service_account or default_account
        typed = {k: v for k, v in (flags or {}).items() if v is not None}
        command = ["taxifare", "model", "train"]
        command += ["--month", month] if month else ["--size", size or part]
        if from_stage:
            command += ["--from-stage", from_stage]
        return plan_job(
            self.runner(runner),
            self.jobs_folder,
            train=TrainRequest(size=size, month=month, from_stage=from_stage, flags=typed),
            settings_flat=self.public_settings(),
            machine=MachineOptions(
                machine_type=c.machine_type,
                zone=c.zone,
                region=g.region,
                project=g.project,
                spot=c.spot,
                max_hours=c.max_hours,
                keep_vm=keep_vm,
                service_account=account,
            ),
            command=command,
            wheel_name=f"taxifare-{__version__}-py3-none-any.whl",
        )

    def start_cloud_training(self, job: CloudJob) -> CloudJob:
        """Build the wheel, pre-flight, upload, start the machine (job.launch.resource says which)."""
        from taxifare_cli.services import cloud_training as ct
        from taxifare_cli.services.job_package import build_wheel, project_root

        root = project_root(__file__)
        if root is None:
            raise ConfigError(
                "cloud training builds the project's wheel from a source checkout, and this is not one",
                hint="run it from a clone of the project (pip install -e '.[cloud]')",
            )
        self.progress.log(f"building the wheel of {root}")
        wheel = build_wheel(root, ct.temporary_dir("taxifare-wheel-"))
        if wheel.name != job.spec["wheel"]:
            raise ConfigError(f"the wheel built is {wheel.name}, not {job.spec['wheel']} as planned")
        runner = self.runner(job.spec["runner"])
        return ct.start_job(runner, self.jobs_folder, job, wheel, progress=self.progress)

    def job_folder(self, job_id: str) -> tuple[JobFolder, dict[str, object]]:
        from taxifare_cli.services.cloud_training import open_job

        return open_job(self.jobs_folder, job_id)

    def follow_cloud_job(
        self, job_id: str, on_line: Callable[[ProgressLine], None], *, poll_s: float | None = None
    ) -> JobOutcome:
        """Follow a started job's progress until its done-marker, or until its machine is gone."""
        from taxifare_cli.errors import NotFoundError
        from taxifare_cli.services.cloud_training import follow_job

        folder, spec = self.job_folder(job_id)
        launch = folder.launch()
        if launch is None:
            raise NotFoundError(f"job {job_id} was never started (no launch.json in {folder.uri})")
        return follow_job(
            self.runner(str(spec["runner"])),
            folder,
            launch,
            on_line=on_line,
            poll_s=poll_s if poll_s is not None else self.settings.cloud.poll_s,
        )

    def cloud_jobs(self) -> list[JobSummary]:
        from taxifare_cli.services.cloud_training import list_jobs

        return list_jobs(self.jobs_folder, self.runner)

    def cancel_cloud_job(self, job_id: str) -> bool:
        """Stop a job's machine (delete the VM, cancel the CustomJob); True if one was stopped."""
        from taxifare_cli.services.cloud_training import cancel_job

        folder, spec = self.job_folder(job_id)
        return cancel_job(self.runner(str(spec["runner"])), folder)
