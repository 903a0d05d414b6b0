"""MLflow versions carry the sha256 of their artifact files; a download that differs is refused.

Against the session's real MLflow server (tests/integration/mlflow_server.py): the files
are changed where the server keeps them (its --artifacts-destination), as a hand, a
bad disk or a bad copy would change them.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow")

from tests.integration.mlflow_server import MlflowServer

from taxifare_cli.adapters.registry.mlflow import MlflowRegistry
from taxifare_cli.adapters.registry.mlflow import records as R
from taxifare_cli.adapters.registry.mlflow.records import CHECKSUMS_TAG
from taxifare_cli.errors import DataError
from taxifare_cli.ports import ModelRef, TrainingRecord


@pytest.fixture
def saved(mlflow_server: MlflowServer, fare_artifact: Path) -> tuple[MlflowRegistry, Any]:
    from mlflow import MlflowClient

    registry = MlflowRegistry(
        mlflow_server.uri, experiment="integrity", model_name=f"i-{uuid.uuid4().hex[:8]}"
    )
    record = TrainingRecord(
        params={"epochs": 1}, metrics={"val_mae": 3.0}, data={}, history={"loss": [1.0]},
        package_version="0.1.0", git_commit=None,
    )  # fmt: skip
    registry.save(fare_artifact, record)
    return registry, MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)


def stored_file(server: MlflowServer, registry: MlflowRegistry, client: Any, name: str) -> Path:
    """Where the server keeps `name` of version 1's FareModel directory."""
    model_id = R.model_id(client.get_model_version(registry.model_name, "1"))
    assert model_id is not None
    found = [p for p in (server.root / "artifacts").rglob(name) if model_id in str(p)]
    assert len(found) == 1, found
    return found[0]


def test_save_tags_the_version_with_the_checksum_of_each_file(
    saved: tuple[MlflowRegistry, Any], fare_artifact: Path, tmp_path: Path
) -> None:
    registry, client = saved
    tags = client.get_model_version(registry.model_name, "1").tags
    recorded = json.loads(tags[CHECKSUMS_TAG])
    assert set(recorded) == {p.name for p in fare_artifact.iterdir()}
    _, path = registry.fetch_artifact(ModelRef(version=1), tmp_path)
    assert (path / "features.json").read_bytes() == (fare_artifact / "features.json").read_bytes()


def test_a_file_changed_on_the_server_is_refused_naming_it(
    saved: tuple[MlflowRegistry, Any], mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    registry, client = saved
    features = stored_file(mlflow_server, registry, client, "features.json")
    features.write_text(features.read_text().replace('"grid_km"', '"grid_mi"'))
    with pytest.raises(
        DataError, match=r"MLflow model version 1: .*features\.json does not match the checksum"
    ):
        registry.fetch_artifact(ModelRef(version=1), tmp_path)


def test_a_version_with_no_checksums_still_loads_and_is_shape_checked(
    saved: tuple[MlflowRegistry, Any], mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    registry, client = saved
    client.delete_model_version_tag(registry.model_name, "1", CHECKSUMS_TAG)  # as saved before checksums
    _, path = registry.fetch_artifact(ModelRef(version=1), tmp_path / "a")
    assert (path / "weights.npz").is_file()
    weights = stored_file(mlflow_server, registry, client, "weights.npz")
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(DataError, match=r"weights\.npz is truncated"):
        registry.fetch_artifact(ModelRef(version=1), tmp_path / "b")
