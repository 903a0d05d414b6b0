"""8. Serving: `taxifare model serve` beside `mlflow models serve`, on the same registered version.

One version is trained and registered in an MLflow registry on a local store (SQLite
and an artifact folder, no tracking server), then served twice at once, each in its
own process on 127.0.0.1, each stopped by its pid (its process group) at the end:
- `taxifare model serve --target mlflow --version N`: GET /predict (one ride, the
  original project's query) and POST /predict (a JSON list of rides);
- `mlflow models serve -m models:/taxifare/N --env-manager local`: the MLflow pyfunc
  the registry logged, POST /invocations {"dataframe_records": [...]}.
Both price through the same FareModel.price; their fares are checked to agree first.

The load is bounded: a fixed number of requests over K keep-alive connections, from
this process (asyncio, raw HTTP/1.1: the client must cost less than the servers), with
a time cap; it stops by itself. Rounds alternate between the servers and figures are
medians over rounds. Requests per second = requests answered / wall time; latencies are
per request, send to last byte. The targets are on one ride: ≥ 3× MLflow's requests
per second and ≤ 1/3 of its p99. POST of 1,000 rides is measured alike and kept in
the details.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchmarks.datasets import rows_store
from benchmarks.harness import Comparison, Record, Run, clean_env, median, run_process, taxifare_exe

MIN_RPS_RATIO = 3.0
MAX_P99_RATIO = 1 / 3
BATCH_RIDES = 1_000
DISTINCT_RIDES = 500  # one-ride requests cycle through these
MODEL_NAME = "taxifare"
READY_TIMEOUT_S = 180.0


# --- the load generator ------------------------------------------------------------------------
@dataclass
class Load:
    """What one bounded load run saw."""

    sent: int = 0
    answered: int = 0  # 2xx
    errors: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    capped: bool = False  # the time cap ended it before every request was sent

    @property
    def rps(self) -> float:
        return self.answered / self.wall_s if self.wall_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        k = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))  # nearest rank
        return ordered[k] * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.sent,
            "answered": self.answered,
            "errors": dict(self.errors),
            "wall_s": self.wall_s,
            "rps": self.rps,
            "p50_ms": self.percentile_ms(50),
            "p99_ms": self.percentile_ms(99),
            "capped": self.capped,
        }


def get_request(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n\r\n".encode()


def post_request(port: int, path: str, body: Any) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: */*\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response: (status, whether the server keeps the connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, headers.get("connection") != "close"


async def _load(port: int, requests: Iterator[bytes], concurrency: int, cap_s: float, load: Load) -> None:
    deadline = time.perf_counter() + cap_s

    async def worker() -> None:
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            for request in requests:  # shared: each request is taken by one worker
                if time.perf_counter() > deadline:
                    load.capped = True
                    return
                load.sent += 1
                t = time.perf_counter()
                try:
                    if conn is None:
                        conn = await asyncio.open_connection("127.0.0.1", port)
                    reader, writer = conn
                    writer.write(request)
                    await writer.drain()
                    status, keep = await asyncio.wait_for(_response(reader), timeout=60)
                except (
                    TimeoutError,
                    OSError,
                    asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError,
                    ValueError,
                ) as e:
                    load.errors[type(e).__name__] += 1
                    if conn is not None:
                        conn[1].close()
                    conn = None
                    continue
                load.latencies_s.append(time.perf_counter() - t)
                if 200 <= status < 300:
                    load.answered += 1
                else:
                    load.errors[f"HTTP {status}"] += 1
                if not keep:
                    writer.close()
                    conn = None
        finally:
            if conn is not None:
                conn[1].close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    load.wall_s = time.perf_counter() - start


def bounded_load(port: int, requests: list[bytes], count: int, concurrency: int, cap_s: float) -> Load:
    """`count` requests (cycling through `requests`) over `concurrency` connections, within `cap_s`."""
    load = Load()
    stream = (requests[i % len(requests)] for i in range(count))
    asyncio.run(_load(port, stream, concurrency, cap_s, load))
    return load


# --- the two servers -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    port: int
    ready_path: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    def start(self, cwd: Path) -> None:
        self.started = time.perf_counter()
        with self.log.open("wb") as out:
            # Its own process group: `mlflow models serve` runs uvicorn as a child process.
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=cwd, start_new_session=True
            )

    def wait_ready(self) -> float:
        """Seconds from start until `ready_path` answers 200."""
        import httpx

        assert self.proc is not None
        start = self.started
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
            if time.perf_counter() - start > READY_TIMEOUT_S:
                raise RuntimeError(
                    f"{self.name} did not answer within {READY_TIMEOUT_S:.0f} s:\n{self.tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{self.port}{self.ready_path}", timeout=5).status_code == 200:
                    return time.perf_counter() - start
            time.sleep(0.1)

    def rss_mib(self) -> float:
        """Resident memory of the server and its children."""
        import psutil

        assert self.proc is not None
        root = psutil.Process(self.proc.pid)
        total = 0
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total / (1024 * 1024)

    def stop(self) -> None:
        """SIGTERM to the group this server leads (its pid), SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.is_file() else ""


