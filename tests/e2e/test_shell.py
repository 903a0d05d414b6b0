"""What only a real process shows: start-up cost, exit codes a shell sees, streams, a cron job's run.

The commands themselves are tested in-process in tests/cli; these few run
`python -m taxifare_cli` as a subprocess with no terminal and stdin closed.
"""

import json
import os
import subprocess
import sys
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
        # Not bare 'google.cloud': google-cloud-aiplatform's *-nspkg.pth makes that empty namespace at
        # every interpreter start; the clients under it are what costs seconds.
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'pandas', 'pyarrow', 'mlflow', 'google.cloud.storage', "
        "'google.cloud.bigquery', 'google.cloud.compute_v1', 'google.cloud.aiplatform', "
        "'google.cloud.aiplatform_v1', 'google.api_core') if m in sys.modules)\n"
        "print('heavy=' + ','.join(heavy), file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=home)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip().splitlines()[-1] == "heavy=", f"imported at start-up: {r.stderr}"


def test_version_and_usage_error_exit_codes(cli: Cli) -> None:
    r = cli("--version")
    assert r.code == 0 and r.out.startswith("taxifare ")
    r = cli("model", "trian")
    assert r.code == 2 and "No such command" in r.err and r.out == ""


def test_a_data_error_is_one_line_on_stderr_and_exit_4(cli: Cli) -> None:
    r = cli("model", "train", "--size", "10k")
    assert r.code == 4, r
    assert r.out == "" and "Traceback" not in r.err
    errors = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: train_10k is not in")


def test_json_results_on_stdout_and_messages_on_stderr_without_a_terminal(cli: Cli) -> None:
    r = cli("data", "fetch", "--size", "1k", "--source", "synthetic", "--json")
    assert r.code == 0, r
    assert [d["name"] for d in json.loads(r.out)["datasets"]] == ["train_1k", "val_1k"]
    assert "fetched train_1k" in r.err
    assert "\x1b[" not in r.err, "no colours or progress bars when stderr is not a terminal"


def test_a_cron_like_run_with_a_bare_environment(home: Path) -> None:
    """cron gives a job PATH, HOME and little else: the defaults must carry the whole workflow."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TAXIFARE_DATA__SYNTHETIC_MONTH_ROWS": "2000",
        "TAXIFARE_TRAINING__HIDDEN_LAYERS": "[8]",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    r = subprocess.run(
        [sys.executable, "-m", "taxifare_cli", "workflow", "run", "--policy", "auto", "--epochs", "1", "--json"],
        capture_output=True, text=True, env=env, cwd=home, stdin=subprocess.DEVNULL, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["verdict"] == "promoted" and result["month"] == "jan"  # the first month not done
    assert (home / ".taxifare" / "data" / "train_jan.csv").is_file()
    history = (home / ".taxifare" / "workflow" / "runs.jsonl").read_text().splitlines()
    assert [json.loads(line)["month"] for line in history] == ["jan"]
    assert "Traceback" not in r.stderr
