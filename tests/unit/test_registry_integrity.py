"""A damaged or tampered local registry: each fault named, the rest of the registry still usable."""

import json
from pathlib import Path

import pytest

from taxifare_cli.adapters.registry.integrity import check_shape, digest_files
from taxifare_cli.adapters.registry.local import BrokenVersion, LocalRegistry, replay_promotions
from taxifare_cli.errors import DataError, DiskFullError, NotFoundError
from taxifare_cli.ports import ModelRef, TrainingRecord


def record() -> TrainingRecord:
    return TrainingRecord(
        params={"epochs": 1}, metrics={"val_mae": 2.0}, data={}, history={"loss": [1.0]},
        package_version="0.1.0", git_commit=None,
    )  # fmt: skip


def artifact(tmp: Path) -> Path:
    d = tmp / "artifact"
    (d / "sub").mkdir(parents=True, exist_ok=True)
    (d / "model.keras").write_bytes(b"weights")
    (d / "features.json").write_text('{"feature_names": ["a", "b"]}')
    (d / "sub" / "extra.bin").write_bytes(b"\x00\x01")
    return d


@pytest.fixture
def reg(tmp_path: Path) -> LocalRegistry:
    registry = LocalRegistry(tmp_path / "reg")
    registry.save(artifact(tmp_path), record())
    return registry


def version_file(reg: LocalRegistry, name: str, version: int = 1) -> Path:
    return reg.versions_dir / str(version) / name


def test_save_records_the_sha256_of_every_artifact_file(reg: LocalRegistry, tmp_path: Path) -> None:
    stored = json.loads(version_file(reg, "version.json").read_text())
    assert stored["checksums"] == digest_files(artifact(tmp_path))
    assert set(stored["checksums"]) == {"model.keras", "features.json", "sub/extra.bin"}
    mv, path = reg.fetch_artifact(ModelRef(version=1), tmp_path / "dest")
    assert mv.version == 1 and (path / "model.keras").read_bytes() == b"weights"


@pytest.mark.parametrize(
    ("tamper", "needle"),
    [
        (
            lambda a: (a / "features.json").write_text('{"feature_names": ["a", "c"]}'),
            "features.json does not match",
        ),
        (lambda a: (a / "model.keras").write_bytes(b"weight"), "model.keras does not match"),
        (lambda a: (a / "sub" / "extra.bin").unlink(), "sub/extra.bin is missing"),
        (lambda a: (a / "new.py").write_text("x"), "new.py was added after the version was saved"),
    ],
    ids=["renamed-feature", "truncated", "missing", "added"],
)
def test_a_changed_artifact_is_refused_naming_the_file(
    reg: LocalRegistry, tmp_path: Path, tamper, needle: str
) -> None:  # type: ignore[no-untyped-def]
    tamper(version_file(reg, "artifact"))
    with pytest.raises(DataError, match=needle) as caught:
        reg.fetch_artifact(ModelRef(version=1), tmp_path / "dest")
    assert caught.value.exit_code == 4
    assert reg.get(ModelRef(version=1)).version == 1  # its record is still readable


def test_a_version_saved_before_checksums_still_loads_and_is_shape_checked(
    reg: LocalRegistry, tmp_path: Path
) -> None:
    path = version_file(reg, "version.json")
    payload = json.loads(path.read_text())
    del payload["checksums"]
    path.write_text(json.dumps(payload))
    version_file(reg, "artifact").joinpath(
        "model.keras"
    ).unlink()  # not a zip: an old fake would fail the check
    reg.fetch_artifact(ModelRef(version=1), tmp_path / "dest")
    version_file(reg, "artifact").joinpath("features.json").write_text("{garbage")
    with pytest.raises(DataError, match=r"features.json is not valid JSON"):
        reg.fetch_artifact(ModelRef(version=1), tmp_path / "dest")


def test_the_shape_check_finds_a_truncated_zip(tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp_path / "weights.npz", "w") as z:
        z.writestr("w.npy", b"x" * 10_000)
    check_shape(tmp_path, what="v")
    data = (tmp_path / "weights.npz").read_bytes()
    (tmp_path / "weights.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"weights\.npz is truncated"):
        check_shape(tmp_path, what="v")


def test_one_unreadable_version_is_listed_flagged_and_the_others_load(
    reg: LocalRegistry, tmp_path: Path
) -> None:
    reg.save(artifact(tmp_path), record())
    (reg.versions_dir / "3").mkdir()  # an empty version folder
    version_file(reg, "version.json").write_text("{")
    listed = reg.list()
    assert [v.version for v in listed] == [1, 2, 3]
    assert (
        isinstance(listed[0], BrokenVersion) and "versions/1/version.json is unreadable" in listed[0].problem
    )
    assert isinstance(listed[2], BrokenVersion) and "is incomplete" in listed[2].as_dict()["problem"]
    assert not isinstance(listed[1], BrokenVersion)
    reg.fetch_artifact(ModelRef(version=2), tmp_path / "dest")
    with pytest.raises(DataError, match=r"version\.json is unreadable"):
        reg.promote(1, "Production", by="t")
    with pytest.raises(NotFoundError):
        reg.get(ModelRef(version=4))
    assert reg.save(artifact(tmp_path), record()).version == 4  # numbering goes on past the damaged ones


@pytest.mark.parametrize("content", ["xx", "[]", '{"Production": "1"}', '{"archived": [null]}', "\udcff"])
def test_a_damaged_stages_file_says_what_to_do(reg: LocalRegistry, content: str) -> None:
    reg.promote(1, "Production", by="t")
    stages = reg.dir / "stages.json"
    stages.write_bytes(content.encode("utf-8", "surrogateescape"))
    for call in (
        reg.list,
        lambda: reg.promote(1, "Staging", by="t"),
        lambda: reg.get(ModelRef(stage="Production")),
    ):
        with pytest.raises(DataError, match=r"stages\.json") as caught:
            call()
        assert "move it aside" in str(caught.value.hint)
        assert "promotions.jsonl ends with Production version 1" in str(caught.value.hint)
    assert stages.read_bytes() == content.encode("utf-8", "surrogateescape")  # left for the user to look at


def test_a_cut_line_in_the_promotion_log_hides_no_other(reg: LocalRegistry) -> None:
    reg.promote(1, "Staging", by="t")
    with (reg.dir / "promotions.jsonl").open("a") as f:
        f.write('{"version": 1, "sta')  # a kill mid-append
    reg.promote(1, "Production", by="t")
    assert [p["stage"] for p in reg.promotions()] == ["Staging", "Production"]


def test_replaying_promotions_gives_each_stage_its_holder() -> None:
    log = [
        {"version": 1, "stage": "Production"},
        {"version": 2, "stage": "Staging"},
        {"version": 2, "stage": "Production"},
        {"version": 3, "stage": "Staging"},
        {"version": 3, "stage": "Archived"},
    ]
    assert replay_promotions(log) == {"Production": 2, "Staging": None}


def test_a_disk_too_full_for_a_version_is_found_before_anything_is_written(reg: LocalRegistry) -> None:
    before = sorted(p.name for p in reg.versions_dir.iterdir())
    with pytest.raises(DiskFullError, match="not enough space for a new model version") as caught:
        reg.check_space(10**18)  # more than any disk this runs on
    assert caught.value.exit_code == 7
    assert sorted(p.name for p in reg.versions_dir.iterdir()) == before