def mlflow_exe() -> str:
    beside = Path(sys.executable).with_name("mlflow")
    if beside.is_file():
        return str(beside)
    found = shutil.which("mlflow")
    if found is None:
        raise RuntimeError("the mlflow command is not installed: pip install 'taxifare[mlflow]'")
    return found


# --- rides -------------------------------------------------------------------------------------
def ride_records(run: Run, n: int) -> list[dict[str, Any]]:
    """`n` priceable simulated rides as a client sends them (raw text times, no fare)."""
    from taxifare_cli.core.cleaning import clean_chunk
    from taxifare_cli.core.simulator import iter_simulated_dataset

    rows = n * 2
    chunk = next(iter_simulated_dataset("val_1k", chunk_size=rows, seed=run.sizes.seed + 7, rows=rows))
    clean, _ = clean_chunk(chunk, require_fare=False, dedupe=False)
    clean = clean.head(n)
    clean = clean.assign(pickup_datetime=clean["pickup_datetime"].dt.strftime("%Y-%m-%d %H:%M:%S UTC"))
    records: list[dict[str, Any]] = []
    for row in clean.to_dict(orient="records"):
        ride: dict[str, Any] = {"pickup_datetime": str(row["pickup_datetime"])}
        for c in ("pickup_longitude", "pickup_latitude", "dropoff_longitude", "dropoff_latitude"):
            ride[c] = round(float(row[c]), 6)
        ride["passenger_count"] = int(row["passenger_count"])
        records.append(ride)
    if len(records) < n:
        raise RuntimeError(f"only {len(records)} of {n} simulated rides are priceable")
    return records


def check_agreement(taxifare_port: int, mlflow_port: int, rides: list[dict[str, Any]]) -> dict[str, Any]:
    """Both servers price the same rides to the cent (GET one by one, POST, /invocations)."""
    import httpx

    with httpx.Client(timeout=60) as c:
        ours = c.post(f"http://127.0.0.1:{taxifare_port}/predict", json=rides).raise_for_status().json()
        theirs = (
            c.post(f"http://127.0.0.1:{mlflow_port}/invocations", json={"dataframe_records": rides})
            .raise_for_status()
            .json()
        )
        single = c.get(f"http://127.0.0.1:{taxifare_port}/predict", params=rides[0]).raise_for_status()
    mlflow_fares = [round(float(f), 2) for f in _predictions(theirs)]
    worst = max(abs(a - b) for a, b in zip(ours["fares"], mlflow_fares, strict=True))
    if worst > 0.011 or single.json()["fare"] != ours["fares"][0]:
        raise RuntimeError(f"the two servers disagree: up to ${worst:.2f} on {len(rides)} rides")
    return {"rides_compared": len(rides), "max_fare_difference": worst, "version": ours["version"]}


def _predictions(answer: Any) -> list[float]:
    """MLflow's /invocations answer: {"predictions": [...]} (numbers, or {"fare": x} records)."""
    preds = answer["predictions"] if isinstance(answer, dict) else answer
    return [next(iter(p.values())) if isinstance(p, dict) else p for p in preds]


# --- the measurement ---------------------------------------------------------------------------
def train_and_register(run: Run, store_dir: Path) -> tuple[int, dict[str, str]]:
    """One version trained (one epoch) and registered in an MLflow registry on a local store."""
    s = run.sizes
    shutil.rmtree(store_dir, ignore_errors=True)
    store_dir.mkdir(parents=True)
    data = rows_store(run, s.serving_train_rows, s.memory_val_rows)
    env = clean_env(
        TAXIFARE_DATA__LOCAL_PATH=str(data),
        TAXIFARE_DATA__CHUNK_SIZE=str(s.chunk_size),
        TAXIFARE_MLFLOW__LOCAL_STORE=str(store_dir),
        TAXIFARE_REGISTRY__BACKEND="mlflow",
    )
    argv = [taxifare_exe(), "--json", "model", "train", "--size", "all", "--epochs", "1"]
    run.log(f"  training one epoch on {s.serving_train_rows:,} rows into an MLflow local store")
    version = int(run_process(argv, env=env, cwd=store_dir).check().json()["version"])
    return version, env


