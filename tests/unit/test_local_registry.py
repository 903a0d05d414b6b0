import json
import multiprocessing as mp
from pathlib import Path

import pytest

from taxifare_cli.adapters.registry.local import LocalRegistry
from taxifare_cli.errors import NotFoundError
from taxifare_cli.ports import ModelRef, TrainingRecord


def record(mae: float = 2.0) -> TrainingRecord:
    return TrainingRecord(
        params={"epochs": 3}, metrics={"val_mae": mae}, data={"train": {"dataset": "train_1k"}},
        history={"loss": [3.0, 2.0]}, package_version="0.1.0", git_commit=None,
    )


def fake_artifact(tmp: Path) -> Path:
    d = tmp / "artifact"
    d.mkdir(exist_ok=True)
    (d / "model.keras").write_bytes(b"weights")
    (d / "features.json").write_text("{}")
    return d


def test_versions_are_numbered_and_keep_what_was_recorded(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    art = fake_artifact(tmp_path)
    v1, v2 = reg.save(art, record(2.5)), reg.save(art, record(2.0))
    assert (v1.version, v2.version) == (1, 2)
    got = reg.get(ModelRef(version=2))
    assert got.metrics == {"val_mae": 2.0} and got.stage == "None" and got.params == {"epochs": 3}
    _, path = reg.fetch_artifact(ModelRef(version=1), tmp_path / "dest")
    assert (path / "model.keras").read_bytes() == b"weights"


def test_promotion_archives_the_previous_holder_and_keeps_history(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    art = fake_artifact(tmp_path)
    for _ in range(3):
        reg.save(art, record())
    assert reg.promote(1, "Production", by="ann").previous is None
    p = reg.promote(2, "Production", by="bob")
    assert p.previous == 1
    reg.promote(3, "Staging", by="bob")
    assert {v.version: v.stage for v in reg.list()} == {1: "Archived", 2: "Production", 3: "Staging"}
    reg.promote(3, "Production", by="cy")  # Staging -> Production moves, archives 2
    assert {v.version: v.stage for v in reg.list()} == {1: "Archived", 2: "Archived", 3: "Production"}
    assert reg.get(ModelRef(stage="Production")).version == 3
    assert [(h["version"], h["by"]) for h in reg.promotions()] == [(1, "ann"), (2, "bob"), (3, "bob"), (3, "cy")]


def test_missing_things_are_not_found_errors(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    with pytest.raises(NotFoundError, match="no model is in Production"):
        reg.get(ModelRef(stage="Production"))
    with pytest.raises(NotFoundError, match="version 4 does not exist"):
        reg.get(ModelRef(version=4))
    with pytest.raises(NotFoundError):
        reg.promote(4, "Production", by="x")


def test_evaluations_are_appended(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    reg.save(fake_artifact(tmp_path), record())
    reg.record_evaluation(1, {"dataset": "val_feb", "mae": 2.2})
    reg.record_evaluation(1, {"dataset": "val_mar", "mae": 2.4})
    assert [e["dataset"] for e in reg.get(ModelRef(version=1)).evaluations] == ["val_feb", "val_mar"]


def test_a_failed_save_leaves_no_version(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    with pytest.raises(FileNotFoundError):
        reg.save(tmp_path / "no-such-artifact", record())
    assert reg.list() == []
    assert not list((tmp_path / "reg" / "taxifare" / "versions").iterdir())


def _save_many(root: str, art: str, n: int) -> None:
    reg = LocalRegistry(Path(root))
    for _ in range(n):
        reg.save(Path(art), record())


def test_concurrent_processes_never_share_or_corrupt_a_version(tmp_path: Path) -> None:
    art = fake_artifact(tmp_path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_save_many, args=(str(tmp_path / "reg"), str(art), 5)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    reg = LocalRegistry(tmp_path / "reg")
    assert [v.version for v in reg.list()] == list(range(1, 21))
    for v in range(1, 21):
        json.loads((tmp_path / "reg" / "taxifare" / "versions" / str(v) / "version.json").read_text())
