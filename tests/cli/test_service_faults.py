"""A Cloud Storage endpoint that answers 503, or never answers: bounded retries, then exit 5 in one line.

The endpoint is a real HTTP server on 127.0.0.1 (no emulator can be told to fail every
call); the real google-cloud-storage client talks to it through storage.gcs_endpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.cli.conftest import Cli

pytest.importorskip("google.cloud.storage")


class Endpoint:
    def __init__(self, answer: int | None) -> None:
        self.requests: list[str] = []
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                endpoint.requests.append(self.path)
                if answer is None:  # hang until the test ends: a time-out for the client
                    endpoint.release.wait(30)
                    return
                body = b'{"error": {"code": %d, "message": "try later"}}' % answer
                self.send_response(answer)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_PUT = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> Iterator[Endpoint]:
    e = Endpoint(request.param)
    yield e
    e.close()


@pytest.mark.parametrize(
    ("endpoint", "retries", "needle"),
    [(503, 2, "ServiceUnavailable: 503"), (500, 1, "500"), (None, 1, "cannot reach Cloud Storage")],
    ids=["503", "500", "no-answer"],
    indirect=["endpoint"],
)
def test_a_failing_cloud_storage_is_retried_a_bounded_number_of_times_then_exit_5(
    cli: Cli, endpoint: Endpoint, retries: int, needle: str
) -> None:
    env = {
        "TAXIFARE_STORAGE__BUCKET": "taxifare-faults",
        "TAXIFARE_STORAGE__GCS_ENDPOINT": endpoint.url,
        "TAXIFARE_STORAGE__RETRIES": str(retries),
        "TAXIFARE_STORAGE__TIMEOUT_S": "1",
    }
    started = time.monotonic()
    r = cli("data", "ls", env=env)
    assert r.code == 5, r
    assert time.monotonic() - started < 30, "retries and time-outs must be bounded"
    assert "Traceback" not in r.err and r.out == "", r
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert lines[0].startswith("error: cannot reach Cloud Storage") and needle in " ".join(r.err.split()), r
    assert all(line.startswith("  hint:") for line in lines[1:]), r
    # The bucket check is tried at most 1 + retries times. Each try is a listing, which the google
    # client may precede with a bucket look-up of its own: those are bounded loosely.
    listings = [p for p in endpoint.requests if "/o?" in p]
    assert len(listings) >= 2, endpoint.requests  # a transient failure is tried again
    assert len(listings) <= 1 + retries, endpoint.requests  # but no more often than allowed
    assert len(endpoint.requests) <= 3 * (1 + retries), endpoint.requests
