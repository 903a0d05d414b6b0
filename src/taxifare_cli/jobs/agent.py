"""The job agent: `python -m taxifare_cli.jobs.agent gs://<bucket>/jobs/<job-id> [--log FILE]`.

Runs on the machine that trains (a VM, a Vertex AI container, a local
subprocess). It reads the job spec from the job folder, trains through the
application object (`Taxifare(settings).train(...)`) with progress lines
going to the folder, and writes the result and the done-marker (success or
failure, always). The settings are the spec's (no secrets travel in it); a
secret the job needs comes from the machine's environment (TAXIFARE_...).
Exit code: 0 on success, else the error's exit code (as the CLI's).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from taxifare_cli import bootstrap
from taxifare_cli.errors import TaxifareError
from taxifare_cli.services.job_folder import FAILED, LOG, SUCCEEDED, DoneMarker, FolderProgress, JobFolder


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class LogShipper:
    """Uploads the job's log file to the folder every `every_s` seconds, and once more at the end.

    Every upload is made by the one shipping thread, the last after the job is over: two
    uploads of log.txt never overlap, so the last one written is the whole log (the store
    keeps whichever upload finishes last).
    """

    def __init__(self, folder: JobFolder, path: Path | None, every_s: float = 5.0) -> None:
        self.folder = folder
        self.path = path
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LogShipper:
        if self.path is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()  # each upload is bounded by the store's timeout and retries

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._ship()
        self._ship()  # the whole log, before the done-marker is written

    def _ship(self) -> None:
        try:
            self.ship()
        except Exception as e:  # a missed upload is retried next time; the job goes on
            _say(f"could not upload the log: {e}")

    def ship(self) -> None:
        if self.path is not None and self.path.is_file():
            self.folder.store.write(LOG, self.path.read_bytes(), content_type="text/plain")


def run_job(job_uri: str, *, log_path: Path | None = None, environ: dict[str, str] | None = None) -> int:
    """Run the job in `job_uri`; the done-marker is written whatever happens (but a kill)."""
    folder = JobFolder(bootstrap.open_job_folder(job_uri))
    with LogShipper(folder, log_path):  # the log is shipped in full before the done-marker is written
        marker = _train(folder, job_uri, dict(os.environ if environ is None else environ))
    folder.write_done(marker)
    return marker.exit_code


def _train(folder: JobFolder, job_uri: str, environ: dict[str, str]) -> DoneMarker:
    from taxifare_cli.app import Taxifare
    from taxifare_cli.settings import load_settings

    try:
        spec = folder.spec()
        if spec is None:
            raise TaxifareError(f"no job spec in {job_uri}")
        train: dict[str, Any] = spec.get("train", {})
        flags = {**spec.get("settings", {}), **train.get("flags", {})}
        settings = load_settings(flags=flags, environ=environ)
        progress = FolderProgress(folder, log=_say)
        progress.log(f"job {folder.job_id}: training on {spec.get('runner', '?')} ({os.uname().nodename})")
        app = Taxifare(settings.settings, progress=progress)
        result = app.train(train.get("size"), train.get("month"), from_stage=train.get("from_stage"))
        folder.write_result(result.as_dict())
        m = result.metrics
        progress.log(
            f"version {result.version.version}: val MAE {m.get('val_mae', float('nan')):.2f} "
            f"in {result.epochs_run} epochs"
        )
        progress.flush()
        return DoneMarker(SUCCEEDED, 0)
    except TaxifareError as e:
        _say(f"error: {e}")
        return DoneMarker(FAILED, e.exit_code or 1, error=str(e))
    except BaseException as e:
        _say("".join(traceback.format_exception(e)))
        return DoneMarker(FAILED, 1, error=f"unexpected {type(e).__name__}: {e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m taxifare_cli.jobs.agent", description=__doc__)
    parser.add_argument("job_uri", help="the job folder, gs://<bucket>/jobs/<job-id>")
    parser.add_argument("--log", type=Path, default=None, help="a log file to ship to the job folder")
    args = parser.parse_args(argv)
    try:
        return run_job(args.job_uri, log_path=args.log)
    except TaxifareError as e:  # the folder itself cannot be reached: nowhere to report but here
        _say(f"error: {e}")
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
