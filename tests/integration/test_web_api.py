"""The web API (`taxifare model serve`) for real: uvicorn on 127.0.0.1, httpx as the client.

Two small versions are trained once for the module into a LocalRegistry (version 1
in Production). A test that moves a stage works on its own copy of the registry.
What is checked:
- GET /predict takes the original project's query parameters and gives the fare the
  CLI's pricing path gives (`Taxifare.price`), to the cent, with X-Model-Version;
- POST /predict prices a list in order, as pricing each ride alone does;
- every bad input is a 422 naming the field (`detail[i].loc`), never a 500;
- /health and /model describe the version served;
- promoting a version swaps it in under continuous requests, none failing, within
  about 2 s at a 0.2 s refresh, and never back; a pinned version stays put;
- the request path imports neither TensorFlow, Keras nor pandas (in a fresh process), and
  `python -m taxifare_cli model serve` serves the same fares.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from taxifare_cli.adapters.registry.local import LocalRegistry
from taxifare_cli.adapters.storage.local import LocalStore
from taxifare_cli.app import Taxifare
from taxifare_cli.core.model import HyperParams
from taxifare_cli.core.simulator import iter_simulated_dataset
from taxifare_cli.files.ride_csv import write_csv_atomic
from taxifare_cli.ports import ModelRef
from taxifare_cli.services.serving import ServedModel
from taxifare_cli.settings import load_settings

uvicorn = pytest.importorskip("uvicorn")
web_api = pytest.importorskip("taxifare_cli.web.api")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# Two versions that price differently: same tiny network, other seeds, one epoch each.
HPS = (
    HyperParams(hidden_layers=(8,), epochs=1, patience=1, batch_size=256, seed=3),
    HyperParams(hidden_layers=(8,), epochs=1, patience=1, batch_size=256, seed=17),
)
RIDES = 1_500  # simulated rows of each of train_1k and val_1k

# The original project's example ride, as its API took it.
RIDE: dict[str, Any] = {
    "pickup_datetime": "2013-07-06 17:18:00 UTC",
    "pickup_longitude": -73.950655,
    "pickup_latitude": 40.783282,
    "dropoff_longitude": -73.984365,
    "dropoff_latitude": 40.769802,
    "passenger_count": 1,
}
THREE = [
    RIDE,
    {
        "pickup_datetime": "2015-01-15 08:30:00 UTC",
        "pickup_longitude": -73.985,
        "pickup_latitude": 40.758,
        "dropoff_longitude": -73.78,
        "dropoff_latitude": 40.644,
        "passenger_count": 3,
    },
    {
        "pickup_datetime": "2010-03-02T23:05:00Z",
        "pickup_longitude": -74.005,
        "pickup_latitude": 40.712,
        "dropoff_longitude": -73.99,
        "dropoff_latitude": 40.75,
    },
]


# --- the registry: two versions trained once ---------------------------------------------------
@pytest.fixture(scope="module")
def trained_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LocalRegistry root holding versions 1 and 2 (version 1 in Production). Read-only: copy it."""
    from taxifare_cli.services.training import train_model

    root = tmp_path_factory.mktemp("web-api")
    store = LocalStore(root / "data")
    for name in ("train_1k", "val_1k"):
        csv = root / "incoming" / f"{name}.csv"
        write_csv_atomic(iter_simulated_dataset(name, chunk_size=RIDES, seed=1, rows=RIDES), csv)
        store.put(name, csv, source="simulated")
    registry = LocalRegistry(root / "registry")
    for hp in HPS:
        train_model(store, registry, train_name="train_1k", val_name="val_1k", chunk_size=1_000, hp=hp)
    registry.promote(1, "Production", by="test")
    return root / "registry"


@pytest.fixture
def registry_copy(trained_registry: Path, tmp_path: Path) -> LocalRegistry:
    """This test's own copy of the registry, to promote in."""
    shutil.copytree(trained_registry, tmp_path / "registry")
    return LocalRegistry(tmp_path / "registry")


