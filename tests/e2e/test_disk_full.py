"""A disk that is really full: a tiny tmpfs mounted in a private mount namespace (`unshare -rm`).

No root needed where user namespaces are allowed; skipped where they are not. Each run
must exit 7 with one `error:` line (and a hint), leave no temporary file on the full
disk, and leave what was there before as it was.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.e2e.conftest import Run


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /tmp && true"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_mount_tmpfs(), reason="cannot mount a tmpfs in a user namespace here"
)


LEFT = "--- left on the disk:"


def on_full_disk(
    mount: Path, size: str, home: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[Run, list[str]]:
    """`taxifare *args` where `mount` is a fresh tmpfs of `size` holding an old fares.csv; what is left on it."""
    mount.mkdir(parents=True, exist_ok=True)
    where = shlex.quote(str(mount))
    command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "taxifare_cli", *args])
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {where} && printf 'key,fare\\nold,1\\n' > {where}/fares.csv && "
        f"{{ {command}; rc=$?; echo '{LEFT}' >&2; ls -A {where} >&2; cat {where}/fares.csv >&2; exit $rc; }}"
    )
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=home,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    err, _, left = proc.stderr.partition(LEFT)
    proc.stderr = err
    return Run(proc), left.split()


def assert_disk_full(r: Run, needle: str) -> None:
    assert r.code == 7, r
    assert "Traceback" not in r.err, r
    lines = [line for line in r.err.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == 1 and all(line.startswith("  hint:") for line in lines[errors[0] + 1 :]), r
    assert needle in " ".join(r.err.split()), r


def test_a_fetch_onto_a_full_disk_exits_7_and_leaves_no_part_file(home: Path) -> None:
    data = home / "full"
    env = {"TAXIFARE_DATA__LOCAL_PATH": str(data)}
    r, left = on_full_disk(
        data, "64k", home, "data", "fetch", "--size", "1k", "--source", "synthetic", env=env
    )
    assert_disk_full(r, "no space left on the disk of")
    assert f"{data}: train_1k.csv was not written" in " ".join(r.err.split()), r
    assert left == ["fares.csv", "key,fare", "old,1"], f"left behind: {left}"


def test_training_with_the_registry_on_a_full_disk_is_refused_before_it_trains(home: Path) -> None:
    from typer.testing import CliRunner

    from taxifare_cli.cli.main import app

    fetched = CliRunner().invoke(app, ["data", "fetch", "--size", "1k", "--source", "synthetic"])
    assert fetched.exit_code == 0, fetched.output
    registry = home / "full-registry"
    r, left = on_full_disk(
        registry, "256k", home, "model", "train", "--size", "1k",
        env={"TAXIFARE_REGISTRY__LOCAL_PATH": str(registry), "TAXIFARE_TRAINING__EPOCHS": "1"},
    )  # fmt: skip
    assert_disk_full(r, "not enough space for a new model version")
    assert "epoch" not in r.err.lower(), r  # refused before the first epoch
    assert left == ["fares.csv", "key,fare", "old,1"], f"left behind: {left}"


def test_predicting_into_a_full_disk_keeps_the_previous_output(home: Path) -> None:
    from typer.testing import CliRunner

    from taxifare_cli.cli.main import app

    runner, env = CliRunner(), {"TAXIFARE_TRAINING__EPOCHS": "1", "TAXIFARE_TRAINING__HIDDEN_LAYERS": "[8]"}
    for args in (
        ["data", "fetch", "--size", "1k", "--source", "synthetic"],
        ["model", "train", "--size", "1k"],
    ):
        done = runner.invoke(app, args, env=env)
        assert done.exit_code == 0, done.output
    out = home / "out"
    r, left = on_full_disk(
        out, "16k", home, "model", "predict", "--version", "1",
        "--input", str(home / "data" / "val_1k.csv"), "--output", str(out / "fares.csv"),
    )  # fmt: skip
    assert_disk_full(r, f"no space left on the disk of {out}: fares.csv was not written")
    assert left == ["fares.csv", "key,fare", "old,1"], f"the old output was lost, or something left: {left}"
