"""Things a shell sees: help, version, JSON purity, config commands, start-up cost."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.e2e.conftest import Cli


def test_help_and_config_show_do_not_import_heavy_libraries(home: Path) -> None:
    probe = (
        "import sys\n"
        "from taxifare_cli.cli.main import app\n"
        "for args in (['--help'], ['config', 'show']):\n"
        "    try:\n"
        "        app(args=args, prog_name='taxifare')\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'pandas', 'pyarrow', 'mlflow', 'google.cloud') "
        "if m in sys.modules)\n"
        "print('heavy=' + ','.join(heavy), file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=home)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "heavy=", f"imported at start-up: {r.stderr}"


def test_version(cli: Cli) -> None:
    r = cli("--version")
    assert r.code == 0 and r.out.startswith("taxifare ")


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
    r = cli("config", "check", env={"MODEL_TARGET": "mlflow"})
    assert r.code == 3 and "mlflow.tracking_uri" in r.err