def price(registry_root: Path, version: int, rides: list[dict[str, Any]]) -> list[float]:
    """Fares by the CLI's pricing path (`Taxifare.price`), rounded to cents."""
    settings = load_settings(config=None, environ={}).settings
    app = Taxifare(settings, registry=LocalRegistry(registry_root))
    result = app.price(ModelRef(version=version), pd.DataFrame(rides))
    return [round(float(f), 2) for f in result.fares]


@pytest.fixture(scope="module")
def expected(trained_registry: Path) -> dict[int, list[float]]:
    """{version: fares of THREE priced one ride at a time}."""
    return {v: [price(trained_registry, v, [r])[0] for r in THREE] for v in (1, 2)}


# --- a real server on 127.0.0.1 ----------------------------------------------------------------
@dataclass
class Running:
    """uvicorn serving create_api(served) in a thread, on a socket bound beforehand."""

    served: ServedModel
    sock: socket.socket = field(init=False)
    server: Any = field(init=False)
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            web_api.create_api(self.served),
            host="127.0.0.1",
            port=self.sock.getsockname()[1],
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="uvicorn", daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
        assert not self.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def serve() -> Iterator[Callable[..., Running]]:
    """serve(registry, ref, refresh_s=...) -> a running server, stopped after the test."""
    running: list[Running] = []

    def start(registry: LocalRegistry, ref: ModelRef, *, refresh_s: float = 5.0) -> Running:
        r = Running(ServedModel(registry, ref, refresh_s=refresh_s))
        running.append(r)
        return r

    yield start
    for r in running:
        r.stop()


@pytest.fixture(scope="module")
def production(trained_registry: Path) -> Iterator[Running]:
    """One server for the module's read-only tests: version 1, following Production."""
    r = Running(ServedModel(LocalRegistry(trained_registry), ModelRef(stage="Production")))
    yield r
    r.stop()


@pytest.fixture
def client(production: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=production.url, timeout=10) as c:
        yield c


# --- pricing -------------------------------------------------------------------------------------
def test_get_predict_takes_the_original_query_and_prices_as_the_cli(
    client: httpx.Client, trained_registry: Path
) -> None:
    r = client.get("/predict", params=RIDE)
    assert r.status_code == 200, r.text
    assert r.headers["X-Model-Version"] == "1"
    body = r.json()
    assert list(body) == ["fare"]
    assert isinstance(body["fare"], float)
    assert body["fare"] == price(trained_registry, 1, [RIDE])[0]
    assert 0 < body["fare"] < 400


def test_get_predict_defaults_one_passenger_and_reads_iso_times(
    client: httpx.Client, expected: dict[int, list[float]]
) -> None:
    """THREE[2] has no passenger_count and an ISO time with Z; an offset time is the same moment."""
    r = client.get("/predict", params=THREE[2])
    assert r.status_code == 200, r.text
    assert r.json()["fare"] == expected[1][2]
    shifted = {**THREE[2], "pickup_datetime": "2010-03-02T18:05:00-05:00", "passenger_count": 1}
    assert client.get("/predict", params=shifted).json()["fare"] == expected[1][2]


def test_post_predict_prices_in_order_as_one_by_one(
    client: httpx.Client, expected: dict[int, list[float]]
) -> None:
    r = client.post("/predict", json=THREE)
    assert r.status_code == 200, r.text
    assert r.json() == {"fares": expected[1], "version": 1}
    assert r.headers["X-Model-Version"] == "1"
    assert len(set(expected[1])) == 3  # three different fares: the order is really checked
    backwards = client.post("/predict", json=THREE[::-1]).json()
    assert backwards["fares"] == expected[1][::-1]
    singles = [client.get("/predict", params=ride).json()["fare"] for ride in THREE]
    assert singles == expected[1]


def test_post_predict_of_no_rides_is_an_empty_list(client: httpx.Client) -> None:
    r = client.post("/predict", json=[])
    assert r.status_code == 200, r.text
    assert r.json() == {"fares": [], "version": 1}


# --- 422 per field, never 500 -------------------------------------------------------------------
def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in RIDE.items() if k != key}


