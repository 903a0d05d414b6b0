"""`taxifare workflow`: the monthly champion/challenger lifecycle, for a person or a cron job."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from taxifare_cli.cli._console import Output
from taxifare_cli.cli._context import state
from taxifare_cli.cli._options import DryRun, Epochs
from taxifare_cli.core.vocabulary import EngineName, Policy, RideOrigin

if TYPE_CHECKING:
    from taxifare_cli.services.workflow import MonthOutcome, WorkflowRun

app = typer.Typer(
    name="workflow",
    help="Retrain on fresh months and judge the challenger against Production.",
    no_args_is_help=True,
)

MonthOption = Annotated[
    str | None, typer.Option("--month", help="A 2015 month, jan..jun (default: the next one not done).")
]
SourceOption = Annotated[
    RideOrigin | None,
    typer.Option("--source", help="remote or synthetic (workflow.origin).", case_sensitive=False),
]
PolicyOption = Annotated[
    Policy | None,
    typer.Option(
        "--policy",
        help="manual: a better challenger waits in Staging; auto: it goes to Production (workflow.policy).",
        case_sensitive=False,
    ),
]
AutoPromote = Annotated[bool, typer.Option("--auto-promote", help="Same as --policy auto.")]
MinGain = Annotated[
    float | None,
    typer.Option("--min-gain", help="Dollars of MAE the challenger must gain (workflow.min_gain).", min=0),
]
EngineOption = Annotated[
    EngineName | None,
    typer.Option("--engine", help="local or prefect (workflow.engine).", case_sensitive=False),
]


def _flags(
    source: str | None,
    policy: str | None,
    auto_promote: bool,
    min_gain: float | None,
    engine: str | None,
    epochs: int | None,
) -> dict[str, Any]:
    return {
        "workflow.origin": source,
        "workflow.policy": "auto" if auto_promote else policy,
        "workflow.min_gain": min_gain,
        "workflow.engine": engine,
        "training.epochs": epochs,
    }


@app.command()
def run(
    ctx: typer.Context,
    month: MonthOption = None,
    source: SourceOption = None,
    policy: PolicyOption = None,
    auto_promote: AutoPromote = False,
    min_gain: MinGain = None,
    engine: EngineOption = None,
    epochs: Epochs = None,
    force: Annotated[bool, typer.Option("--force", help="Run a month that is done already.")] = False,
    dry_run: DryRun = False,
) -> None:
    """Fetch a month, evaluate Production and train a challenger on it, decide, tell a human.

    Example: taxifare workflow run --month feb --policy auto --min-gain 0.10
    """
    st = state(ctx)
    taxifare = st.app(**_flags(source, policy, auto_promote, min_gain, engine, epochs))
    result = taxifare.run_workflow(month, force=force, dry_run=dry_run)
    st.output.result(result.as_dict(), _render(st.output, result))


def _render(out: Output, result: WorkflowRun) -> Any:
    from rich.console import Group

    if result.status in ("skipped", "nothing-to-do"):
        out.info(result.reason)
        return None
    if result.plan is not None:
        plan = result.plan
        lines = [f"would run {plan['month']} (policy {plan['policy']}):"]
        lines += [f"  {i}. {step}" for i, step in enumerate(plan["steps"], start=1)]
        if plan["resumes"]:
            lines.append(f"  resuming an unfinished run: {', '.join(plan['resumes'])} done")
        return Group(*lines)
    assert result.outcome is not None
    o = result.outcome
    if o.notified is False:
        out.warn(f"the verdict was not delivered: {o.notify_error}")
    for warning in result.warnings:
        out.warn(warning)
    return Group(*outcome_lines(o))


def outcome_lines(o: MonthOutcome) -> list[str]:
    money = "${:.2f}".format
    lines = []
    for f in o.fetched:
        held = f.get("held") or {}
        lines.append(
            f"data: {f['name']} {held.get('rows', 0):,} rows ({'unchanged' if f['unchanged'] else 'fetched'})"
        )
    start = f"fine-tuned from version {o.parent_version}" if o.parent_version else "trained from scratch"
    if o.production_mae is None:
        lines.append(
            f"no Production model yet: version {o.challenger_version} {start}, MAE {money(o.challenger_mae)}"
        )
    else:
        lines.append(
            f"Production (version {o.production_version}) on val_{o.month}: MAE {money(o.production_mae)}; "
            f"challenger version {o.challenger_version} ({start}): MAE {money(o.challenger_mae)}"
        )
    if o.drift:
        lines.append(f"drift since {o.drift['reference']}: {o.drift['summary']}")
    promote = f"taxifare model promote --version {o.challenger_version} --stage Production"
    verdicts = {
        "promoted": f"verdict: version {o.challenger_version} is now in Production",
        "staged": f"verdict: version {o.challenger_version} waits in Staging; to use it run {promote}",
        "kept": f"verdict: version {o.challenger_version} does not beat Production by {money(o.min_gain)}; "
        "Production is unchanged",
    }
    lines.append(verdicts[o.verdict or "kept"])
    return lines


@app.command()
def simulate(
    ctx: typer.Context,
    from_month: Annotated[str, typer.Option("--from", help="First month (jan..jun).")] = "jan",
    to_month: Annotated[str, typer.Option("--to", help="Last month (jan..jun).")] = "jun",
    policy: Annotated[
        Policy,
        typer.Option(
            "--policy", help="auto (the default here: the replay promotes) or manual.", case_sensitive=False
        ),
    ] = "auto",
    min_gain: MinGain = None,
    engine: EngineOption = None,
    epochs: Epochs = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Where to write the PNG (default: workflow_simulation.png here)."),
    ] = None,
) -> None:
    """The passing of time: run the months in order and show how Production and the challengers fare.

    Example: taxifare workflow simulate --from jan --to jun
    """
    from taxifare_cli.cli.workflow_views import simulation_table

    st = state(ctx)
    taxifare = st.app(**_flags(None, policy, False, min_gain, engine, epochs))
    outcomes = taxifare.simulate_months(from_month, to_month)
    png = taxifare.plot_months(outcomes, plot or Path("workflow_simulation.png"))
    st.output.result(
        {"months": [o.as_dict() for o in outcomes], "plot": str(png) if png else None},
        simulation_table(st.output, outcomes),
    )
    if png is not None:
        st.output.success(f"MAE over the months → {png}")


@app.command()
def history(ctx: typer.Context) -> None:
    """Past workflow runs, newest first, with their numbers and decisions.

    Example: taxifare workflow history --json
    """
    from taxifare_cli.cli.workflow_views import history_table

    st = state(ctx)
    runs = list(reversed(st.app().history.runs()))
    st.output.result(runs, history_table(st.output, runs))


@app.command()
def schedule(
    ctx: typer.Context,
    cron: Annotated[str, typer.Option("--cron", help='When, as a cron expression, e.g. "0 3 2 * *".')],
    engine: EngineOption = None,
    policy: PolicyOption = None,
    install: Annotated[bool, typer.Option("--install", help="local: add the line to your crontab.")] = False,
) -> None:
    """Run the workflow on a schedule: a crontab line (local) or a Prefect deployment (prefect).

    Example: taxifare workflow schedule --cron "0 3 2 * *" --install
    """
    from taxifare_cli.cli.workflow_views import schedule_workflow

    st = state(ctx)
    schedule_workflow(st, cron=cron, engine=engine, policy=policy, install=install)
