"""`model reproduce` through the application object: data from the bucket's versions, the local and MLflow registries.

Real fake-gcs-server and MLflow server (conftest.py); real, small, training runs.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("google.cloud.storage", reason="the gcp extra is not installed")

from tests.integration.emulators import BQ_PROJECT
from tests.integration.mlflow_server import MlflowServer

from taxifare_cli.adapters.registry.local import LocalRegistry
from taxifare_cli.adapters.storage.bigquery import BigQueryStore
from taxifare_cli.adapters.storage.gcs import GcsStore
from taxifare_cli.adapters.storage.local import LocalStore
from taxifare_cli.app import Taxifare
from taxifare_cli.errors import NotFoundError
from taxifare_cli.files.ride_csv import sha256_file
from taxifare_cli.ports import DataStore, ModelRef, ModelRegistry
from taxifare_cli.services.reproduce import DEFAULT_TOLERANCE
from taxifare_cli.settings import load_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(autouse=True, scope="module")
def _restore_process_state() -> Iterator[None]:
    """The MLflow registry sets MLflow's environment defaults; keep them to this module."""
    environ, path = dict(os.environ), list(sys.path)
    yield
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path


@dataclass
class Team:
    """Machines that share a bucket (and a registry): each one its own data directory."""

    tmp: Path
    bucket: str
    make_gcs: Callable[..., GcsStore]
    rides_csv: Callable[..., Path]

    def machine(
        self, name: str, registry: ModelRegistry, *, more: dict[str, Any] | None = None, **stores: DataStore
    ) -> Taxifare:
        data = self.tmp / name / "data"
        flags = {
            **(more or {}),
            "data.local_path": str(data),
            "registry.local_path": str(self.tmp / "registry"),
            "storage.bucket": self.bucket,
            "training.epochs": 4,
            "training.patience": 2,
            "training.hidden_layers": [16, 8],
            "data.chunk_size": 1000,
        }
        settings = load_settings(config=None, flags=flags, environ={}).settings
        held: dict[Any, DataStore] = {"local": LocalStore(data), "gcs": self.make_gcs(), **stores}
        return Taxifare(settings, stores=held, registry=registry)

    def first_model(self, app: Taxifare) -> tuple[int, dict[str, str]]:
        """Data fetched and uploaded on `app`'s machine, a version trained there; its checksums."""
        app.local.put("train_1k", self.rides_csv("train_1k", 1_500, seed=1), source="synthetic")
        app.local.put("val_1k", self.rides_csv("val_1k", 400, seed=2), source="synthetic")
        app.upload(("gcs",), size="1k")
        trained = app.train(size="1k")
        sums = {split: trained.version.data[split]["checksum"] for split in ("train", "val")}
        return trained.version.version, sums

    def replace_train_data(self, app: Taxifare) -> None:
        """Other rides under the same name, here and in the bucket: only the content address keeps the old."""
        app.local.delete("train_1k")
        app.local.put("train_1k", self.rides_csv("train_1k", 1_500, seed=99), source="synthetic")
        app.upload(("gcs",), size="1k")


@pytest.fixture
def team(
    tmp_path: Path, bucket: str, make_gcs_store: Callable[..., GcsStore], rides_csv: Callable[..., Path]
) -> Team:
    return Team(tmp_path, bucket, make_gcs_store, rides_csv)


