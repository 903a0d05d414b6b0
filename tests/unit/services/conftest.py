"""Fixtures of the service unit tests: ride files, fake stores and one model trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fakes import FakeRegistry, FakeStore, RecordingProgress
from tests.unit.services.support import SOURCE, TINY, Trained

from taxifare_cli.core.model import HyperParams
from taxifare_cli.services.training import train_model


@pytest.fixture(scope="session")
def tiny() -> HyperParams:
    return TINY


@pytest.fixture(scope="session")
def ride_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train_1k and val_1k as SOURCE writes them (RIDES simulated rides each), written once."""
    root = tmp_path_factory.mktemp("rides")
    files = {}
    for name in ("train_1k", "val_1k"):
        files[name] = root / f"{name}.csv"
        SOURCE.fetch(name, files[name])
    return files


def _store(root: Path, ride_files: dict[str, Path]) -> FakeStore:
    s = FakeStore(root)
    for name, path in ride_files.items():
        s.put(name, path, source=SOURCE.describe(name))
    return s


@pytest.fixture
def store(tmp_path: Path, ride_files: dict[str, Path]) -> FakeStore:
    """A fresh local-kind FakeStore holding train_1k and val_1k."""
    return _store(tmp_path / "store", ride_files)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, ride_files: dict[str, Path]) -> Trained:
    """One training of TINY on train_1k/val_1k, chunk by chunk (700 rows), into its own registry."""
    root = tmp_path_factory.mktemp("trained")
    s = _store(root / "store", ride_files)
    registry = FakeRegistry(root / "registry")
    progress = RecordingProgress()
    result = train_model(
        s, registry, train_name="train_1k", val_name="val_1k", chunk_size=700, hp=TINY, progress=progress
    )
    return Trained(result, s, registry, progress)


@pytest.fixture
def registry(tmp_path: Path, trained: Trained) -> FakeRegistry:
    """A fresh FakeRegistry holding the session's trained model as version 1, in no stage."""
    reg = FakeRegistry(tmp_path / "registry")
    reg.save(trained.artifact, trained.registry.records[trained.result.version.version])
    return reg
