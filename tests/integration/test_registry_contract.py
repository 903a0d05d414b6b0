"""The ModelRegistry contract: one set of tests that every registry passes.

Each test runs on a LocalRegistry in tmp_path and on an MlflowRegistry on the
session's real MLflow server (see `mlflow_server` in conftest.py), each time with a
new registered model name and experiment, so tests do not see each other's versions.
What is one backend's own (file layout, locking, MLflow runs, tags, the pyfunc) is
tested beside it: tests/unit/test_local_registry.py, test_mlflow_registry.py.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from taxifare_cli.adapters.registry.local import LocalRegistry
from taxifare_cli.artifact import FareModel
from taxifare_cli.core.simulator import iter_simulated_dataset
from taxifare_cli.core.vocabulary import LOADABLE_STAGES
from taxifare_cli.errors import NotFoundError, UsageError
from taxifare_cli.ports import ModelRef, ModelRegistry, TrainingRecord

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# MLflow first: its first test boots the session's server while TensorFlow loads.
BACKENDS = ["mlflow", "local"]


@pytest.fixture(autouse=True, scope="module")
def _restore_process_state() -> Iterator[None]:
    """MlflowRegistry sets MLflow's environment defaults; keep them out of later modules."""
    environ, path = dict(os.environ), list(sys.path)
    yield
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> ModelRegistry:
    """A new, empty registry of each kind."""
    if request.param == "local":
        return LocalRegistry(tmp_path / "registry")
    from taxifare_cli.adapters.registry.mlflow import MlflowRegistry

    server = request.getfixturevalue("mlflow_server")
    name = f"contract-{uuid.uuid4().hex[:10]}"
    return MlflowRegistry(server.uri, experiment=name, model_name=name)


def make_record(*, mae: float = 2.5, parent_version: int | None = None) -> TrainingRecord:
    """What a training run hands over. No history: the port reports none, and plotting it
    (test_mlflow_registry.py checks the plots) would only slow every MLflow save down."""
    return TrainingRecord(
        params={"hidden_layers": [8], "learning_rate": 0.001, "epochs": 3, "train_dataset": "train_1k"},
        metrics={"val_mae": mae, "val_rmse": 3.75, "train_rows": 900.0},
        data={
            "train": {"dataset": "train_1k", "source": "local", "checksum": "sha256:abc", "rows_used": 900},
            "val": {"dataset": "val_1k", "source": "local", "checksum": "sha256:def", "rows_used": 95},
        },
        history={},
        package_version="0.1.0",
        git_commit="0123456789abcdef",
        parent_version=parent_version,
    )


def save_versions(registry: ModelRegistry, artifact: Path, n: int) -> None:
    for i in range(n):
        registry.save(artifact, make_record(mae=2.5 - i / 10))


def stages(registry: ModelRegistry) -> dict[int, str]:
    return {v.version: v.stage for v in registry.list()}


# -- save and get -------------------------------------------------------------------------------


def test_save_numbers_each_version_after_the_last_and_keeps_its_record(
    registry: ModelRegistry, fare_artifact: Path
) -> None:
    first = registry.save(fare_artifact, make_record(mae=2.5))
    second = registry.save(fare_artifact, make_record(mae=2.25, parent_version=1))

    assert (first.version, second.version) == (1, 2)
    assert first.stage == second.stage == "None"
    # What save returned, get and list report the same record.
    for got in (second, registry.get(ModelRef(version=2)), registry.list()[1]):
        assert (got.version, got.stage) == (2, "None")
        assert got.params == make_record().params
        assert got.metrics == {"val_mae": 2.25, "val_rmse": 3.75, "train_rows": 900.0}
        assert got.data == make_record().data
        assert (got.package_version, got.git_commit) == ("0.1.0", "0123456789abcdef")
        assert got.parent_version == 1
    got_first = registry.get(ModelRef(version=1))
    assert got_first.metrics["val_mae"] == 2.5 and got_first.parent_version is None
    assert isinstance(first.created_at, datetime) and first.created_at.tzinfo is not None
    assert got_first.created_at <= registry.get(ModelRef(version=2)).created_at


def test_get_by_stage_returns_the_version_that_holds_it(registry: ModelRegistry, fare_artifact: Path) -> None:
    save_versions(registry, fare_artifact, 2)
    registry.promote(1, "Staging", by="alice")
    registry.promote(2, "Production", by="alice")

    staging, production = registry.get(ModelRef(stage="Staging")), registry.get(ModelRef(stage="Production"))
    assert (staging.version, staging.stage) == (1, "Staging")
    assert (production.version, production.stage) == (2, "Production")
    assert production.metrics == registry.get(ModelRef(version=2)).metrics
    with pytest.raises(UsageError, match="cannot load by stage"):
        registry.get(ModelRef(stage="Archived"))  # many versions may be archived: not one to load


