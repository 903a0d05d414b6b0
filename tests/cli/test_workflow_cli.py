"""`taxifare workflow run|simulate|history|schedule` in-process, on small simulated months.

Months have 2,000 rides, the network one hidden layer of 8 units, and runs train one
epoch, so a month takes a few seconds. Webhook verdicts go to a recording HTTP server
on 127.0.0.1 started by the test; `crontab` is a fake script first on PATH.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.cli.conftest import Cli, Run

pytestmark = pytest.mark.slow

EPOCHS = ("--epochs", "1")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VERDICT_WORDS = {
    "promoted": "is now in Production",
    "staged": "waits in Staging",
    "kept": "Production is unchanged",
}


@pytest.fixture(autouse=True)
def small_months(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `home` has cleaned the environment: small months and a tiny network."""
    monkeypatch.setenv("TAXIFARE_DATA__SYNTHETIC_MONTH_ROWS", "2000")
    monkeypatch.setenv("TAXIFARE_TRAINING__HIDDEN_LAYERS", "[8]")


def ok(r: Run) -> Any:
    assert r.code == 0, r
    assert r.exception is None, r
    return r.json()


def models(cli: Cli) -> list[dict[str, Any]]:
    return ok(cli("--json", "model", "ls"))  # type: ignore[no-any-return]


def production(cli: Cli) -> int | None:
    held = [m["version"] for m in models(cli) if m["stage"] == "Production"]
    assert len(held) <= 1
    return held[0] if held else None


def history(cli: Cli) -> list[dict[str, Any]]:
    return ok(cli("--json", "workflow", "history"))  # type: ignore[no-any-return]


# -- run ------------------------------------------------------------------------------------------


def test_dry_run_changes_nothing_and_lists_the_steps(cli: Cli, home: Path) -> None:
    plan = ok(cli("--json", "workflow", "run", "--dry-run"))
    assert plan["status"] == "planned" and plan["month"] == "jan"
    steps = plan["plan"]["steps"]
    assert steps[0].startswith("fetch train_jan and val_jan from")
    assert any("no Production to evaluate" in s for s in steps)
    assert any("train a challenger on train_jan" in s for s in steps)
    assert any("tell a human (console)" in s for s in steps)
    assert plan["plan"]["production_version"] is None and plan["plan"]["resumes"] == []

    r = cli("workflow", "run", "--dry-run", "--month", "feb")
    assert r.code == 0, r
    assert "would run feb (policy manual):" in r.out
    assert "  1. fetch train_feb and val_feb" in r.out and "  2. " in r.out

    # nothing fetched, registered, journaled or recorded
    assert not list((home / "data").glob("*.csv")) if (home / "data").exists() else True
    assert not (home / "registry").exists() or not any((home / "registry").rglob("version.json"))
    assert not (home / "workflow" / "runs.jsonl").exists()
    assert not (home / "workflow" / "journal").exists() or not any((home / "workflow" / "journal").iterdir())
    assert models(cli) == []
    assert history(cli) == []


def test_auto_promote_is_policy_auto(cli: Cli) -> None:
    auto = ok(cli("--json", "workflow", "run", "--dry-run", "--auto-promote"))["plan"]
    policy = ok(cli("--json", "workflow", "run", "--dry-run", "--policy", "auto"))["plan"]
    manual = ok(cli("--json", "workflow", "run", "--dry-run"))["plan"]
    assert auto == policy
    assert auto["policy"] == "auto" and manual["policy"] == "manual"
    assert auto["steps"] != manual["steps"]  # the rule line says where the challenger goes


def test_months_in_order_skip_done_ones_and_history_newest_first(cli: Cli) -> None:
    jan = ok(cli("--json", "workflow", "run", "--auto-promote", *EPOCHS))
    assert (jan["status"], jan["month"], jan["verdict"]) == ("done", "jan", "promoted")
    assert jan["challenger_version"] == 1 and jan["production_version"] is None
    assert production(cli) == 1

    feb = ok(cli("--json", "workflow", "run", "--policy", "auto", "--min-gain", "0", *EPOCHS))
    assert (feb["status"], feb["month"]) == ("done", "feb")
    assert feb["production_version"] == 1 and feb["production_mae"] > 0
    assert feb["challenger_version"] == 2 and feb["parent_version"] == 1
    assert feb["verdict"] in ("promoted", "kept")
    assert production(cli) == (2 if feb["verdict"] == "promoted" else 1)

    # a done month is skipped, and says how to redo it
    skipped = ok(cli("--json", "workflow", "run", "--month", "jan", *EPOCHS))
    assert skipped["status"] == "skipped" and skipped["month"] == "jan" and "--force" in skipped["reason"]
    r = cli("workflow", "run", "--month", "JAN", *EPOCHS)
    assert r.code == 0 and "jan is done already" in r.err, r
    assert len(models(cli)) == 2  # nothing trained

    runs = history(cli)
    assert [h["month"] for h in runs] == ["feb", "jan"]  # newest first
    assert [h["challenger_version"] for h in runs] == [2, 1]

    # --force runs it again (planned here: `workflow simulate` runs forced months for real)
    again = ok(cli("--json", "workflow", "run", "--month", "jan", "--force", "--dry-run"))
    assert again["status"] == "planned" and again["month"] == "jan"
    assert again["plan"]["production_version"] == production(cli)

    r = cli("workflow", "history")
    assert r.code == 0 and "2 run(s), newest first" in r.out, r


