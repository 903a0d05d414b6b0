"""Working as a team, as typed: two HOMEs that share a bucket (fake-gcs-server), and a registry or not.

`data upload` keeps versions, `data ls --versions` lists them, `data fetch --source gcs
[--checksum]` pulls them back, `model reproduce` rebuilds a version on the other machine;
`model train` publishes each version's record to the bucket, so a machine with its own
registry can reproduce it too.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("google.cloud.storage", reason="the gcp extra is not installed")

from tests.integration.emulators import Emulator

from taxifare_cli.cli.main import app
from taxifare_cli.files.ride_csv import sha256_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def taxifare(env: Mapping[str, str | None], *args: str) -> tuple[int, Any, str]:
    """Exit code, the --json document (None if stdout is not JSON), stderr. A None in `env` unsets."""
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


def fresh_home(home: Path, name: str, bucket: str, endpoint: str) -> dict[str, str | None]:
    """A machine of its own: everything under its HOME (its own local registry); only the bucket shared."""
    return {
        "HOME": str(home / name),
        "TAXIFARE_DATA__LOCAL_PATH": None,  # the suite's defaults point at one shared tmp dir: unset
        "TAXIFARE_REGISTRY__LOCAL_PATH": None,
        "TAXIFARE_STORAGE__BUCKET": bucket,
        "TAXIFARE_STORAGE__GCS_ENDPOINT": endpoint,
    }


def trains_fast(env: dict[str, str | None]) -> dict[str, str | None]:
    return {**env, "TAXIFARE_TRAINING__EPOCHS": "3", "TAXIFARE_TRAINING__HIDDEN_LAYERS": "[16]"}


def test_a_version_is_reproduced_on_a_machine_that_shares_only_the_bucket(
    home: Path, bucket: str, gcs_emulator: Emulator, gcs_client: Any
) -> None:
    mine = trains_fast(fresh_home(home, "a", bucket, gcs_emulator.url))
    assert taxifare(mine, "data", "fetch", "--size", "1k", "--source", "synthetic")[0] == 0
    assert taxifare(mine, "data", "upload", "--to", "gcs", "--size", "1k")[0] == 0
    code, trained, err = taxifare(mine, "model", "train", "--size", "1k")
    assert code == 0, err
    assert (home / "a" / ".taxifare").is_dir()  # machine A's own registry and data
    record = f"taxi-fare-ny/models/taxifare/{trained['version']}.json"
    assert trained["published"] == {
        "location": f"gs://{bucket}/{record}",
        "action": "written",
        "warning": None,
    }
    assert "warning" not in err
    published = json.loads(gcs_client.bucket(bucket).blob(record).download_as_bytes())
    assert published["metrics"]["val_mae"] == trained["metrics"]["val_mae"]

    theirs = fresh_home(home, "b", bucket, gcs_emulator.url)
    code, _, err = taxifare(theirs, "model", "show", str(trained["version"]))
    assert code == 4, err  # B's registry has no such version: only the bucket is shared

    code, result, err = taxifare(theirs, "model", "reproduce", str(trained["version"]))
    assert code == 0, err
    assert (
        f"version {trained['version']} is not in this registry: using its record from gs://{bucket}/{record}"
        in err
    )
    assert result["record_from"] == f"gs://{bucket}/{record}"
    assert result["recorded"]["val_mae"] == trained["metrics"]["val_mae"]
    assert result["difference"] == 0.0  # one machine: bit-identical
    assert [d["where"] for d in result["data"]] == ["gcs", "gcs"]

    code, _, err = taxifare(theirs, "model", "reproduce", "99")
    assert code == 4 and "models/taxifare/99.json does not exist" in err


def test_a_second_registry_publishing_the_same_number_is_warned_and_the_first_record_kept(
    home: Path, bucket: str, gcs_emulator: Emulator, gcs_client: Any
) -> None:
    first_record = None
    for name, seed in (("a", "1"), ("c", "5")):  # two registries, both start at version 1
        env = {
            **trains_fast(fresh_home(home, name, bucket, gcs_emulator.url)),
            "TAXIFARE_TRAINING__SEED": seed,
        }
        assert taxifare(env, "data", "fetch", "--size", "1k", "--source", "synthetic")[0] == 0
        code, trained, err = taxifare(env, "model", "train", "--size", "1k")
        assert code == 0, err
        assert trained["version"] == 1
        blob = gcs_client.bucket(bucket).get_blob("taxi-fare-ny/models/taxifare/1.json")
        if first_record is None:
            first_record = (blob.generation, blob.download_as_bytes())
            assert trained["published"]["action"] == "written"
            continue
        assert trained["published"]["action"] == "kept"
        assert (blob.generation, blob.download_as_bytes()) == first_record
        warnings = [line for line in err.splitlines() if "warning" in line]
        assert len(warnings) == 1 and "another registry published that number" in warnings[0]


def test_an_unreachable_bucket_leaves_a_training_done_with_one_warning(home: Path, bucket: str) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    env = {**trains_fast(fresh_home(home, "a", bucket, closed)), "TAXIFARE_STORAGE__RETRIES": "0"}
    assert taxifare(env, "data", "fetch", "--size", "1k", "--source", "synthetic")[0] == 0

    code, trained, err = taxifare(env, "model", "train", "--size", "1k")

    assert code == 0, err
    assert trained["version"] == 1 and trained["published"]["action"] == "failed"
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1, err
    assert "version 1 is registered but not published" in warnings[0]
