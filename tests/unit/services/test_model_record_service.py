"""Model records outside the registry: published once, never failing a training, read back to reproduce."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.fakes import FakeRegistry, FakeStore
from tests.unit.services.test_reproduce_service import PARAMS, held_sums

from taxifare_cli.core.features import FEATURE_VERSION
from taxifare_cli.errors import DataError, NotFoundError, ServiceError
from taxifare_cli.ports import ModelRecords, ModelVersion
from taxifare_cli.services.model_record import publish_version, read_published
from taxifare_cli.services.reproduce import reproduce_model


class MemoryRecords(ModelRecords):
    """Records in a dict, created once as the bucket does; `fail` makes every call raise it."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.held: dict[tuple[str, int], bytes] = {}
        self.writes = 0
        self.fail = fail

    def record_location(self, model: str, version: int) -> str:
        return f"mem://{model}/{version}.json"

    def create_record(self, model: str, version: int, data: bytes) -> bool:
        if self.fail is not None:
            raise self.fail
        if (model, version) in self.held:
            return False
        self.writes += 1
        self.held[(model, version)] = data
        return True

    def read_record(self, model: str, version: int) -> bytes | None:
        if self.fail is not None:
            raise self.fail
        return self.held.get((model, version))


def version(n: int = 1, *, val_mae: float = 2.0, sums: dict[str, str] | None = None) -> ModelVersion:
    sums = sums or {"train": "sha256:" + "a" * 64, "val": "sha256:" + "b" * 64}
    return ModelVersion(
        version=n,
        stage="Production",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        params=dict(PARAMS),
        metrics={"val_mae": val_mae, "epochs_run": 2.0, "best_epoch": 2.0},
        data={s: {"dataset": f"{s}_1k", "source": "local", "checksum": sums[s]} for s in ("train", "val")},
        evaluations=[{"mae": 1.0}],
        package_version="0.1.0",
        git_commit="abc",
        run_id="run-1",
        plots={"learning_curve": "/home/someone/plot.png"},
    )


def test_a_record_is_written_once_and_holds_what_reproduce_needs_only() -> None:
    records = MemoryRecords()

    first = publish_version(records, "taxifare", version())
    again = publish_version(records, "taxifare", version())

    assert (first.action, again.action) == ("written", "unchanged")
    assert records.writes == 1 and not first.warning and not again.warning
    doc = json.loads(records.held[("taxifare", 1)])
    assert doc["params"]["seed"] == PARAMS["seed"] and doc["feature_version"] == FEATURE_VERSION
    assert doc["data"]["train"]["checksum"] == "sha256:" + "a" * 64
    # The stage changes, evaluations come later, runs and plots point into one registry.
    assert not {"stage", "evaluations", "run_id", "plots"} & doc.keys()


def test_another_record_under_the_same_number_is_kept_and_warned_about_in_one_line() -> None:
    records = MemoryRecords()
    publish_version(records, "taxifare", version(val_mae=2.0))
    before = records.held[("taxifare", 1)]

    clash = publish_version(records, "taxifare", version(val_mae=3.0))

    assert clash.action == "kept" and records.held[("taxifare", 1)] == before
    assert "another registry published that number" in clash.warning
    assert "\n" not in clash.warning


@pytest.mark.parametrize(
    "failure", [ServiceError("Cloud Storage could not be reached", hint="check"), RuntimeError("boom")]
)
def test_a_publication_that_fails_is_one_warning_never_an_error(failure: Exception) -> None:
    result = publish_version(MemoryRecords(fail=failure), "taxifare", version())

    assert result.action == "failed" and "\n" not in result.warning
    assert "version 1 is registered but not published to mem://taxifare/1.json" in result.warning


def test_a_published_record_reads_back_as_the_version() -> None:
    records = MemoryRecords()
    publish_version(records, "taxifare", version(3))

    found = read_published(records, "taxifare", 3)

    assert found is not None and found.location == "mem://taxifare/3.json"
    assert found.feature_version == FEATURE_VERSION
    mv = found.version
    assert (mv.version, mv.params, mv.metrics, mv.data) == (3, PARAMS, version(3).metrics, version(3).data)
    assert read_published(records, "taxifare", 4) is None
    assert read_published(records, "other", 3) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not a readable model record"),
        (json.dumps({"format": "something/9"}).encode(), "format 'something/9'"),
    ],
)
def test_a_damaged_record_is_exit_4(raw: bytes, message: str) -> None:
    records = MemoryRecords()
    records.held[("taxifare", 1)] = raw
    with pytest.raises(DataError, match=message) as caught:
        read_published(records, "taxifare", 1)
    assert caught.value.exit_code == 4


def test_reproduce_takes_a_version_this_registry_lacks_from_its_published_record(
    tmp_path: Path,
) -> None:
    local = FakeStore(tmp_path / "data")
    records = MemoryRecords()
    publish_version(records, "taxifare", version(1, sums=held_sums(local)))
    empty = FakeRegistry(tmp_path / "registry")

    plan = reproduce_model(1, registry=empty, local=local, records=records, dry_run=True)

    assert plan.record_from == "mem://taxifare/1.json" and plan.feature_version == FEATURE_VERSION
    assert [d.where for d in plan.data] == ["local", "local"]
    assert plan.recorded["val_mae"] == 2.0 and plan.params == PARAMS
    with pytest.raises(NotFoundError, match=r"mem://taxifare/2\.json does not exist"):
        reproduce_model(2, registry=empty, local=local, records=records, dry_run=True)
    with pytest.raises(NotFoundError, match=r"model version 1 does not exist$"):
        reproduce_model(1, registry=empty, local=local, dry_run=True)  # no bucket: as before


def test_a_published_record_of_other_features_is_refused(tmp_path: Path) -> None:
    local = FakeStore(tmp_path / "data")
    records = MemoryRecords()
    publish_version(records, "taxifare", version(sums=held_sums(local)), feature_version=-1)

    with pytest.raises(DataError, match="trained on features v-1"):
        reproduce_model(1, registry=FakeRegistry(tmp_path / "r"), local=local, records=records, dry_run=True)
