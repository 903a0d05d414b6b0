"""`taxifare cloud`: train on Google's machines (a VM, Vertex AI), follow, list, cancel.

Every job talks through its folder gs://<bucket>/jobs/<job-id>/ (services/job_folder.py).
The Google clients are imported only inside these commands.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from taxifare_cli.cli._console import Output
from taxifare_cli.cli._context import state
from taxifare_cli.cli._options import (
    BatchSize,
    DryRun,
    Epochs,
    FromStage,
    LearningRate,
    Month,
    Patience,
    Size,
    Source,
    Target,
)
from taxifare_cli.core.vocabulary import LoadableStage
from taxifare_cli.errors import TaxifareError

if TYPE_CHECKING:
    from taxifare_cli.app import Taxifare
    from taxifare_cli.services.job_folder import ProgressLine

app = typer.Typer(
    name="cloud",
    help="Train on Google's machines (Compute Engine, Vertex AI); follow, list and cancel jobs.",
    no_args_is_help=True,
)

MachineType = Annotated[
    str | None, typer.Option("--machine-type", help="Machine type (cloud.machine_type, e2-standard-4).")
]
Spot = Annotated[
    bool | None,
    typer.Option("--spot/--no-spot", help="A Spot machine: cheaper, may be preempted (cloud.spot)."),
]
MaxHours = Annotated[
    float | None,
    typer.Option("--max-hours", help="Google stops the job after this long (cloud.max_hours, 4).", min=0.1),
]


class JobFailed(TaxifareError):
    """A cloud job ended without success; the exit code is the job's (5 when its machine vanished)."""

    def __init__(self, message: str, exit_code: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def _flags(
    source: Any, target: Any, epochs: Any, batch_size: Any, learning_rate: Any, patience: Any
) -> dict[str, Any]:
    return {
        "storage.backend": source,
        "registry.backend": target,
        "training.epochs": epochs,
        "training.batch_size": batch_size,
        "training.learning_rate": learning_rate,
        "training.patience": patience,
    }


def _write(text: str) -> None:
    """Raw text on stdout: a startup script is full of [ ] that rich would read as markup."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _line_printer(out: Output) -> Any:
    """How progress lines are shown: bars on a terminal, plain lines otherwise, nothing with --quiet."""
    if out.quiet:
        return lambda line: None
    if out.err.is_terminal:
        progress = out.progress()
        return lambda line: line.replay(progress)

    def plain(line: ProgressLine) -> None:
        text = line.plain()
        if text:
            out.info(f"  {text}")

    return plain


def _train(
    ctx: typer.Context,
    runner: str,
    *,
    size: str | None,
    month: str | None,
    from_stage: LoadableStage | None,
    flags: dict[str, Any],
    keep_vm: bool,
    dry_run: bool,
) -> None:
    st = state(ctx)
    out = st.output
    taxifare = st.app(**flags)
    train_flags = {k: v for k, v in flags.items() if not k.startswith("cloud.")}
    job = taxifare.plan_cloud_training(
        runner, size, month, from_stage=from_stage, flags=train_flags, keep_vm=keep_vm
    )
    if dry_run:
        if out.json_mode:
            out.result(job.as_dict())
        else:
            _write(f"# job {job.job_id} in {job.launch.job_uri}: the request (nothing is created)")
            _write(json.dumps(job.request, indent=2))
            _write("# the startup script")
            _write(job.launch.startup_script)
        return
    job = taxifare.start_cloud_training(job)
    out.info(
        f"started job {job.job_id} on {runner} ({job.launch.resource}); its folder: {job.launch.job_uri}"
    )
    out.info(
        f"  follow it elsewhere: taxifare cloud logs {job.job_id} --follow; stop it: taxifare cloud cancel"
    )
    _follow(taxifare, out, job.job_id, runner)


def _follow(taxifare: Taxifare, out: Output, job_id: str, runner: str) -> None:
    try:
        outcome = taxifare.follow_cloud_job(job_id, _line_printer(out))
    except KeyboardInterrupt:
        _interrupted(taxifare, out, job_id, runner)
        raise typer.Exit(130) from None
    if outcome.status == "succeeded":
        result = outcome.result or {}
        metrics = result.get("metrics", {})
        mae = metrics.get("val_mae")
        human = f"job {job_id} succeeded: version {result.get('version', '?')}" + (
            f", val MAE ${mae:,.2f}" if isinstance(mae, int | float) else ""
        )
        out.result(outcome.as_dict(), human)
        return
    for line in outcome.log_tail:
        out.err.print(f"  | {line}", markup=False, highlight=False)
    raise JobFailed(
        f"job {job_id} {'was preempted or failed' if outcome.status == 'preempted' else 'failed'}: "
        f"{outcome.error}",
        outcome.exit_code,
        hint=f"taxifare cloud logs {job_id} shows the whole log",
    )


def _interrupted(taxifare: Taxifare, out: Output, job_id: str, runner: str) -> None:
    """Ctrl-C: ask whether to stop the job's machine; without a terminal, stop it."""
    what = "the VM" if runner == "compute_engine" else "the job"
    if sys.stdin.isatty() and not out.json_mode:
        try:
            stop = typer.confirm(f"\ninterrupted: delete {what} of job {job_id}?", default=True, err=True)
        except (KeyboardInterrupt, typer.Abort):
            stop = True
    else:
        stop = True
    if stop:
        stopped = taxifare.cancel_cloud_job(job_id)
        out.warn(f"interrupted: {what} of job {job_id} {'deleted' if stopped else 'was already gone'}")
    else:
        out.warn(f"interrupted: job {job_id} goes on; taxifare cloud cancel {job_id} stops it")


@app.command("vm-train")
def vm_train(
    ctx: typer.Context,
    size: Size = None,
    month: Month = None,
    source: Source = None,
    target: Target = None,
    from_stage: FromStage = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    learning_rate: LearningRate = None,
    patience: Patience = None,
    machine_type: MachineType = None,
    zone: Annotated[str | None, typer.Option("--zone", help="Compute Engine zone (cloud.zone).")] = None,
    spot: Spot = None,
    max_hours: MaxHours = None,
    keep_vm: Annotated[
        bool, typer.Option("--keep-vm", help="Do not delete the VM when the job ends (to look at it).")
    ] = False,
    dry_run: DryRun = False,
) -> None:
    """Train on a Compute Engine VM that deletes itself when done; follow it here.

    Example: taxifare cloud vm-train --size 1m --source bigquery --target mlflow --epochs 30 --spot
    """
    flags = _flags(source, target, epochs, batch_size, learning_rate, patience)
    flags |= {"cloud.machine_type": machine_type, "cloud.zone": zone, "cloud.spot": spot}
    flags["cloud.max_hours"] = max_hours
    _train(
        ctx, "compute_engine", size=size, month=month, from_stage=from_stage, flags=flags,
        keep_vm=keep_vm, dry_run=dry_run,
    )  # fmt: skip


@app.command("vertex-train")
def vertex_train(
    ctx: typer.Context,
    size: Size = None,
    month: Month = None,
    source: Source = None,
    target: Target = None,
    from_stage: FromStage = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    learning_rate: LearningRate = None,
    patience: Patience = None,
    machine_type: MachineType = None,
    spot: Spot = None,
    max_hours: MaxHours = None,
    dry_run: DryRun = False,
) -> None:
    """Train as a Vertex AI custom job (prebuilt TensorFlow CPU container) in gcp.region; follow it here.

    Example: taxifare cloud vertex-train --size 1m --source bigquery --target mlflow --epochs 30
    """
    flags = _flags(source, target, epochs, batch_size, learning_rate, patience)
    flags |= {"cloud.machine_type": machine_type, "cloud.spot": spot, "cloud.max_hours": max_hours}
    _train(
        ctx, "vertex", size=size, month=month, from_stage=from_stage, flags=flags,
        keep_vm=False, dry_run=dry_run,
    )  # fmt: skip


@app.command("local-train")
def local_train(
    ctx: typer.Context,
    size: Size = None,
    month: Month = None,
    source: Source = None,
    target: Target = None,
    from_stage: FromStage = None,
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    learning_rate: LearningRate = None,
    patience: Patience = None,
    dry_run: DryRun = False,
) -> None:
    """The same job on this machine, through the bucket's job folder: tries the set-up for free.

    Example: taxifare cloud local-train --size 1k --epochs 2
    """
    flags = _flags(source, target, epochs, batch_size, learning_rate, patience)
    _train(
        ctx, "local", size=size, month=month, from_stage=from_stage, flags=flags,
        keep_vm=False, dry_run=dry_run,
    )  # fmt: skip


@app.command("jobs")
def jobs(ctx: typer.Context) -> None:
    """List the jobs in the bucket: state, machine, age, a rough cost estimate.

    Example: taxifare cloud jobs --json
    """
    st = state(ctx)
    summaries = st.app().cloud_jobs()
    rows = []
    for s in summaries:
        age = "" if s.hours is None else (f"{s.hours * 60:.0f} min" if s.hours < 2 else f"{s.hours:.1f} h")
        cost = "" if s.cost_usd is None else f"~${s.cost_usd:,.2f}"
        rows.append((s.job_id, s.runner, s.state, s.machine, age, cost))
    st.output.result(
        [s.as_dict() for s in summaries],
        st.output.table(
            f"{len(summaries)} job(s)" if summaries else "no cloud jobs yet: taxifare cloud vm-train",
            ["job", "runner", "state", "machine", "age", "cost (estimate)"],
            rows,
        ),
    )


@app.command("logs")
def logs(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job id (taxifare cloud jobs lists them).")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Follow the job until it ends.")] = False,
) -> None:
    """Print a job's log; with --follow, its progress until it ends (exit code as the job's).

    Example: taxifare cloud logs taxifare-20250301-142501-3fa2 --follow
    """
    st = state(ctx)
    taxifare = st.app()
    folder, spec = taxifare.job_folder(job_id)
    if follow:
        _follow(taxifare, st.output, job_id, str(spec.get("runner", "")))
        return
    text = folder.log()
    if st.output.json_mode:
        done = folder.done()
        st.output.result({"job_id": job_id, "log": text, "done": done.as_dict() if done else None})
    elif text:
        _write(text)
    else:
        for line in folder.progress():
            plain = line.plain()
            if plain:
                _write(plain)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job id (taxifare cloud jobs lists them).")],
) -> None:
    """Stop a job: delete its VM, or cancel its Vertex AI job.

    Example: taxifare cloud cancel taxifare-20250301-142501-3fa2
    """
    st = state(ctx)
    stopped = st.app().cancel_cloud_job(job_id)
    st.output.result(
        {"job_id": job_id, "stopped": stopped},
        f"job {job_id}: {'stopped' if stopped else 'nothing was running'}",
    )
