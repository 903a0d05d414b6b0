"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Variables that would leak the developer's own setup into a test.
_LEAKY = (
    "TAXIFARE_CONFIG", "DATA_SIZE", "DATASET_SIZE", "VALIDATION_DATASET_SIZE", "CHUNK_SIZE", "DATA_SOURCE",
    "MODEL_TARGET", "LOCAL_DATA_PATH", "LOCAL_REGISTRY_PATH", "GCP_PROJECT", "GCP_REGION", "BUCKET_NAME",
    "BQ_DATASET", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT", "MLFLOW_MODEL_NAME",
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean environment: data and registry under tmp_path, no stray settings, cwd tmp_path."""
    for name in list(os.environ):
        if name.startswith("TAXIFARE_") or name in _LEAKY:
            monkeypatch.delenv(name)
    monkeypatch.setenv("TAXIFARE_DATA__LOCAL_PATH", str(tmp_path / "data"))
    monkeypatch.setenv("TAXIFARE_REGISTRY__LOCAL_PATH", str(tmp_path / "registry"))
    monkeypatch.setenv("TAXIFARE_WORKFLOW__STATE_PATH", str(tmp_path / "workflow"))
    monkeypatch.setenv("HOME", str(tmp_path))  # anything else under ~/.taxifare lands here too
    monkeypatch.chdir(tmp_path)
    yield tmp_path
