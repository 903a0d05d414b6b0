"""A stand-in for Google's Compute Engine and Vertex AI REST APIs on 127.0.0.1.

No local Compute Engine or Vertex AI exists, so the runners' REAL google clients
(google-cloud-compute, google-cloud-aiplatform, REST transport) are pointed at
this server. It records every request and answers as the APIs do for the calls
the runners make: machine type and region (quota) look-ups, instances
insert/get/delete returning zone operations, zoneOperations wait -> DONE, and
a CustomJob create/get/cancel/list. Tests script what the machine does
(`on_insert`, `vm_status`) and assert on `requests`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class FakeGoogle:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What the tests script: called with the instance (or CustomJob) body on create.
    on_insert: Callable[[dict[str, Any]], None] | None = None
    # Status the next `instances.get` answers; None: 404 (the VM is gone). Default: as recorded.
    vm_status: Callable[[str, int], str | None] | None = None
    guest_cpus: int = 4
    cpu_quota: tuple[float, float] = (24.0, 0.0)  # limit, usage
    forbid: str | None = None  # answer every call with this 403 message (an API not enabled...)
    _gets: dict[str, int] = field(default_factory=dict)
    _ops: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]


def _operation(fake: FakeGoogle, zone: str, kind: str, target: str) -> dict[str, Any]:
    with fake._lock:
        fake._ops += 1
        name = f"operation-{fake._ops}"
    return {
        "kind": "compute#operation",
        "name": name,
        "zone": zone,
        "operationType": kind,
        "targetLink": target,
        "status": "RUNNING",
        "progress": 0,
    }


def start_fake_google() -> tuple[FakeGoogle, ThreadingHTTPServer]:
    fake = FakeGoogle()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self, what: str) -> None:
            self._send(
                404,
                {"error": {"code": 404, "message": f"The resource '{what}' was not found",
                           "errors": [{"reason": "notFound", "message": "not found"}], "status": "NOT_FOUND"}},
            )  # fmt: skip

        def _handle(self, method: str) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            path = parsed.path
            fake.requests.append(Recorded(method, path, parse_qs(parsed.query), body))
            if fake.forbid:
                return self._send(
                    403,
                    {"error": {"code": 403, "message": fake.forbid, "status": "PERMISSION_DENIED",
                               "errors": [{"reason": "accessNotConfigured", "message": fake.forbid}]}},
                )  # fmt: skip
            # --- Compute Engine ---
            m = re.fullmatch(r"/compute/v1/projects/([^/]+)/zones/([^/]+)/machineTypes/([^/]+)", path)
            if m and method == "GET":
                return self._send(200, {"name": m[3], "guestCpus": fake.guest_cpus, "zone": m[2]})
            m = re.fullmatch(r"/compute/v1/projects/([^/]+)/regions/([^/]+)", path)
            if m and method == "GET":
                limit, usage = fake.cpu_quota
                quotas = [{"metric": "CPUS", "limit": limit, "usage": usage},
                          {"metric": "PREEMPTIBLE_CPUS", "limit": limit, "usage": usage}]  # fmt: skip
                return self._send(200, {"name": m[2], "quotas": quotas})
            m = re.fullmatch(r"/compute/v1/projects/([^/]+)/zones/([^/]+)/instances", path)
            if m and method == "POST":
                fake.instances[body["name"]] = {**body, "status": "RUNNING"}
                if fake.on_insert:
                    fake.on_insert(body)
                return self._send(200, _operation(fake, m[2], "insert", body["name"]))
            m = re.fullmatch(r"/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/([^/]+)", path)
            if m and method == "GET":
                name = m[3]
                n = fake._gets[name] = fake._gets.get(name, 0) + 1
                status = fake.instances.get(name, {}).get("status")
                if fake.vm_status is not None and name in fake.instances:
                    status = fake.vm_status(name, n)
                if status is None:
                    return self._not_found(name)
                return self._send(200, {"name": name, "status": status})
            if m and method == "DELETE":
                if fake.instances.pop(m[3], None) is None:
                    return self._not_found(m[3])
                return self._send(200, _operation(fake, m[2], "delete", m[3]))
            m = re.fullmatch(r"/compute/v1/projects/([^/]+)/zones/([^/]+)/operations/([^/]+)/wait", path)
            if m and method == "POST":
                return self._send(200, {"kind": "compute#operation", "name": m[3], "status": "DONE", "progress": 100})
            # --- Vertex AI ---
            m = re.fullmatch(r"/v1/(projects/[^/]+/locations/[^/]+)/customJobs", path)
            if m and method == "POST":
                with fake._lock:
                    name = f"{m[1]}/customJobs/{1000 + len(fake.custom_jobs)}"
                job = {**body, "name": name, "state": "JOB_STATE_PENDING"}
                fake.custom_jobs[name] = job
                if fake.on_insert:
                    fake.on_insert(job)
                return self._send(200, job)
            if m and method == "GET":
                return self._send(200, {"customJobs": list(fake.custom_jobs.values())[:1]})
            m = re.fullmatch(r"/v1/(projects/[^/]+/locations/[^/]+/customJobs/[^/:]+)(:cancel)?", path)
            if m:
                job = fake.custom_jobs.get(m[1])
                if job is None:
                    return self._not_found(m[1])
                if m[2] and method == "POST":
                    job["state"] = "JOB_STATE_CANCELLED"
                    return self._send(200, {})
                return self._send(200, job)
            return self._send(400, {"error": {"code": 400, "message": f"the stand-in does not know {method} {path}"}})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server
