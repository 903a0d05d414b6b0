"""What a job's machine is given: the project's wheel and the startup script that runs it.

The script is the same on every runner: a Compute Engine VM runs it at boot, the
local runner runs it in a subprocess (TAXIFARE_JOB_LOCAL=1), and it speaks to the
job folder only (services/job_folder.py).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from taxifare_cli.errors import ConfigError, ServiceError


def extras_for(settings_flat: dict[str, Any]) -> str:
    """The wheel's extras the job needs: gcp always (the job folder), mlflow when it registers there."""
    extras = ["gcp"]
    if settings_flat.get("registry.backend") == "mlflow":
        extras.append("mlflow")
    return ",".join(extras)


# -- the startup script -------------------------------------------------------------------------

_SCRIPT = r"""#!/bin/bash
# taxifare cloud job __JOB_ID__: install the wheel, run the job agent, report to the job folder,
# then delete this VM. Written by `taxifare cloud vm-train`. With TAXIFARE_JOB_LOCAL=1 the same
# steps run on this machine (the `local` runner): no venv, no metadata server, no VM to delete.
set -uo pipefail
JOB_ID=__JOB_ID__
BUCKET=__BUCKET__
FOLDER=__FOLDER__
WHEEL=__WHEEL__
EXTRAS=__EXTRAS__
KEEP_VM=__KEEP_VM__
GCS="${TAXIFARE_GCS_ENDPOINT:-https://storage.googleapis.com}"
MD=http://metadata.google.internal/computeMetadata/v1
WORK="${TAXIFARE_JOB_WORKDIR:-/var/lib/taxifare-job}"
LOCAL="${TAXIFARE_JOB_LOCAL:-}"
mkdir -p "$WORK" && cd "$WORK" || exit 1
LOG="$WORK/log.txt"
: > "$LOG"
say() { echo "$(date -u +%FT%TZ) $*" >> "$LOG"; echo "$*" >&2; }
auth=()
refresh_auth() {  # a token of the VM's service account, from the metadata server
  auth=()
  [ -n "$LOCAL" ] && return 0
  local t
  t="$(curl -sf -H 'Metadata-Flavor: Google' "$MD/instance/service-accounts/default/token" \
        | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')"
  [ -n "$t" ] && auth=(-H "Authorization: Bearer $t")
  return 0
}
put() {  # put NAME FILE CONTENT-TYPE: upload to the job folder
  refresh_auth
  curl -sf -X POST "${auth[@]}" -H "Content-Type: $3" --data-binary "@$2" \
    "$GCS/upload/storage/v1/b/$BUCKET/o?uploadType=media&name=$FOLDER/$1" > /dev/null
}
get() {  # get NAME FILE: download from the job folder
  refresh_auth
  curl -sf "${auth[@]}" -o "$2" "$GCS/storage/v1/b/$BUCKET/o/${FOLDER//\//%2F}%2F$1?alt=media"
}
delete_vm() {
  [ -n "$LOCAL" ] && return 0
  if [ "$KEEP_VM" = 1 ]; then
    say "keeping this VM (--keep-vm): taxifare cloud cancel $JOB_ID deletes it"
    return 0
  fi
  local name zone project
  name="$(curl -sf -H 'Metadata-Flavor: Google' "$MD/instance/name")"
  zone="$(curl -sf -H 'Metadata-Flavor: Google' "$MD/instance/zone")"
  project="$(curl -sf -H 'Metadata-Flavor: Google' "$MD/project/project-id")"
  say "deleting this VM ($name)"
  refresh_auth
  curl -sf -X DELETE "${auth[@]}" \
    "https://compute.googleapis.com/compute/v1/projects/$project/zones/${zone##*/}/instances/$name" \
    > /dev/null
}
finish_failed() {  # finish_failed STAGE MESSAGE: a failure done-marker unless the agent wrote one
  say "failed: $2"
  if ! get done.json "$WORK/done.json"; then  # no agent is running: the log is this script's to write
    put log.txt "$LOG" text/plain  # before the marker, which is what readers wait for
    printf '{"status": "failed", "exit_code": 1, "stage": "%s", "error": "%s", "finished_at": "%s"}\n' \
      "$1" "$2" "$(date -u +%FT%TZ)" > "$WORK/done.json"
    put done.json "$WORK/done.json" application/json
  fi
  delete_vm
  exit 1
}
say "job $JOB_ID: setting up on $(hostname)"
get "$WHEEL" "$WORK/$WHEEL" || finish_failed setup "cannot download $WHEEL from gs://$BUCKET/$FOLDER"
if [ -n "$LOCAL" ]; then
  PY="${TAXIFARE_JOB_PYTHON:?TAXIFARE_JOB_PYTHON is the python of a local run}"
  say "local run: the agent runs on $PY (the wheel is only downloaded)"
else
  say "installing python3-venv and $WHEEL[$EXTRAS]"
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv) >> "$LOG" 2>&1 \
    || finish_failed setup "cannot install python3-venv"
  python3 -m venv "$WORK/venv" >> "$LOG" 2>&1 || finish_failed setup "cannot create a virtual environment"
  "$WORK/venv/bin/pip" install -q "$WORK/$WHEEL[$EXTRAS]" >> "$LOG" 2>&1 \
    || finish_failed setup "cannot install $WHEEL"
  PY="$WORK/venv/bin/python"
fi
put log.txt "$LOG" text/plain
# From here on the agent alone uploads log.txt (this file, which it reads whole), the last time just
# before its done-marker: after the marker nothing rewrites the log, so readers see it final.
say "running the job agent"
"$PY" -u -m taxifare_cli.jobs.agent "gs://$BUCKET/$FOLDER" --log "$LOG" >> "$LOG" 2>&1
rc=$?
get done.json "$WORK/done.json" \
  || finish_failed training "the job agent exited with $rc and wrote no done-marker"
say "job agent exited with $rc"  # the VM's serial console and the local file only
delete_vm
exit $rc
"""


def startup_script(*, job_id: str, bucket: str, folder: str, wheel: str, extras: str, keep_vm: bool) -> str:
    values = {
        "__JOB_ID__": job_id,
        "__BUCKET__": bucket,
        "__FOLDER__": folder,
        "__WHEEL__": wheel,
        "__EXTRAS__": extras,
        "__KEEP_VM__": "1" if keep_vm else "0",
    }
    script = _SCRIPT
    for marker, value in values.items():
        script = script.replace(marker, shlex.quote(value))
    return script


# -- the wheel ----------------------------------------------------------------------------------


def project_root(package_file: str) -> Path | None:
    """The source checkout this package runs from (where pyproject.toml is), or None."""
    for parent in Path(package_file).resolve().parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "taxifare_cli").is_dir():
            return parent
    return None


def build_wheel(root: Path, dest: Path) -> Path:
    """The project's wheel, built offline with hatchling (the build backend) in a subprocess."""
    dest.mkdir(parents=True, exist_ok=True)
    code = "import sys, hatchling.build as b; print(b.build_wheel(sys.argv[1]))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(dest)], cwd=root, capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ServiceError(f"cannot build the wheel: {e}") from e
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if "No module named 'hatchling'" in done.stderr:
            raise ConfigError(
                "building the job's wheel needs hatchling", hint="pip install 'taxifare[cloud]'"
            )
        raise ServiceError(f"cannot build the wheel in {root}: {last}")
    return dest / done.stdout.strip().splitlines()[-1]
