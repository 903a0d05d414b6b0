"""What is LocalRegistry's own: its files, its history file, locking between processes.

The port's promises are checked for every registry in tests/integration/test_registry_contract.py.
"""

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from taxifare_cli.adapters.registry.local import LocalRegistry
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


def test_a_version_is_a_directory_with_its_artifact_and_record(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    reg.save(fake_artifact(tmp_path), record(2.5))
    version_dir = tmp_path / "reg" / "taxifare" / "versions" / "1"
    assert (version_dir / "artifact" / "model.keras").read_bytes() == b"weights"
    stored = json.loads((version_dir / "version.json").read_text())
    assert stored["metrics"] == {"val_mae": 2.5} and stored["history"] == {"loss": [3.0, 2.0]}
    _, path = reg.fetch_artifact(ModelRef(version=1), tmp_path / "dest")
    assert path == version_dir / "artifact"  # read in place: artifacts are never rewritten
    assert not (tmp_path / "dest").exists()


def test_promotions_are_appended_to_a_history_file(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    art = fake_artifact(tmp_path)
    for _ in range(3):
        reg.save(art, record())
    reg.promote(1, "Production", by="ann")
    reg.promote(2, "Production", by="bob")
    reg.promote(3, "Staging", by="bob")
    reg.promote(3, "Production", by="cy")
    assert [(h["version"], h["previous"], h["by"]) for h in reg.promotions()] == [
        (1, None, "ann"), (2, 1, "bob"), (3, None, "bob"), (3, 2, "cy"),
    ]
    lines = (tmp_path / "reg" / "taxifare" / "promotions.jsonl").read_text().splitlines()
    assert [json.loads(line)["stage"] for line in lines] == ["Production", "Production", "Staging", "Production"]
    assert json.loads((tmp_path / "reg" / "taxifare" / "stages.json").read_text()) == {
        "Staging": None, "Production": 3, "archived": [1, 2],
    }


def test_a_failed_save_leaves_no_temporary_directory(tmp_path: Path) -> None:
    reg = LocalRegistry(tmp_path / "reg")
    with pytest.raises(FileNotFoundError):
        reg.save(tmp_path / "no-such-artifact", record())
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
