"""LocalRunner: the job's startup script run on this machine, in a subprocess.

The same script a VM runs at boot, with TAXIFARE_JOB_LOCAL=1: it downloads the
wheel from the job folder, runs the job agent with this Python (no venv, no
install), and reports through the job folder. No account, no cost: it tries
the job-folder protocol end to end (against the bucket or an emulator).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from taxifare_cli.errors import ConfigError
from taxifare_cli.ports import JobLaunch, RunnerState

if TYPE_CHECKING:
    from taxifare_cli.settings import Settings


class LocalRunner:
    kind = "local"
    # Processes started by this process, by job id: only these are ever signalled.
    _started: ClassVar[dict[str, subprocess.Popen[bytes]]] = {}

    def __init__(self, *, gcs_endpoint: str | None = None, python: str = sys.executable) -> None:
        self.gcs_endpoint = gcs_endpoint
        self.python = python

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalRunner:
        endpoint = settings.storage.gcs_endpoint or os.environ.get("STORAGE_EMULATOR_HOST") or None
        if endpoint and "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        return cls(gcs_endpoint=endpoint.rstrip("/") if endpoint else None)

    def _env(self, workdir: Path) -> dict[str, str]:
        env = {
            "TAXIFARE_JOB_LOCAL": "1",
            "TAXIFARE_JOB_PYTHON": self.python,
            "TAXIFARE_JOB_WORKDIR": str(workdir),
        }
        if self.gcs_endpoint:
            env["TAXIFARE_GCS_ENDPOINT"] = self.gcs_endpoint
            env["STORAGE_EMULATOR_HOST"] = self.gcs_endpoint
        return env

    def request(self, launch: JobLaunch) -> dict[str, Any]:
        return {
            "runner": "local",
            "command": ["bash", "startup.sh"],
            "env": self._env(Path(tempfile.gettempdir()) / f"{launch.job_id}-XXXX"),
        }

    def preflight(self, launch: JobLaunch) -> None:
        for tool in ("bash", "curl"):
            if shutil.which(tool) is None:
                raise ConfigError(f"the local runner needs {tool}, which is not on PATH")

    def submit(self, launch: JobLaunch) -> str:
        workdir = Path(tempfile.mkdtemp(prefix=f"{launch.job_id}-"))
        script = workdir / "startup.sh"
        script.write_text(launch.startup_script)
        with (workdir / "runner.log").open("wb") as out:
            process = subprocess.Popen(
                ["bash", str(script)],
                env={**os.environ, **self._env(workdir)},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: cancel stops the agent too
            )
        self._started[launch.job_id] = process
        return f"pid:{process.pid}"

    def state(self, launch: JobLaunch) -> RunnerState:
        process = self._started.get(launch.job_id)
        if process is None:
            return RunnerState(False, "not started by this process")
        code = process.poll()
        return RunnerState(True, "running") if code is None else RunnerState(False, f"exited with {code}")

    def cancel(self, launch: JobLaunch) -> bool:
        process = self._started.get(launch.job_id)
        if process is None or process.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the group this runner created for it
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        return True