BAD_RIDES = {
    "missing field": (without("pickup_latitude"), "pickup_latitude", "missing"),
    "not a number": ({**RIDE, "pickup_longitude": "abc"}, "pickup_longitude", "float"),
    "NaN": ({**RIDE, "dropoff_longitude": "nan"}, "dropoff_longitude", "outside New York"),
    "infinite": ({**RIDE, "pickup_latitude": "inf"}, "pickup_latitude", "outside New York"),
    "latitude outside New York": ({**RIDE, "dropoff_latitude": 41.5}, "dropoff_latitude", "outside New York"),
    "longitude outside New York": ({**RIDE, "pickup_longitude": -80.0}, "pickup_longitude", "outside New York"),
    "no passengers": ({**RIDE, "passenger_count": 0}, "passenger_count", "greater than or equal to 1"),
    "eight passengers": ({**RIDE, "passenger_count": 8}, "passenger_count", "less than or equal to 7"),
    "half a passenger": ({**RIDE, "passenger_count": 1.5}, "passenger_count", "integer"),
    "before 2009": ({**RIDE, "pickup_datetime": "2008-12-31 23:00:00 UTC"}, "pickup_datetime", "2008"),
    "after 2030": ({**RIDE, "pickup_datetime": "2031-01-01 00:00:00 UTC"}, "pickup_datetime", "2031"),
    "not a time": ({**RIDE, "pickup_datetime": "yesterday at noon"}, "pickup_datetime", "not a time"),
    "no time": ({**RIDE, "pickup_datetime": ""}, "pickup_datetime", "not a time"),
}  # fmt: skip


