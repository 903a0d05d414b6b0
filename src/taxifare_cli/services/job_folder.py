"""The job-folder protocol: how a cloud training job and the command that started it talk.

Everything goes through one folder, `gs://<bucket>/jobs/<job-id>/`, so the
machine that trains (a VM, a Vertex AI job, a local subprocess) and the
machine that follows it share nothing else:

    job.json        the spec: job id, runner, machine, the training request, the
                    effective settings WITHOUT secrets, the command typed (written by the CLI)
    launch.json     what was started: VM name or CustomJob name, zone, region (written by the CLI)
    <wheel>.whl     the project's wheel the job installs (uploaded by the CLI)
    startup.sh      the startup script (uploaded by the CLI, for the record)
    progress.jsonl  progress lines, one JSON object a line (written by the job agent)
    log.txt         the job's log (setup and agent)
    result.json     the training result: metrics, registered version (the agent, on success)
    done.json       the done-marker: {"status": "succeeded"|"failed", "exit_code", "error", ...};
                    its absence means the job has not finished (or its machine vanished)

A progress line is {"at": ISO time, "kind": "start"|"advance"|"finish"|"log", "task",
"total", "amount", "unit", "info", "message"} (unused keys omitted), so a follower replays
it into any `ports.Progress`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from taxifare_cli.ports import JobLaunch, ObjectStore, Progress

SPEC = "job.json"
LAUNCH = "launch.json"
PROGRESS = "progress.jsonl"
LOG = "log.txt"
RESULT = "result.json"
DONE = "done.json"
STARTUP = "startup.sh"

SUCCEEDED = "succeeded"
FAILED = "failed"

# Settings never written to the job folder: secrets, and paths to files on this machine only.
PRIVATE_SETTINGS = frozenset({"gcp.credentials"})


def new_job_id(now: datetime | None = None) -> str:
    """`taxifare-20250301-142501-3fa2`: sortable, and a valid VM name and label value."""
    now = now or datetime.now(timezone.utc)
    return f"taxifare-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- progress lines ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressLine:
    kind: str  # start, advance, finish, log
    at: str = ""
    task: str = ""
    total: float | None = None
    amount: float = 0.0
    unit: str = ""
    info: str = ""
    message: str = ""

    def to_json(self) -> str:
        d: dict[str, Any] = {"at": self.at or now_iso(), "kind": self.kind}
        for key in ("task", "unit", "info", "message"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        if self.total is not None:
            d["total"] = self.total
        if self.kind == "advance":
            d["amount"] = self.amount
        return json.dumps(d)

    @classmethod
    def parse(cls, line: str) -> ProgressLine | None:
        """The line, or None when it is not one (a torn last line, a stray print)."""
        try:
            d = json.loads(line)
        except ValueError:
            return None
        if not isinstance(d, dict) or d.get("kind") not in {"start", "advance", "finish", "log"}:
            return None
        return cls(
            kind=d["kind"],
            at=str(d.get("at", "")),
            task=str(d.get("task", "")),
            total=d.get("total"),
            amount=float(d.get("amount", 0.0)),
            unit=str(d.get("unit", "")),
            info=str(d.get("info", "")),
            message=str(d.get("message", "")),
        )

    def replay(self, progress: Progress) -> None:
        """Draw this line on a Progress sink, as if the work ran here."""
        if self.kind == "start":
            progress.start(self.task, self.total, self.unit or "rows")
        elif self.kind == "advance":
            progress.advance(self.task, self.amount, info=self.info)
        elif self.kind == "finish":
            progress.finish(self.task)
        else:
            progress.log(self.message)

    def plain(self) -> str | None:
        """One line of text for a log without a terminal (None: not worth a line)."""
        if self.kind == "log":
            return self.message
        if self.kind == "start":
            total = f" ({self.total:g} {self.unit})" if self.total else ""
            return f"{self.task}: started{total}"
        if self.kind == "finish":
            return f"{self.task}: done"
        return f"{self.task}: {self.info}" if self.info else None


# -- the folder ---------------------------------------------------------------------------------


@dataclass
class DoneMarker:
    status: str  # succeeded / failed
    exit_code: int = 0
    error: str | None = None
    finished_at: str = ""
    stage: str = "training"  # setup (installing) or training

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "error": self.error,
            "finished_at": self.finished_at or now_iso(),
            "stage": self.stage,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DoneMarker:
        status = str(d.get("status", FAILED))
        return cls(
            status=status if status in (SUCCEEDED, FAILED) else FAILED,
            exit_code=int(d.get("exit_code", 0 if status == SUCCEEDED else 1)),
            error=d.get("error"),
            finished_at=str(d.get("finished_at", "")),
            stage=str(d.get("stage", "training")),
        )


class JobFolder:
    """One job's folder, read and written through an ObjectStore."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @property
    def uri(self) -> str:
        return self.store.uri()

    @property
    def job_id(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    def _json(self, key: str) -> dict[str, Any] | None:
        data = self.store.read(key)
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def _put_json(self, key: str, value: dict[str, Any]) -> None:
        self.store.write(
            key, json.dumps(value, indent=2, default=str).encode(), content_type="application/json"
        )

    def spec(self) -> dict[str, Any] | None:
        return self._json(SPEC)

    def write_spec(self, spec: dict[str, Any]) -> None:
        self._put_json(SPEC, spec)

    def launch(self) -> JobLaunch | None:
        d = self._json(LAUNCH)
        if d is None:
            return None
        known = set(JobLaunch.__dataclass_fields__)
        return JobLaunch(startup_script="", **{k: v for k, v in d.items() if k in known})

    def write_launch(self, launch: JobLaunch) -> None:
        self._put_json(LAUNCH, launch.as_dict())

    def progress(self) -> list[ProgressLine]:
        data = self.store.read(PROGRESS) or b""
        lines = (ProgressLine.parse(raw) for raw in data.decode(errors="replace").splitlines())
        return [line for line in lines if line is not None]

    def log_tail(self, n: int = 20) -> list[str]:
        data = self.store.read(LOG) or b""
        return data.decode(errors="replace").splitlines()[-n:]

    def log(self) -> str:
        return (self.store.read(LOG) or b"").decode(errors="replace")

    def result(self) -> dict[str, Any] | None:
        return self._json(RESULT)

    def write_result(self, result: dict[str, Any]) -> None:
        self._put_json(RESULT, result)

    def done(self) -> DoneMarker | None:
        d = self._json(DONE)
        return None if d is None else DoneMarker.from_dict(d)

    def write_done(self, marker: DoneMarker) -> None:
        self._put_json(DONE, marker.as_dict())


class FolderProgress:
    """A ports.Progress that the job agent trains with: lines (and the log) go to the job folder.

    Lines are kept in memory and the whole object is rewritten at most every
    `every_s` seconds (a bucket has no append), and at once on start, finish and
    log, so a follower sees every epoch without a write per row chunk.
    """

    def __init__(
        self,
        folder: JobFolder,
        *,
        every_s: float = 2.0,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder
        self.every_s = every_s
        self._log = log
        self._clock = clock
        self._lines: list[str] = []
        self._last_flush = -1e9
        self._dirty = False
        self._lock = threading.Lock()
        self._uploading = threading.Lock()

    def _add(self, line: ProgressLine, *, now: bool = False) -> None:
        with self._lock:
            self._lines.append(line.to_json())
            self._dirty = True
        if now or self._clock() - self._last_flush >= self.every_s:
            self.flush()

    def flush(self) -> None:
        # One upload at a time, each with the lines known when it starts: an older upload can
        # never finish after a newer one and leave the folder with fewer lines.
        with self._uploading:
            with self._lock:
                if not self._dirty:
                    return
                data = ("\n".join(self._lines) + "\n").encode()
                self._dirty = False
                self._last_flush = self._clock()
            self.folder.store.write(PROGRESS, data, content_type="application/x-ndjson")

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None:
        self._add(ProgressLine("start", task=task, total=total, unit=unit), now=True)

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None:
        self._add(ProgressLine("advance", task=task, amount=amount, info=info), now=bool(info))

    def finish(self, task: str) -> None:
        self._add(ProgressLine("finish", task=task), now=True)

    def log(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
        self._add(ProgressLine("log", message=message), now=True)


# -- what goes in the spec ----------------------------------------------------------------------


def public_settings(dumped: dict[str, Any], secret_keys: set[str]) -> dict[str, Any]:
    """Settings as dotted keys -> values, without secrets and private paths; None values left out."""
    out: dict[str, Any] = {}

    def walk(d: dict[str, Any], prefix: str) -> None:
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + ".")
            elif key not in secret_keys and key not in PRIVATE_SETTINGS and v is not None:
                out[key] = v

    walk(dumped, "")
    return out


@dataclass
class TrainRequest:
    """What `model train` would be told: the job agent passes it to Taxifare.train."""

    size: str | None = None
    month: str | None = None
    from_stage: str | None = None
    flags: dict[str, Any] = field(default_factory=dict)  # dotted settings typed on the command line

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "month": self.month, "from_stage": self.from_stage, "flags": self.flags}