def test_a_version_is_rebuilt_on_a_fresh_machine_from_the_bucket_after_its_data_was_replaced(
    team: Team, gcs_client: Any, bucket: str
) -> None:
    registry = LocalRegistry(team.tmp / "registry")
    mine = team.machine("mine", registry)
    version, sums = team.first_model(mine)
    recorded = registry.get(ModelRef(version=version))
    team.replace_train_data(mine)
    assert sha256_file(mine.local.path("train_1k")) != sums["train"]

    theirs = team.machine("theirs", registry)  # a second HOME: shares only the bucket and the registry
    plan = theirs.reproduce(version, dry_run=True)
    assert plan.reproduced == {} and plan.agrees is None
    by_split = {d.split: d for d in plan.data}
    assert by_split["train"].where == "gcs version" and by_split["train"].checksum == sums["train"]
    assert by_split["train"].location.startswith(f"gs://{bucket}/taxi-fare-ny/versions/sha256/")
    assert by_split["val"].where == "gcs"  # the name still holds the recorded val_1k
    assert theirs.local.list() == []  # a dry run fetches nothing

    result = theirs.reproduce(version)

    assert result.recorded["val_mae"] == recorded.metrics["val_mae"]
    assert result.agrees is True and result.difference is not None
    assert result.difference <= DEFAULT_TOLERANCE
    assert result.reproduced["epochs_run"] == recorded.metrics["epochs_run"]
    assert result.registered is None and [v.version for v in registry.list()] == [version]
    assert theirs.local.list() == []  # the exact data was read from a scratch copy, not put in place
    assert result.as_dict()["params"]["seed"] == recorded.params["seed"]

    # The machine whose local file was replaced reproduces too, and may register the rebuilt model.
    again = mine.reproduce(version, register=True)
    assert again.agrees is True and again.registered == version + 1
    rebuilt = registry.get(ModelRef(version=version + 1))
    assert rebuilt.params == recorded.params
    assert rebuilt.data["train"]["checksum"] == sums["train"]

    # Gone from the bucket and from disk: exit 4, naming the checksum.
    gcs = team.make_gcs()
    gcs_client.bucket(bucket).blob(gcs.version_path(sums["train"])).delete()
    with pytest.raises(NotFoundError, match=sums["train"]) as caught:
        theirs.reproduce(version, dry_run=True)
    assert caught.value.exit_code == 4


def test_a_version_registered_in_mlflow_is_rebuilt_from_its_params_and_data_tags(
    team: Team, mlflow_server: MlflowServer
) -> None:
    from taxifare_cli.adapters.registry.mlflow import MlflowRegistry

    def registry() -> MlflowRegistry:  # each machine its own client of the shared server
        return MlflowRegistry(mlflow_server.uri, experiment="taxifare-tests", model_name=f"taxifare-{name}")

    name = uuid.uuid4().hex[:8]
    mine = team.machine("mine", registry())
    version, sums = team.first_model(mine)
    team.replace_train_data(mine)

    theirs = team.machine("theirs", registry())
    result = theirs.reproduce(version)

    assert [d.checksum for d in result.data] == [sums["train"], sums["val"]]
    assert result.data[0].where == "gcs version"
    assert result.agrees is True
    assert result.recorded["val_mae"] == pytest.approx(result.reproduced["val_mae"], abs=DEFAULT_TOLERANCE)
    assert [v.version for v in registry().list()] == [version]


def test_a_version_trained_from_bigquery_records_the_table_and_is_rebuilt_from_it(
    team: Team, make_bq_store: Callable[..., BigQueryStore], dataset: str, bq_client: Any
) -> None:
    registry = LocalRegistry(team.tmp / "registry")
    bq = make_bq_store()
    more = {"storage.backend": "bigquery", "gcp.project": BQ_PROJECT, "storage.bq_dataset": dataset}
    mine = team.machine("mine", registry, more=more, bigquery=bq)
    mine.local.put("train_1k", team.rides_csv("train_1k", 1_500, seed=1), source="synthetic")
    mine.local.put("val_1k", team.rides_csv("val_1k", 400, seed=2), source="synthetic")
    mine.upload(("bigquery",), size="1k")
    trained = mine.train(size="1k")
    seen = trained.version.data["train"]
    assert seen["source"] == "bigquery" and seen["location"] == bq.table_id("train_1k")
    assert seen["checksum"] == sha256_file(mine.local.path("train_1k"))  # the rows are those of the file

    theirs = team.machine("theirs", registry, more=more, bigquery=make_bq_store())
    result = theirs.reproduce(trained.version.version)
    assert [d.where for d in result.data] == ["bigquery", "bigquery"]
    assert result.agrees is True

    # The table changed by hand: it no longer claims the file's checksum; the file is found instead,
    # with a warning that its row order is not BigQuery's.
    bq_client.query(
        f"UPDATE `{bq.table_id('train_1k')}` SET fare_amount = fare_amount * 2 WHERE TRUE"
    ).result()
    plan = mine.reproduce(trained.version.version, dry_run=True)
    assert plan.data[0].where == "local" and "BigQuery's" in plan.data[0].note
    with pytest.raises(NotFoundError, match=seen["checksum"]):
        theirs.reproduce(trained.version.version, dry_run=True)
