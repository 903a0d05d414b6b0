"""What `taxifare workflow` shows: the simulation and history tables, and the schedules it writes."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxifare_cli.cli._console import Output
from taxifare_cli.errors import ConfigError, ServiceError

if TYPE_CHECKING:
    from taxifare_cli.cli._context import AppState
    from taxifare_cli.services.workflow import MonthOutcome


def _money(v: float | None) -> str:
    return "" if v is None else f"${v:.2f}"


def simulation_table(out: Output, outcomes: list[MonthOutcome]) -> Any:
    rows = [
        (
            o.month,
            f"v{o.production_version}" if o.production_version else "",
            _money(o.production_mae),
            f"v{o.challenger_version}",
            _money(o.challenger_mae),
            o.verdict,
            (o.drift or {}).get("summary", "not measured" if o.production_version else ""),
        )
        for o in outcomes
    ]
    return out.table(
        "months in order: Production on each new month, and the challenger retrained on it",
        ["month", "Production", "its MAE", "challenger", "its MAE", "decision", "drift"],
        rows,
    )


def history_table(out: Output, runs: list[dict[str, Any]]) -> Any:
    if not runs:
        return "no workflow runs yet: taxifare workflow run"
    rows = [
        (
            r.get("month"),
            str(r.get("finished_at", ""))[:16].replace("T", " "),
            f"v{r['production_version']} {_money(r.get('production_mae'))}"
            if r.get("production_version")
            else "",
            f"v{r.get('challenger_version')} {_money(r.get('challenger_mae'))}",
            r.get("verdict"),
            r.get("policy"),
            (r.get("drift") or {}).get("summary", ""),
            {True: "yes", False: "FAILED", None: ""}[r.get("notified")],
        )
        for r in runs
    ]
    return out.table(
        f"{len(runs)} run(s), newest first",
        ["month", "finished (UTC)", "Production", "challenger", "decision", "policy", "drift", "notified"],
        rows,
    )


_CRON_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}


def check_cron(cron: str) -> list[str]:
    """The five fields of a standard cron expression; ConfigError naming the field that is wrong."""
    fields = cron.split()
    if len(fields) != 5:
        raise ConfigError(f"--cron {cron!r} is not a cron expression of 5 fields", hint='e.g. "0 3 2 * *"')
    for i, (field, (what, low, high)) in enumerate(zip(fields, _CRON_FIELDS, strict=True)):
        for item in field.split(","):
            base, _, step = item.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                raise ConfigError(f"--cron {cron!r}: step {step!r} of the {what} is not a positive number")
            if base == "*":
                continue
            for value in base.split("-", 1):
                names = _NAMES.get(i, [])
                number = names.index(value.lower()) + (1 if i == 3 else 0) if value.lower() in names else None
                if number is None and not value.isdigit():
                    raise ConfigError(f"--cron {cron!r}: {value!r} is not a {what}", hint='e.g. "0 3 2 * *"')
                if number is None and not low <= int(value) <= high:
                    raise ConfigError(f"--cron {cron!r}: the {what} {value} is not in {low}-{high}")
    return fields


def cron_line(cron: str, st: AppState, policy: str | None) -> str:
    """The crontab line: absolute paths (cron's PATH is short), the run's own lock, a log file."""
    fields = check_cron(cron)
    settings = st.load().settings
    log = settings.workflow_dir / "logs" / "workflow.log"
    exe = shutil.which("taxifare") or f"{sys.executable} -m taxifare_cli"
    args = [*shlex.split(exe), "--quiet"]
    if st.config is not None:
        args += ["--config", str(st.config.resolve())]
    args += ["workflow", "run", *(["--policy", policy] if policy else [])]
    command = " ".join(shlex.quote(a) for a in args)
    return (
        f"{' '.join(fields)} cd {shlex.quote(str(Path.cwd()))} && {command} >> {shlex.quote(str(log))} 2>&1"
    )


def schedule_workflow(
    st: AppState, *, cron: str, engine: str | None, policy: str | None, install: bool
) -> None:
    taxifare = st.app(**{"workflow.engine": engine, "workflow.policy": policy})
    if taxifare.settings.workflow.engine == "prefect":
        taxifare.serve_workflow(cron)
        return
    line = cron_line(cron, st, policy)
    (taxifare.settings.workflow_dir / "logs").mkdir(parents=True, exist_ok=True)
    if not install:
        st.output.result({"crontab": line, "installed": False}, line)
        st.output.info("add it with `crontab -e`, or run this command again with --install")
        return
    installed = _install_crontab(line)
    st.output.result({"crontab": line, "installed": True, "added": installed}, line)
    st.output.success("added to your crontab" if installed else "already in your crontab")


def _install_crontab(line: str) -> bool:
    """Append `line` to the user's crontab unless it is there; True if it was added."""
    crontab = shutil.which("crontab")
    if crontab is None:
        raise ConfigError(
            "there is no `crontab` command on this machine", hint="install cron, or add the line by hand"
        )
    current = subprocess.run([crontab, "-l"], capture_output=True, text=True, check=False)
    # `crontab -l` exits 1 with "no crontab for <user>" when there is none yet.
    existing = current.stdout if current.returncode == 0 else ""
    if line in existing.splitlines():
        return False
    new = existing + ("" if not existing or existing.endswith("\n") else "\n") + line + "\n"
    done = subprocess.run([crontab, "-"], input=new, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(f"crontab refused the new line: {done.stderr.strip()[:200]}")
    return True
