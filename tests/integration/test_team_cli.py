"""Working as a team, as typed: two HOMEs that share only a bucket (fake-gcs-server) and a registry.

`data upload` keeps versions, `data ls --versions` lists them, `data fetch --source gcs
[--checksum]` pulls them back, `model reproduce` rebuilds a version on the other machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("google.cloud.storage", reason="the gcp extra is not installed")

from tests.integration.emulators import Emulator

from taxifare_cli.cli.main import app
from taxifare_cli.files.ride_csv import sha256_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def taxifare(env: dict[str, str], *args: str) -> tuple[int, Any, str]:
    """Exit code, the --json document (None if stdout is not JSON), stderr."""
    result = CliRunner().invoke(app, ["--json", *args], env=env, prog_name="taxifare")
    if not isinstance(result.exception, SystemExit | None):
        raise result.exception  # a bug: show it
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError:
        doc = None
    return result.exit_code, doc, result.stderr


def machine(home: Path, name: str, bucket: str, gcs_emulator: Emulator) -> dict[str, str]:
    root = home / name
    return {
        "HOME": str(root),
        "TAXIFARE_DATA__LOCAL_PATH": str(root / "data"),
        "TAXIFARE_REGISTRY__LOCAL_PATH": str(home / "shared-registry"),
        "TAXIFARE_STORAGE__BUCKET": bucket,
        "TAXIFARE_STORAGE__GCS_ENDPOINT": gcs_emulator.url,
        "TAXIFARE_STORAGE__RETRIES": "1",
        "TAXIFARE_TRAINING__EPOCHS": "3",
        "TAXIFARE_TRAINING__HIDDEN_LAYERS": "[16]",
    }


def test_data_goes_up_with_its_versions_and_comes_back_on_another_machine(
    home: Path, bucket: str, gcs_emulator: Emulator
) -> None:
    mine = machine(home, "mine", bucket, gcs_emulator)
    code, _, err = taxifare(mine, "data", "fetch", "--size", "1k", "--source", "synthetic")
    assert code == 0, err
    first = sha256_file(home / "mine" / "data" / "train_1k.csv")
    assert taxifare(mine, "data", "upload", "--to", "gcs", "--size", "1k")[0] == 0

    # Other rides under the same name (another seed), uploaded over the first.
    mine_other = {**mine, "TAXIFARE_DATA__SYNTHETIC_SEED": "7"}
    assert taxifare(mine_other, "data", "fetch", "--size", "1k", "--source", "synthetic")[0] == 0
    second = sha256_file(home / "mine" / "data" / "train_1k.csv")
    assert second != first
    assert taxifare(mine, "data", "upload", "--to", "gcs", "--size", "1k")[0] == 0

    theirs = machine(home, "theirs", bucket, gcs_emulator)
    code, listed, err = taxifare(theirs, "data", "ls", "--versions")
    assert code == 0, err
    assert listed["local"] == []
    train_versions = {v["checksum"] for v in listed["gcs"] if v["name"] == "train_1k"}
    assert train_versions == {first, second}

    code, pulled, err = taxifare(theirs, "data", "fetch", "--size", "1k", "--source", "gcs")
    assert code == 0, err
    assert [s["action"] for s in pulled["steps"]] == ["create", "create"]
    assert sha256_file(home / "theirs" / "data" / "train_1k.csv") == second

    code, pulled, err = taxifare(
        theirs, "data", "fetch", "--size", "1k", "--source", "gcs", "--checksum", first
    )
    assert code == 0, err
    assert [(s["name"], s["action"]) for s in pulled["steps"]] == [("train_1k", "replace")]
    assert sha256_file(home / "theirs" / "data" / "train_1k.csv") == first

    code, _, err = taxifare(
        theirs, "data", "fetch", "--size", "1k", "--source", "gcs", "--checksum", "sha256:" + "ab" * 32
    )
    assert code == 4 and "holds no version" in err
    code, _, err = taxifare(
        theirs, "data", "fetch", "--size", "1k", "--source", "gcs", "--checksum", "sha256:zz"
    )
    assert code == 2 and "is not a sha256 checksum" in err
    code, _, err = taxifare(
        theirs, "data", "fetch", "--size", "1k", "--source", "synthetic", "--checksum", first
    )
    assert code == 2 and "--checksum needs --source gcs" in err


def test_model_reproduce_rebuilds_a_version_trained_on_another_machine(
    home: Path, bucket: str, gcs_emulator: Emulator
) -> None:
    mine = machine(home, "mine", bucket, gcs_emulator)
    assert taxifare(mine, "data", "fetch", "--size", "1k", "--source", "synthetic")[0] == 0
    assert taxifare(mine, "data", "upload", "--to", "gcs", "--size", "1k")[0] == 0
    code, trained, err = taxifare(mine, "model", "train", "--size", "1k")
    assert code == 0, err

    theirs = machine(home, "theirs", bucket, gcs_emulator)
    code, plan, err = taxifare(theirs, "model", "reproduce", str(trained["version"]), "--dry-run")
    assert code == 0, err
    assert plan["dry_run"] is True and [d["where"] for d in plan["data"]] == ["gcs", "gcs"]

    code, result, err = taxifare(theirs, "model", "reproduce", str(trained["version"]))
    assert code == 0, err
    assert result["recorded"]["val_mae"] == trained["metrics"]["val_mae"]
    assert result["agrees"] is True and result["difference"] <= result["tolerance"]
    assert result["registered"] is None

    code, _, err = taxifare(theirs, "model", "reproduce", "99")
    assert code == 4, err