def test_an_unknown_month_is_a_usage_error(cli: Cli) -> None:
    r = cli("workflow", "run", "--month", "dec", "--dry-run")
    assert r.code == 2, r
    assert "dec" in r.err and "jan" in r.err


# -- simulate -------------------------------------------------------------------------------------


def test_simulate_three_months_writes_a_png_and_json(cli: Cli, home: Path) -> None:
    result = ok(
        cli("--json", "workflow", "simulate", "--from", "jan", "--to", "mar", *EPOCHS, "--plot", "out.png")
    )
    months = result["months"]
    assert [m["month"] for m in months] == ["jan", "feb", "mar"]
    assert months[0]["verdict"] == "promoted" and months[0]["production_version"] is None
    assert all(m["production_version"] is not None and m["production_mae"] > 0 for m in months[1:])
    assert [m["challenger_version"] for m in months] == [1, 2, 3]
    png = home / "out.png"
    assert Path(result["plot"]).resolve() == png.resolve()
    assert png.read_bytes()[:8] == PNG_SIGNATURE and png.stat().st_size > 1000
    assert [h["month"] for h in history(cli)] == ["mar", "feb", "jan"]


def test_simulate_backwards_is_a_usage_error(cli: Cli, home: Path) -> None:
    r = cli("workflow", "simulate", "--from", "mar", "--to", "jan", *EPOCHS)
    assert r.code == 2, r
    assert not (home / "workflow_simulation.png").exists()


# -- schedule -------------------------------------------------------------------------------------


def test_schedule_prints_a_crontab_line_with_absolute_paths_and_a_log(cli: Cli, home: Path) -> None:
    r = cli("workflow", "schedule", "--cron", "0 3 2 * *", "--policy", "auto")
    assert r.code == 0, r
    [line] = r.out.strip().splitlines()
    words = shlex.split(line)
    assert words[:5] == ["0", "3", "2", "*", "*"]
    assert words[5] == "cd" and Path(words[6]).is_absolute() and Path(words[6]) == home
    assert words[7] == "&&"
    exe = Path(words[8])
    assert exe.is_absolute() and exe.exists()
    command = words[8 : words.index(">>")]
    assert "--quiet" in command and command[-4:] == ["workflow", "run", "--policy", "auto"]
    log = Path(words[words.index(">>") + 1])
    assert log.is_absolute() and log == home / "workflow" / "logs" / "workflow.log"
    assert log.parent.is_dir()  # ready for cron to append to
    assert words[-1] == "2>&1"
    assert "crontab -e" in r.err

    result = ok(cli("--json", "workflow", "schedule", "--cron", "0 3 2 * *"))
    assert result["installed"] is False and result["crontab"].startswith("0 3 2 * * cd ")


@pytest.mark.parametrize(
    "cron",
    [
        "0 3 2 *",  # 4 fields
        "0 3 2 * * *",  # 6 fields
        "every month",
        "",
        "61 3 2 * *",  # minute 61
        "0 3 2 13 *",  # month 13
        "a b c d e",  # five words, no times
    ],
)
def test_a_bad_cron_expression_is_a_configuration_error(cli: Cli, cron: str) -> None:
    r = cli("workflow", "schedule", "--cron", cron)
    assert r.code == 3, r
    assert r.out == ""
    assert r.err.startswith("error:") and "cron" in r.err


