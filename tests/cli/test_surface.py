"""The command surface: help, JSON purity, global options anywhere, config commands."""

import json
from pathlib import Path

import pytest
import tomllib
from tests.cli.conftest import Cli


def test_help_lists_groups_and_exit_codes(cli: Cli) -> None:
    r = cli("--help")
    assert r.code == 0
    for word in ("config", "data", "model", "workflow", "Exit codes", "5 external service"):
        assert word in r.out


def test_json_mode_prints_exactly_one_document(cli: Cli) -> None:
    r = cli("--json", "data", "fetch", "--size", "1k", "--source", "synthetic")
    assert r.code == 0
    json.loads(r.out)  # the whole of stdout is one JSON document
    assert "fetched train_1k" in r.err


def test_config_show_says_where_values_come_from(cli: Cli, home: Path) -> None:
    (home / "taxifare.toml").write_text("[training]\nepochs = 5\n")
    r = cli("--json", "config", "show", env={"CHUNK_SIZE": "20000", "TAXIFARE_MLFLOW__TRACKING_TOKEN": "tok3n"})
    assert r.code == 0, r
    s = r.json()["settings"]
    assert s["training.epochs"] == {"value": "5", "origin": f"file {home / 'taxifare.toml'}"}
    assert s["data.chunk_size"] == {"value": "20000", "origin": "env CHUNK_SIZE"}
    assert s["mlflow.tracking_token"]["value"] == "********"
    assert "tok3n" not in r.out + r.err


def test_config_init_writes_once_then_needs_force(cli: Cli, home: Path) -> None:
    assert cli("config", "init").code == 0
    tomllib.loads((home / "taxifare.toml").read_text())
    r = cli("config", "init")
    assert r.code == 3 and "--force" in r.err
    assert cli("config", "init", "--force").code == 0
    assert cli("config", "check").code == 0


def test_config_check_flags_a_backend_without_its_settings(cli: Cli) -> None:
    r = cli("config", "check", env={"DATA_SOURCE": "gcs"})
    assert r.code == 3 and "gcp.project" in r.err and "storage.bucket" in r.err
    r = cli("config", "check", env={"TAXIFARE_NOTIFY__BACKEND": "webhook"})
    assert r.code == 3 and "notify.webhook_url" in r.err


def test_mlflow_needs_no_server(cli: Cli) -> None:
    r = cli("config", "check", env={"MODEL_TARGET": "mlflow"})
    assert r.code == 0, r
    r = cli("--json", "config", "show", env={"MODEL_TARGET": "mlflow"})
    local_store = r.json()["settings"]["mlflow.local_store"]
    assert local_store["origin"] == "default" and local_store["value"].endswith(".taxifare")


@pytest.mark.parametrize(
    "args",
    [
        ["--json", "data", "ls"],
        ["data", "ls", "--json"],
        ["data", "--json", "ls"],
    ],
)
def test_global_options_work_before_or_after_the_command(cli: Cli, args: list[str]) -> None:
    r = cli(*args)
    assert r.code == 0, r
    assert json.loads(r.out) == {"local": []}


def test_config_option_after_the_command_is_honoured(cli: Cli, home: Path) -> None:
    cfg = home / "other.toml"
    cfg.write_text("[training]\nepochs = 7\n")
    r = cli("config", "show", "--config", str(cfg), "--json")
    assert r.code == 0, r
    assert r.json()["settings"]["training.epochs"]["value"] == "7"
    r = cli("config", "show", f"--config={cfg}", "--json")
    assert r.json()["settings"]["training.epochs"]["value"] == "7"


def test_quiet_after_the_command_silences_stderr(cli: Cli) -> None:
    r = cli("data", "fetch", "--size", "1k", "--source", "synthetic", "-q")
    assert r.code == 0, r
    assert r.err == ""


def test_hoisting_leaves_values_and_what_follows_a_double_dash_alone() -> None:
    from taxifare_cli.cli.main import hoist_global_options

    assert hoist_global_options(["model", "ls", "--json"]) == ["--json", "model", "ls"]
    assert hoist_global_options(["x", "--config", "a.toml", "-q"]) == ["--config", "a.toml", "-q", "x"]
    assert hoist_global_options(["x", "--", "--json"]) == ["x", "--", "--json"]


def test_a_failing_command_in_json_mode_still_prints_one_json_document(cli: Cli) -> None:
    r = cli("model", "promote", "--version", "3", "--stage", "Production", "--json")
    assert r.code == 4, r
    doc = r.json()
    assert doc["exit_code"] == 4 and "version 3 does not exist" in doc["error"]
    assert "error: " in r.err
