"""Fixtures for the cloud stores: real emulators for the session, a fresh bucket or dataset per test.

Also a TCP relay that can cut connections mid-transfer, to interrupt uploads for real.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.emulators import BQ_PROJECT, Emulator, start_bqemulator, start_fake_gcs

from taxifare_cli.core.simulator import iter_simulated_dataset
from taxifare_cli.files.ride_csv import write_csv_atomic


# --- emulators ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = start_fake_gcs(tmp_path_factory.mktemp("fake-gcs"))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = start_bqemulator(tmp_path_factory.mktemp("bqemulator"))
    yield emulator
    emulator.stop()


@pytest.fixture
def gcs_client(gcs_emulator: Emulator) -> Any:
    """The bare google client on the emulator, to look behind the store's back."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]  # untyped package

    return storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator.url}
    )


@pytest.fixture
def bucket(gcs_client: Any) -> str:
    name = f"taxifare-test-{uuid.uuid4().hex[:10]}"
    gcs_client.create_bucket(name)
    return name


@pytest.fixture
def make_gcs_store(gcs_emulator: Emulator, bucket: str) -> Callable[..., Any]:
    """GcsStore on this test's bucket; quick to give up, so failures stay fast."""
    from taxifare_cli.adapters.storage.gcs import GcsStore

    def make(endpoint: str | None = None, **kwargs: Any) -> GcsStore:
        options: dict[str, Any] = {"prefix": "taxi-fare-ny", "timeout_s": 10.0, "retries": 1, **kwargs}
        return GcsStore(options.pop("bucket", bucket), endpoint=endpoint or gcs_emulator.url, **options)

    return make


@pytest.fixture
def bq_client(bq_emulator: Emulator) -> Any:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=BQ_PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=bq_emulator.url),
    )


@pytest.fixture
def dataset(bq_client: Any) -> str:
    name = f"taxifare_test_{uuid.uuid4().hex[:10]}"
    bq_client.create_dataset(f"{BQ_PROJECT}.{name}")
    return name


@pytest.fixture
def make_bq_store(bq_emulator: Emulator, dataset: str) -> Callable[..., Any]:
    from taxifare_cli.adapters.storage.bigquery import BigQueryStore

    def make(endpoint: str | None = None, **kwargs: Any) -> BigQueryStore:
        options: dict[str, Any] = {"timeout_s": 30.0, "retries": 1, **kwargs}
        return BigQueryStore(
            options.pop("project", BQ_PROJECT),
            options.pop("dataset", dataset),
            endpoint=endpoint or bq_emulator.url,
            **options,
        )

    return make


# --- data ---------------------------------------------------------------------------------
@pytest.fixture
def rides_csv(tmp_path: Path) -> Callable[..., Path]:
    """rides_csv(name, rows, seed=1): simulated raw rides written as the real files are."""

    def write(name: str, rows: int, *, seed: int = 1, path: Path | None = None) -> Path:
        path = path or tmp_path / "in" / f"{name}-{rows}-{seed}.csv"
        write_csv_atomic(iter_simulated_dataset(name, chunk_size=50_000, seed=seed, rows=rows), path)
        return path

    return write


# --- a relay that cuts connections ----------------------------------------------------------
class CuttingProxy:
    """A TCP relay on 127.0.0.1 to `target_port`.

    `cut_after(n)`: once n more bytes have gone upstream (client to server), every open
    connection is reset and new ones are hung up on, until `heal()`. `bytes_down` counts
    what the server sent back, to see how much of a blob a read fetched.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.bytes_up = 0
        self.bytes_down = 0
        self._budget: int | None = None
        self._down = False
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, n_bytes: int) -> None:
        with self._lock:
            self._budget = n_bytes
            self._down = False

    def heal(self) -> None:
        with self._lock:
            self._budget = None
            self._down = False

    @property
    def is_cut(self) -> bool:
        return self._down

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.listener.close()
        self._reset_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._down:
                _reset(client)
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if upstream:
                    with self._lock:
                        if self._budget is not None:
                            if len(data) >= self._budget:
                                data, self._budget, self._down = data[: self._budget], 0, True
                            else:
                                self._budget -= len(data)
                        self.bytes_up += len(data)
                    if data:
                        dst.sendall(data)
                    if self._down:
                        self._reset_all()
                        return
                else:
                    with self._lock:
                        self.bytes_down += len(data)
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def _reset_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for s in sockets:
            _reset(s)


def _reset(sock: socket.socket) -> None:
    """Close with RST, as a dropped connection looks to the other side."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()


@pytest.fixture
def proxy_to() -> Iterator[Callable[[Emulator], CuttingProxy]]:
    proxies: list[CuttingProxy] = []

    def make(emulator: Emulator) -> CuttingProxy:
        proxy = CuttingProxy(int(emulator.url.rsplit(":", 1)[1]))
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


# --- MLflow: one tracking server and one small model for the whole session ----------------------
from tests.integration.mlflow_server import MlflowServer, start_mlflow_server  # noqa: E402


@pytest.fixture(scope="session")
def _booting_mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """`mlflow server` started on 127.0.0.1, not yet ready; stopped by its pid after the session."""
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), wait=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_server(_booting_mlflow_server: MlflowServer, fare_artifact: Path) -> MlflowServer:
    """The session's MLflow tracking server, healthy. Tests share it: each uses its own model name.

    (It asks for `fare_artifact` so that TensorFlow loads while the server boots.)
    """
    return _booting_mlflow_server.wait_ready()


@pytest.fixture(scope="session")
def fare_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained FareModel normalised on simulated rides, saved once as an artifact directory.

    Read-only: registries copy it, nothing writes into it.
    """
    import numpy as np

    from taxifare_cli.artifact import FareModel
    from taxifare_cli.core.cleaning import clean_chunk
    from taxifare_cli.core.features import N_FEATURES, compute_features
    from taxifare_cli.core.model import HyperParams, build_model

    rides = next(iter_simulated_dataset("train_1k", chunk_size=500, seed=1, rows=500))
    clean, _ = clean_chunk(rides, require_fare=False, dedupe=False)
    x = compute_features(clean)
    network = build_model(
        N_FEATURES,
        HyperParams(hidden_layers=(8,), epochs=1),
        mean=x.mean(axis=0),
        variance=np.maximum(x.var(axis=0), 1e-6),
        target_mean=12.0,
    )
    directory = tmp_path_factory.mktemp("fare-model") / "artifact"
    return FareModel.new(network, trained_on="train_1k").save(directory)
