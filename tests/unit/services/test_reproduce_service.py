"""reproduce_model before any training: what a record must hold, where data is found, the verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import FakeRegistry, FakeStore

from taxifare_cli.core.features import FEATURE_VERSION
from taxifare_cli.errors import DataError, NotFoundError, UsageError
from taxifare_cli.files.ride_csv import sha256_file
from taxifare_cli.ports import ModelRef, TrainingRecord
from taxifare_cli.services.reproduce import DEFAULT_TOLERANCE, ReproduceResult, reproduce_model

PARAMS = {
    "hidden_layers": [8],
    "learning_rate": 0.001,
    "dropout": 0.0,
    "batch_size": 64,
    "epochs": 2,
    "patience": 1,
    "seed": 3,
    "chunk_size": 1000,
    "train_dataset": "train_1k",
    "val_dataset": "val_1k",
}


def csv(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("key,fare_amount\n" + text)
    return path


def register(
    registry: FakeRegistry,
    tmp_path: Path,
    *,
    sums: dict[str, str],
    params: dict[str, Any] | None = None,
    parent: int | None = None,
    feature_version: object = FEATURE_VERSION,
) -> int:
    artifact = tmp_path / "artifact"
    artifact.mkdir(exist_ok=True)
    (artifact / "features.json").write_text(json.dumps({"feature_version": feature_version}))
    record = TrainingRecord(
        params=PARAMS if params is None else params,
        metrics={"val_mae": 2.0, "epochs_run": 2.0, "best_epoch": 2.0},
        data={
            split: {"dataset": f"{split}_1k", "source": "local", "checksum": sums[split]}
            for split in ("train", "val")
        },
        history={},
        package_version="0.1.0",
        git_commit=None,
        parent_version=parent,
    )
    return registry.save(artifact, record).version


@pytest.fixture
def local(tmp_path: Path) -> FakeStore:
    return FakeStore(tmp_path / "data")


@pytest.fixture
def registry(tmp_path: Path) -> FakeRegistry:
    return FakeRegistry(tmp_path / "registry")


def held_sums(local: FakeStore) -> dict[str, str]:
    return {
        "train": sha256_file(csv(local.path("train_1k"), "a,1\n")),
        "val": sha256_file(csv(local.path("val_1k"), "b,2\n")),
    }


def test_a_dry_run_finds_the_local_files_by_their_bytes_and_trains_nothing(
    local: FakeStore, registry: FakeRegistry, tmp_path: Path
) -> None:
    version = register(registry, tmp_path, sums=held_sums(local))

    plan = reproduce_model(version, registry=registry, local=local, dry_run=True)

    assert [(d.split, d.where, d.location) for d in plan.data] == [
        ("train", "local", str(local.path("train_1k"))),
        ("val", "local", str(local.path("val_1k"))),
    ]
    assert plan.feature_version == FEATURE_VERSION and plan.params == PARAMS
    assert plan.reproduced == {} and plan.agrees is None and plan.difference is None
    assert [v.version for v in registry.list()] == [version]


def test_data_held_nowhere_is_exit_4_naming_its_checksum(
    local: FakeStore, registry: FakeRegistry, tmp_path: Path
) -> None:
    sums = held_sums(local)
    version = register(registry, tmp_path, sums=sums)
    csv(local.path("train_1k"), "other,9\n")  # replaced behind the manifest's back

    with pytest.raises(NotFoundError, match=sums["train"]) as caught:
        reproduce_model(version, registry=registry, local=local, dry_run=True)
    assert caught.value.exit_code == 4
    assert "train data of version 1 (train_1k" in caught.value.message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"parent": 1}, "fine-tuned from version 1"),
        ({"params": {k: v for k, v in PARAMS.items() if k != "seed"}}, "does not record its seed"),
        ({"params": {**PARAMS, "batch_size": "many"}}, "unreadable parameters"),
        ({"params": {**PARAMS, "schedule": "warm restarts"}}, "unreadable parameters"),
        ({"feature_version": -1}, "trained on features v-1"),
    ],
)
def test_a_record_that_cannot_be_rebuilt_says_why(
    change: dict[str, Any], message: str, local: FakeStore, registry: FakeRegistry, tmp_path: Path
) -> None:
    sums = held_sums(local)
    register(registry, tmp_path, sums=sums)  # version 1: the parent of a fine-tuned one
    version = register(registry, tmp_path, sums=sums, **change)

    with pytest.raises(DataError, match=message):
        reproduce_model(version, registry=registry, local=local, dry_run=True)


def test_a_record_without_checksums_cannot_be_reproduced_exactly(
    local: FakeStore, registry: FakeRegistry, tmp_path: Path
) -> None:
    version = register(registry, tmp_path, sums={"train": "", "val": ""})
    with pytest.raises(DataError, match="records no checksum of its train data"):
        reproduce_model(version, registry=registry, local=local, dry_run=True)
    with pytest.raises(UsageError, match="cannot be negative"):
        reproduce_model(version, registry=registry, local=local, tolerance=-1.0)


def test_the_verdict_is_the_difference_against_the_tolerance() -> None:
    def result(new: float, tolerance: float = DEFAULT_TOLERANCE) -> ReproduceResult:
        return ReproduceResult(1, {"val_mae": 2.0}, {"val_mae": new}, tolerance, [], {}, FEATURE_VERSION)

    assert result(2.0).agrees is True and result(2.0).difference == 0.0
    assert result(2.0 + DEFAULT_TOLERANCE / 2).agrees is True
    assert result(2.0 - 2 * DEFAULT_TOLERANCE).agrees is False
    assert result(2.0004, tolerance=0.0).agrees is False
    assert result(2.1).as_dict()["agrees"] is False


def test_a_version_recorded_before_the_cosine_schedule_is_rebuilt_with_the_plateau_one(
    local: FakeStore, registry: FakeRegistry, tmp_path: Path
) -> None:
    from taxifare_cli.services.reproduce import _recorded_params

    sums = held_sums(local)
    old = registry.get(ModelRef(version=register(registry, tmp_path, sums=sums)))  # PARAMS: no schedule
    new = registry.get(
        ModelRef(version=register(registry, tmp_path, sums=sums, params={**PARAMS, "schedule": "cosine"}))
    )

    assert _recorded_params(old)[0].schedule == "plateau"
    assert _recorded_params(new)[0].schedule == "cosine"
    assert _recorded_params(old)[0].learning_rate == PARAMS["learning_rate"]