FAKE_CRONTAB = """#!/bin/sh
# Stands in for cron's `crontab`, which tests must not touch: "the crontab" is the file
# $FAKE_CRONTAB_FILE; every call is logged to $FAKE_CRONTAB_FILE.calls.
echo "$*" >> "$FAKE_CRONTAB_FILE.calls"
case "$1" in
  -l) if [ -f "$FAKE_CRONTAB_FILE" ]; then cat "$FAKE_CRONTAB_FILE"; else echo "no crontab for $USER" >&2; exit 1; fi ;;
  -) cat > "$FAKE_CRONTAB_FILE" ;;
  *) echo "fake crontab: unexpected arguments: $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture
def fake_crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `crontab` first on PATH that keeps the table in a file (returned); the real one is never run."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "crontab"
    script.write_text(FAKE_CRONTAB)
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    table = tmp_path / "crontab.txt"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_CRONTAB_FILE", str(table))
    return table


@pytest.mark.parametrize("existing", [None, "MAILTO=ops@example.com", "MAILTO=ops@example.com\n"])
def test_install_adds_the_line_once(cli: Cli, fake_crontab: Path, existing: str | None) -> None:
    if existing is not None:
        fake_crontab.write_text(existing)
    first = ok(cli("--json", "workflow", "schedule", "--cron", "0 3 2 * *", "--install"))
    assert first["installed"] is True and first["added"] is True
    line = first["crontab"]
    expected = ([existing.strip()] if existing else []) + [line]
    assert fake_crontab.read_text().splitlines() == expected
    assert fake_crontab.read_text().endswith("\n")

    second = ok(cli("--json", "workflow", "schedule", "--cron", "0 3 2 * *", "--install"))
    assert second["added"] is False and second["crontab"] == line
    assert fake_crontab.read_text().splitlines() == expected  # idempotent
    calls = Path(f"{fake_crontab}.calls").read_text().splitlines()
    assert calls == ["-l", "-", "-l"]  # written once

    r = cli("workflow", "schedule", "--cron", "0 3 2 * *", "--install")
    assert r.code == 0 and "already in your crontab" in r.err, r


@pytest.mark.timeout(120)
def test_schedule_with_the_prefect_engine_needs_prefect(home: Path) -> None:
    """Run as a process of its own, not in-process like the rest of this file: importing prefect
    reconfigures logging for the whole process (logging.config.dictConfig closes every handler),
    and absl's handler, made when TensorFlow was first imported by an earlier test, then closes
    the stream it was made with, which under pytest is pytest's own capture file.
    """
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "taxifare_cli",
            "workflow",
            "schedule",
            "--cron",
            "0 3 2 * *",
            "--engine",
            "prefect",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        stdin=subprocess.DEVNULL,
        timeout=100,
    )
    assert proc.returncode == 3, proc
    assert proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    if importlib.util.find_spec("prefect") is not None:
        assert "prefect server start" in proc.stderr
    else:  # the extra is not installed here
        assert "taxifare[prefect]" in proc.stderr


# -- webhook verdicts, end to end -----------------------------------------------------------------


@dataclass
class Hook:
    """A recording webhook on 127.0.0.1: every POST body, and the status it answers (always `status`)."""

    url: str = ""
    status: int = 200
    bodies: list[bytes] = field(default_factory=list)

    def texts(self) -> list[str]:
        return [json.loads(b)["text"] for b in self.bodies]


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch, small_months: None) -> Iterator[Hook]:
    state = Hook()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                state.bodies.append(body)
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B0/secret"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("TAXIFARE_NOTIFY__BACKEND", "webhook")
    monkeypatch.setenv("TAXIFARE_NOTIFY__WEBHOOK_URL", state.url)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_verdict_is_posted_to_the_webhook(cli: Cli, hook: Hook) -> None:
    jan = ok(cli("--json", "workflow", "run", "--policy", "auto", *EPOCHS))
    assert len(hook.bodies) == 1
    [text] = hook.texts()
    assert "jan" in text and VERDICT_WORDS[jan["verdict"]] in text
    assert f"${jan['challenger_mae']:.2f}" in text

    feb = ok(cli("--json", "workflow", "run", "--policy", "auto", *EPOCHS))
    assert feb["month"] == "feb" and feb["production_version"] == 1
    assert len(hook.bodies) == 2  # one POST a run
    text = hook.texts()[1]
    assert "feb" in text
    assert f"${feb['production_mae']:.2f}" in text and f"${feb['challenger_mae']:.2f}" in text
    assert VERDICT_WORDS[feb["verdict"]] in text
    assert [h["notified"] for h in history(cli)] == [True, True]


def test_a_webhook_that_fails_does_not_fail_the_run(
    cli: Cli, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook.status = 500
    monkeypatch.setenv("TAXIFARE_NOTIFY__RETRIES", "1")
    r = cli("workflow", "run", "--policy", "auto", *EPOCHS)
    assert r.code == 0, r
    assert len(hook.bodies) == 2  # the first attempt and one retry
    warnings = [line for line in r.err.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1, r
    assert "not delivered" in warnings[0] and "500" in warnings[0]
    assert "secret" not in r.err and "/hooks/" not in r.err
    assert production(cli) == 1  # the promotion stands
    [run] = history(cli)
    assert run["month"] == "jan" and run["verdict"] == "promoted"
    assert run["notified"] is False and "500" in run["notify_error"]