def measure(run: Run) -> Record:
    s = run.sizes
    base = run.work / "serving"
    store_dir = base / "mlflow"
    version, env = train_and_register(run, store_dir)
    tracking_uri = f"sqlite:///{(store_dir / 'mlflow.db').resolve()}"

    ours_port, theirs_port = free_port(), free_port()
    ours = Server(
        "taxifare model serve",
        [taxifare_exe(), "model", "serve", "--version", str(version), "--port", str(ours_port)],
        env,
        ours_port,
        "/health",
        base / "taxifare-serve.log",
    )
    theirs = Server(
        "mlflow models serve",
        [
            mlflow_exe(),
            "models",
            "serve",
            "-m",
            f"models:/{MODEL_NAME}/{version}",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(theirs_port),
        ],
        # It starts `uvicorn` by name (bash -c): the venv's bin first on PATH, as when it is activated.
        clean_env(
            MLFLOW_TRACKING_URI=tracking_uri,
            PATH=os.pathsep.join([str(Path(mlflow_exe()).parent), os.environ.get("PATH", "")]),
        ),
        theirs_port,
        "/ping",
        base / "mlflow-serve.log",
    )
    rides = ride_records(run, max(DISTINCT_RIDES, BATCH_RIDES))
    details: dict[str, Any] = {"model_version": version, "concurrency": s.serving_concurrency}
    try:
        run.log(f"  starting both servers on version {version}")
        for server in (ours, theirs):
            server.start(base)
        details["ready_s"] = {"taxifare": ours.wait_ready(), "mlflow": theirs.wait_ready()}
        details["agreement"] = check_agreement(ours.port, theirs.port, rides[:BATCH_RIDES])

        one = rides[:DISTINCT_RIDES]
        batch = rides[:BATCH_RIDES]
        requests = {
            ("taxifare", "one"): [get_request(ours.port, f"/predict?{urlencode(r)}") for r in one],
            ("taxifare", "batch"): [post_request(ours.port, "/predict", batch)],
            ("mlflow", "one"): [
                post_request(theirs.port, "/invocations", {"dataframe_records": [r]}) for r in one
            ],
            ("mlflow", "batch"): [post_request(theirs.port, "/invocations", {"dataframe_records": batch})],
        }
        ports = {"taxifare": ours.port, "mlflow": theirs.port}
        shapes = {
            "one": (s.serving_requests, s.serving_concurrency),
            "batch": (s.serving_batch_requests, s.serving_batch_concurrency),
        }
        rounds: dict[str, list[dict[str, Any]]] = {f"{who}_{shape}": [] for who, shape in requests}
        for (who, shape), reqs in requests.items():  # warm-up: first requests, imports, allocations
            bounded_load(ports[who], reqs, 20 if shape == "one" else 2, 2, s.serving_cap_s)
        for i in range(s.serving_rounds):
            for shape, (count, concurrency) in shapes.items():
                order = ("taxifare", "mlflow") if i % 2 == 0 else ("mlflow", "taxifare")
                for who in order:
                    run.log(f"  round {i + 1}/{s.serving_rounds}: {who}, {shape}: {count:,} requests")
                    load = bounded_load(
                        ports[who], requests[(who, shape)], count, concurrency, s.serving_cap_s
                    )
                    if load.errors or load.answered == 0:
                        raise RuntimeError(f"{who} {shape}: {load.summary()}")
                    rounds[f"{who}_{shape}"].append(load.summary())
        details["rss_mib"] = {"taxifare": ours.rss_mib(), "mlflow": theirs.rss_mib()}
    finally:
        for server in (ours, theirs):
            server.stop()

    def med(key: str, figure: str) -> float:
        return median([r[figure] for r in rounds[key]])

    figures = {
        key: {f: med(key, f) for f in ("rps", "p50_ms", "p99_ms")}
        | {"answered": sum(r["answered"] for r in rs)}
        for key, rs in rounds.items()
    }
    details.update(figures=figures, rounds=rounds, batch_rides=BATCH_RIDES)
    rps, ref_rps = figures["taxifare_one"]["rps"], figures["mlflow_one"]["rps"]
    p99, ref_p99 = figures["taxifare_one"]["p99_ms"], figures["mlflow_one"]["p99_ms"]
    return Record(
        name="serving",
        title="Serving one ride: GET /predict, requests/s",
        value=rps,
        unit="req/s",
        comparisons=[
            Comparison(
                reference="mlflow models serve, same version: POST /invocations of one ride, requests/s",
                reference_value=ref_rps,
                ratio=rps / ref_rps,
                target=f"ratio ≥ {MIN_RPS_RATIO:g}",
                met=rps / ref_rps >= MIN_RPS_RATIO,
            ),
            Comparison(
                reference=f"the same, p99 latency in ms (taxifare: {p99:.1f} ms)",
                reference_value=ref_p99,
                ratio=p99 / ref_p99,
                target="p99 ratio ≤ 1/3",
                met=p99 / ref_p99 <= MAX_P99_RATIO,
            ),
        ],
        command=run.command("serving"),
        measured=(
            f"taxifare model serve --version N vs mlflow models serve -m models:/{MODEL_NAME}/N --env-manager "
            f"local, both on 127.0.0.1; {s.serving_requests:,} one-ride requests over "
            f"{s.serving_concurrency} keep-alive connections (and {s.serving_batch_requests:,} of "
            f"{BATCH_RIDES:,} rides over {s.serving_batch_concurrency}), capped at {s.serving_cap_s:g} s, "
            f"medians of {s.serving_rounds} alternating rounds"
        ),
        details=details,
    )