def field_errors(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 422, f"{r.status_code}: {r.text}"
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    return detail


@pytest.mark.parametrize("case", list(BAD_RIDES))
def test_get_predict_rejects_a_bad_field_with_422_naming_it(client: httpx.Client, case: str) -> None:
    ride, name, reason = BAD_RIDES[case]
    detail = field_errors(client.get("/predict", params=ride))
    assert [e["loc"] for e in detail] == [["query", name]]
    assert reason in detail[0]["msg"] or reason in detail[0]["type"], detail


# A NaN or infinite number in a JSON body (Python's json writes and reads NaN, Infinity) must be a
# 422 too: FastAPI's own handler echoed the input, which JSON cannot hold (it was a 500).
@pytest.mark.parametrize("case", list(BAD_RIDES))
def test_post_predict_names_the_bad_ride_and_field(client: httpx.Client, case: str) -> None:
    ride, name, reason = BAD_RIDES[case]
    body = json.dumps([RIDE, ride]).replace('"nan"', "NaN").replace('"inf"', "Infinity")  # JSON numbers
    detail = field_errors(client.post("/predict", content=body, headers={"Content-Type": "application/json"}))
    assert [e["loc"] for e in detail] == [["body", 1, name]]
    assert reason in detail[0]["msg"] or reason in detail[0]["type"], detail


@pytest.mark.parametrize(
    "body",
    [{"rides": [RIDE]}, RIDE, "rides", 42, None, [RIDE, "not a ride"]],
    ids=["object", "one ride", "string", "number", "null", "list with a string"],
)
def test_post_predict_body_must_be_a_list_of_rides(client: httpx.Client, body: Any) -> None:
    r = client.post("/predict", content=json.dumps(body), headers={"Content-Type": "application/json"})
    detail = field_errors(r)
    assert all(e["loc"][0] == "body" for e in detail), detail


def test_post_predict_rejects_a_body_that_is_not_json(client: httpx.Client) -> None:
    r = client.post("/predict", content=b"pickup_datetime=2015", headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text


def test_a_string_passenger_count_is_a_number_when_it_is_one(client: httpx.Client) -> None:
    """Query parameters are text: passenger_count=2 is two passengers, a float like 2.0 too."""
    two = client.get("/predict", params={**RIDE, "passenger_count": "2"})
    assert two.status_code == 200, two.text
    assert field_errors(client.get("/predict", params={**RIDE, "passenger_count": "two"}))


# --- describing the model ----------------------------------------------------------------------
def test_health_and_model_report_version_stage_and_metrics(
    client: httpx.Client, trained_registry: Path
) -> None:
    held = LocalRegistry(trained_registry).get(ModelRef(version=1))
    health = client.get("/health").json()
    assert health == {"status": "ok", "version": 1, "stage": "Production", "refresh_error": None}
    model = client.get("/model").json()
    assert model["version"] == 1
    assert model["stage"] == "Production"
    assert model["follows"] == "stage Production"
    assert model["metrics"] == pytest.approx(held.metrics)
    assert {"val_mae", "val_rmse"} <= set(model["metrics"])
    assert model["trained_on"]["train"]["dataset"] == "train_1k"


# --- following the stage ------------------------------------------------------------------------
@dataclass
class Hammer:
    """Threads sending GET /predict without pause; each keeps (start, end, status, version, fare)."""

    url: str
    threads: int = 2
    results: list[list[tuple[float, float, int, str | None, float | None]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for i in range(self.threads):
            self.results.append([])
            t = threading.Thread(target=self._loop, args=(self.results[i],), daemon=True)
            self._workers.append(t)
            t.start()

    def _loop(self, out: list[tuple[float, float, int, str | None, float | None]]) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as c:
            while not self._stop.is_set():
                t = time.monotonic()
                try:
                    r = c.get("/predict", params=RIDE)
                except httpx.HTTPError as e:
                    self.errors.append(f"{type(e).__name__}: {e}")
                    continue
                fare = r.json().get("fare") if r.status_code == 200 else None
                out.append((t, time.monotonic(), r.status_code, r.headers.get("X-Model-Version"), fare))

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(timeout=15)

    def all(self) -> list[tuple[float, float, int, str | None, float | None]]:
        return sorted((x for rs in self.results for x in rs), key=lambda x: x[0])


def test_promotion_swaps_the_served_version_under_requests(
    serve: Callable[..., Running], registry_copy: LocalRegistry, expected: dict[int, list[float]]
) -> None:
    fare1, fare2 = expected[1][0], expected[2][0]
    assert fare1 != fare2, "the two versions price the ride alike: the swap would not show"
    server = serve(registry_copy, ModelRef(stage="Production"), refresh_s=0.2)
    hammer = Hammer(server.url)
    hammer.start()
    try:
        deadline = time.monotonic() + 10
        while min(len(rs) for rs in hammer.results) < 5:  # requests flow on version 1, on each thread
            assert time.monotonic() < deadline and not hammer.errors, hammer.errors[:5]
            time.sleep(0.02)
        promoted_at = time.monotonic()
        registry_copy.promote(2, "Production", by="test")
        deadline = promoted_at + 5
        while time.monotonic() < deadline and not any(x[3] == "2" for x in hammer.all()):
            time.sleep(0.02)
        time.sleep(0.6)  # and keep going on version 2
        while sum(x[3] == "2" for x in hammer.all()) < 10 and time.monotonic() < deadline + 5:
            time.sleep(0.02)
    finally:
        hammer.stop()
    seen = hammer.all()
    assert not hammer.errors, hammer.errors[:5]
    assert all(x[2] == 200 for x in seen), [x for x in seen if x[2] != 200][:5]
    # Each response's fare is its version's fare: the header and the body come from one model.
    assert {(x[3], x[4]) for x in seen} <= {("1", fare1), ("2", fare2)}
    first_v2 = next((x for x in seen if x[3] == "2"), None)
    assert first_v2 is not None, "version 2 never served"
    assert first_v2[1] - promoted_at < 2.0, f"swapped after {first_v2[1] - promoted_at:.2f} s"
    before = [x for x in seen if x[1] < promoted_at]
    assert len(before) >= 10 and all(x[3] == "1" for x in before)
    # Once a response has carried 2, no request sent after it gets 1 (on any thread).
    late = [x for x in seen if x[0] > first_v2[1] and x[3] != "2"]
    assert not late, late[:5]
    for thread_results in hammer.results:
        versions = [x[3] or "" for x in thread_results]
        assert versions == sorted(versions), "a thread saw version 1 after version 2"
    assert sum(x[3] == "2" for x in seen) >= 10
    with httpx.Client(base_url=server.url, timeout=10) as c:
        assert c.get("/health").json() == {
            "status": "ok",
            "version": 2,
            "stage": "Production",
            "refresh_error": None,
        }
        assert c.post("/predict", json=THREE).json() == {"fares": expected[2], "version": 2}


def test_a_pinned_version_does_not_follow_promotions(
    serve: Callable[..., Running], registry_copy: LocalRegistry, expected: dict[int, list[float]]
) -> None:
    pinned = serve(registry_copy, ModelRef(version=1), refresh_s=0.2)
    following = serve(registry_copy, ModelRef(stage="Production"), refresh_s=0.2)
    registry_copy.promote(2, "Production", by="test")
    deadline = time.monotonic() + 5
    with httpx.Client(timeout=10) as c:
        while c.get(f"{following.url}/predict", params=RIDE).headers["X-Model-Version"] != "2":
            assert time.monotonic() < deadline, "the stage-following server never swapped"
            time.sleep(0.05)
        time.sleep(0.5)  # a few more refresh periods for the pinned one
        r = c.get(f"{pinned.url}/predict", params=RIDE)
        assert r.headers["X-Model-Version"] == "1"
        assert r.json() == {"fare": expected[1][0]}
        assert c.post(f"{pinned.url}/predict", json=THREE).json() == {"fares": expected[1], "version": 1}
        model = c.get(f"{pinned.url}/model").json()
        assert (model["version"], model["follows"]) == (1, "version 1")


def test_a_pinned_server_reports_the_stage_its_version_holds_now(
    serve: Callable[..., Running], registry_copy: LocalRegistry
) -> None:
    pinned = serve(registry_copy, ModelRef(version=1), refresh_s=0.2)
    registry_copy.promote(2, "Production", by="test")  # version 1 is archived
    time.sleep(0.6)
    with httpx.Client(base_url=pinned.url, timeout=10) as c:
        assert c.get("/health").json()["stage"] == "Archived"
        assert c.get("/model").json()["stage"] == "Archived"


# --- the CLI command, and no TensorFlow on the request path ------------------------------------
# `taxifare model serve` run by the CLI's own entry point in a fresh process, asked over HTTP
# by a thread of the same process, which then lists the heavy modules the process imported
# and ends it (os._exit: the server runs in the main thread, as under the console script).
SERVE_SCRIPT = r"""
import json, os, sys, threading, time

import httpx

from taxifare_cli.cli.main import run

port, ride = sys.argv[1], json.loads(sys.argv[2])


def ask():
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
        one = httpx.get(f"{url}/predict", params=ride, timeout=10)
        many = httpx.post(f"{url}/predict", json=[ride, ride], timeout=10)
        time.sleep(0.4)  # the stage follower runs a few times
        model = httpx.get(f"{url}/model", timeout=10)
        heavy = sorted(
            m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras", "pandas")
        )
        print(json.dumps({
            "status": [one.status_code, many.status_code, model.status_code],
            "version": one.headers.get("X-Model-Version"),
            "fare": one.json().get("fare"),
            "fares": many.json().get("fares"),
            "heavy": heavy[:10],
        }), flush=True)
        os._exit(0)
    except BaseException as e:
        print(f"asking failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        os._exit(3)


threading.Thread(target=ask, daemon=True).start()
run(["model", "serve", "--port", port, "--refresh", "0.1"])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_cli_serves_production_without_importing_tensorflow_or_pandas(
    home: Path, trained_registry: Path, expected: dict[int, list[float]]
) -> None:
    """`taxifare model serve` in a clean home: the fares of Production; no TensorFlow, no pandas.

    (If this fails only on `heavy`, FareModel.load or something the server imports pulls in
    Keras or pandas: pricing must run on the numpy network from weights.npz, through
    `core.few_rides`.)
    """
    shutil.copytree(trained_registry, home / "registry")
    proc = subprocess.run(
        [sys.executable, "-c", SERVE_SCRIPT, str(free_port()), json.dumps(RIDE)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"},
        cwd=home,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == [200, 200, 200], proc.stderr[-3000:]
    assert (result["version"], result["fare"]) == ("1", expected[1][0])
    assert result["fares"] == [expected[1][0]] * 2
    assert result["heavy"] == [], f"the request path imported {result['heavy']}"
