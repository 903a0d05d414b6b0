"""A real `mlflow server` on 127.0.0.1 (sqlite backend, local artifacts), stopped by its own pid.

The session's server is the `mlflow_server` fixture of tests/integration/conftest.py (one
per test session, shared by test_mlflow_registry.py and test_registry_contract.py); e2e
tests of `--target mlflow` can start one the same way (`start_mlflow_server(tmp_dir)` ...
`server.stop()`).
Settings: telemetry and job execution off, one worker; healthy in about 8 to 20 s depending on the machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MlflowServer:
    uri: str
    process: subprocess.Popen[bytes]
    root: Path

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return bool(response.read().strip() == b"OK")
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> MlflowServer:
        deadline = time.monotonic() + timeout_s
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mlflow server not healthy at {self.uri}:\n{self.log_tail()}")
            time.sleep(0.25)
        return self

    def stop(self) -> None:
        """SIGTERM to the server's process group (it forks a uvicorn worker), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_mlflow_server(root: Path, *, wait: bool = True) -> MlflowServer:
    """Start a server keeping its database, artifacts and log under `root`.

    With `wait=False` it returns at once (call `wait_ready()` later), so that a test can
    do slow set-up of its own while the server boots.
    """
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")}
    env |= {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    # fmt: off
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    # fmt: on
    with (root / "server.log").open("wb") as out:
        # Its own session, so that stop() reaches the workers it forks through the group.
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = MlflowServer(f"http://127.0.0.1:{port}", process, root)
    return server.wait_ready() if wait else server