def test_a_missing_version_is_not_found(registry: ModelRegistry, fare_artifact: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        registry.get(ModelRef(version=1))  # nothing saved yet
    registry.save(fare_artifact, make_record())
    with pytest.raises(NotFoundError, match="version 7 does not exist"):
        registry.get(ModelRef(version=7))
    with pytest.raises(NotFoundError):
        registry.fetch_artifact(ModelRef(version=7), tmp_path / "fetched")
    with pytest.raises(NotFoundError):
        registry.promote(7, "Production", by="alice")
    with pytest.raises(NotFoundError):
        registry.record_evaluation(7, {"dataset": "val_feb", "mae": 2.0})
    assert [v.version for v in registry.list()] == [1]
    assert registry.get(ModelRef(version=1)).stage == "None"  # the failed promotion moved nothing


def test_an_empty_stage_is_not_found(registry: ModelRegistry, fare_artifact: Path) -> None:
    with pytest.raises(NotFoundError):
        registry.get(ModelRef(stage="Production"))  # nothing saved yet
    registry.save(fare_artifact, make_record())
    for stage in LOADABLE_STAGES:
        with pytest.raises(NotFoundError, match=stage) as err:
            registry.get(ModelRef(stage=stage))
        assert "taxifare model promote" in str(err.value)  # says what to do


# -- the artifact -------------------------------------------------------------------------------


def test_fetch_artifact_gives_a_model_that_prices_rides_as_the_saved_one(
    registry: ModelRegistry, fare_artifact: Path, tmp_path: Path
) -> None:
    registry.save(fare_artifact, make_record())
    registry.promote(1, "Production", by="alice")
    rides = next(iter_simulated_dataset("val_1k", chunk_size=200, seed=7, rows=200))
    saved = FareModel.load(fare_artifact).price(rides, invalid="nan")
    priced = ~np.isnan(saved.fares)
    assert priced.sum() > 150 and np.ptp(saved.fares[priced]) > 0  # a constant model would prove nothing

    for ref in (ModelRef(stage="Production"), ModelRef(version=1)):
        version, fetched = registry.fetch_artifact(ref, tmp_path / "fetched")
        assert (version.version, version.stage) == (1, "Production")
        assert fetched.is_dir()
        np.testing.assert_array_equal(FareModel.load(fetched).price(rides, invalid="nan").fares, saved.fares)


# -- list and stages ----------------------------------------------------------------------------


def test_list_is_oldest_first_with_each_versions_stage(registry: ModelRegistry, fare_artifact: Path) -> None:
    assert registry.list() == []
    save_versions(registry, fare_artifact, 2)
    registry.promote(1, "Staging", by="alice")

    listed = registry.list()
    assert [v.version for v in listed] == [1, 2]
    assert [v.stage for v in listed] == ["Staging", "None"]
    assert [v.metrics["val_mae"] for v in listed] == pytest.approx([2.5, 2.4])


def test_promoting_to_production_archives_the_previous_holder(
    registry: ModelRegistry, fare_artifact: Path
) -> None:
    save_versions(registry, fare_artifact, 2)

    first = registry.promote(1, "Production", by="alice")
    assert (first.version, first.stage, first.previous, first.by) == (1, "Production", None, "alice")
    second = registry.promote(2, "Production", by="bob")
    assert (second.version, second.stage, second.previous, second.by) == (2, "Production", 1, "bob")
    assert isinstance(second.at, datetime) and second.at.tzinfo is not None

    assert stages(registry) == {1: "Archived", 2: "Production"}
    assert registry.get(ModelRef(version=1)).stage == "Archived"
    assert registry.get(ModelRef(stage="Production")).version == 2
    again = registry.promote(2, "Production", by="bob")  # already there: nothing to archive
    assert again.previous is None and stages(registry) == {1: "Archived", 2: "Production"}


def test_promoting_the_staging_holder_to_production_clears_staging(
    registry: ModelRegistry, fare_artifact: Path
) -> None:
    save_versions(registry, fare_artifact, 2)
    registry.promote(1, "Production", by="alice")
    registry.promote(2, "Staging", by="alice")
    assert stages(registry) == {1: "Production", 2: "Staging"}

    promotion = registry.promote(2, "Production", by="bob")

    assert (promotion.version, promotion.previous) == (2, 1)
    assert stages(registry) == {1: "Archived", 2: "Production"}
    with pytest.raises(NotFoundError):
        registry.get(ModelRef(stage="Staging"))


def test_archiving_a_version_takes_it_out_of_its_stage_and_it_can_come_back(
    registry: ModelRegistry, fare_artifact: Path
) -> None:
    registry.save(fare_artifact, make_record())
    registry.promote(1, "Production", by="alice")

    archived = registry.promote(1, "Archived", by="bob")

    assert (archived.version, archived.stage, archived.previous) == (1, "Archived", None)
    assert registry.get(ModelRef(version=1)).stage == "Archived"
    with pytest.raises(NotFoundError):
        registry.get(ModelRef(stage="Production"))
    registry.promote(1, "Staging", by="alice")
    assert stages(registry) == {1: "Staging"}
    assert registry.get(ModelRef(stage="Staging")).version == 1


# -- evaluations ----------------------------------------------------------------------------------


def test_evaluations_are_kept_with_their_version_in_order(
    registry: ModelRegistry, fare_artifact: Path
) -> None:
    save_versions(registry, fare_artifact, 2)
    feb: dict[str, Any] = {
        "at": "2015-03-01T00:00:00+00:00",
        "dataset": "val_feb",
        "source": "local",
        "mae": 2.75,
        "rows": 1000,
    }
    mar: dict[str, Any] = {**feb, "at": "2015-04-01T00:00:00+00:00", "dataset": "val_mar", "mae": 2.5}

    registry.record_evaluation(1, feb)
    registry.record_evaluation(1, mar)

    evaluations = registry.get(ModelRef(version=1)).evaluations
    assert [{k: e[k] for k in feb} for e in evaluations] == [feb, mar]  # a backend may add keys (a run id)
    assert registry.list()[0].evaluations == evaluations
    assert registry.get(ModelRef(version=2)).evaluations == []


# -- all or nothing -----------------------------------------------------------------------------


def test_a_failed_save_registers_nothing(
    registry: ModelRegistry, fare_artifact: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-artifact"
    with pytest.raises(FileNotFoundError):
        registry.save(missing, make_record())
    assert registry.list() == []
    with pytest.raises(NotFoundError):
        registry.get(ModelRef(version=1))

    assert registry.save(fare_artifact, make_record()).version == 1  # the failure used up no number
    assert [v.version for v in registry.list()] == [1]
