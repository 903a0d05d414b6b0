"""`taxifare workflow`: the lifecycle of one month, for a person or a cron job."""

from __future__ import annotations

from typing import Annotated

import typer

from taxifare_cli.cli._context import state
from taxifare_cli.core.vocabulary import RideOrigin

app = typer.Typer(name="workflow", help="Run the model's lifecycle on fresh months.", no_args_is_help=True)


@app.command()
def run(
    ctx: typer.Context,
    month: Annotated[
        str | None, typer.Option("--month", help="2015 month: jan..jun (workflow.month).")
    ] = None,
    source: Annotated[
        RideOrigin | None,
        typer.Option("--source", help="remote or synthetic (workflow.origin).", case_sensitive=False),
    ] = None,
    auto_promote: Annotated[
        bool | None,
        typer.Option("--auto-promote/--no-auto-promote", help="Promote a better model without asking."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Most epochs (training.epochs).", min=1)] = None,
) -> None:
    """Fetch a month, retrain, compare with Production, promote if better, price rides.

    Example: taxifare workflow run --month feb --auto-promote
    """
    st = state(ctx)
    taxifare = st.app(
        **{
            "workflow.month": month,
            "workflow.origin": source,
            "workflow.auto_promote": auto_promote,
            "training.epochs": epochs,
        }
    )
    settings = taxifare.settings
    w = settings.workflow
    out = st.output
    out.info(f"workflow for {w.month} 2015: rides from {w.origin}, models in {settings.registry.backend}")
    result = taxifare.run_month()
    new = result.trained.version.version
    lines = []
    for f in result.fetched:
        if f.info is not None:
            lines.append(f"data: {f.name} {f.info.rows:,} rows ({'unchanged' if f.unchanged else 'fetched'})")
    if result.production_mae is None:
        lines.append(
            f"no Production model yet: version {new} trained from scratch, val MAE ${result.new_mae:.2f}"
        )
    else:
        lines.append(
            f"Production (version {result.production_before}) on val_{w.month}: "
            f"MAE ${result.production_mae:.2f}; "
            f"new version {new} (fine-tuned from it): MAE ${result.new_mae:.2f}"
        )
    verdicts = {
        "promoted": f"verdict: version {new} is now in Production",
        "staged": f"verdict: version {new} beats Production and waits in Staging; to use it run "
        f"taxifare model promote --version {new} --stage Production",
        "kept": f"verdict: version {new} does not beat Production by ${w.min_improvement:.2f}; "
        "Production is unchanged",
    }
    lines.append(verdicts[result.verdict])
    if result.samples:
        table = out.table(
            "rides of the month priced by Production",
            ["pickup (UTC)", "from", "to", "fare", "predicted"],
            [
                (s["pickup_datetime"], s["from"], s["to"], f"${s['fare']:.2f}", f"${s['predicted']:.2f}")
                for s in result.samples
            ],
        )
    else:
        table = None
    from rich.console import Group

    out.result(result.as_dict(), Group(*lines, *([table] if table is not None else [])))
