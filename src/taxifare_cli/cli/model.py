"""`taxifare model`: train, evaluate, predict, promote, list."""

from __future__ import annotations

from pathlib import Path
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
    Stage,
    Target,
    Version,
)
from taxifare_cli.core.vocabulary import PromotableStage
from taxifare_cli.errors import UsageError

if TYPE_CHECKING:
    from taxifare_cli.core.cleaning import CleaningReport

app = typer.Typer(
    name="model", help="Train, evaluate, version, promote and use the fare model.", no_args_is_help=True
)


def money(v: float | None) -> str:
    return "" if v is None else f"${v:,.2f}"


def report_cleaning(out: Output, label: str, report: CleaningReport) -> None:
    if report.rows_dropped:
        parts = ", ".join(f"{n:,} {reason}" for reason, n in report.dropped.most_common())
        out.info(f"{label}: kept {report.rows_out:,} of {report.rows_in:,} rows; dropped {parts}")


@app.command()
def train(
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
) -> None:
    """Train on train_<size|month>, validate on val_<...>, register a new version.

    Example: taxifare model train --size 100k --epochs 30
    """
    st = state(ctx)
    taxifare = st.app(
        **{
            "storage.backend": source,
            "registry.backend": target,
            "training.epochs": epochs,
            "training.batch_size": batch_size,
            "training.learning_rate": learning_rate,
            "training.patience": patience,
        }
    )
    part, val_part = taxifare.training_parts(size, month)
    out = st.output
    out.info(
        f"training on train_{part} from {taxifare.settings.storage.backend}, validating on val_{val_part}"
    )
    result = taxifare.train(size, month, from_stage=from_stage)
    report_cleaning(out, "train", result.train_report)
    m = result.metrics
    out.result(
        result.as_dict(),
        f"version {result.version.version}: val MAE {money(m['val_mae'])}, RMSE {money(m['val_rmse'])} "
        f"on {int(m['val_rows']):,} rows; {result.epochs_run} epochs (best {result.best_epoch}), "
        f"{result.duration_s:.0f} s",
    )
    if result.published is not None and result.published.warning:
        out.warn(result.published.warning)
    out.info(f"next: taxifare model promote --version {result.version.version} --stage Production")
    hint = taxifare.viewer_hint()
    if hint:
        out.info(f"the runs are in a local MLflow store; to look at them: {hint}")


@app.command()
def evaluate(
    ctx: typer.Context,
    size: Size = None,
    month: Month = None,
    stage: Stage = None,
    version: Version = None,
    source: Source = None,
    target: Target = None,
) -> None:
    """Report MAE and RMSE of a model on val_<size|month>; record it with the version.

    Example: taxifare model evaluate --stage Production --month feb
    """
    st = state(ctx)
    taxifare = st.app(**{"storage.backend": source, "registry.backend": target})
    result = taxifare.evaluate(taxifare.model_ref(version, stage), size, month)
    report_cleaning(st.output, result.dataset, result.report)
    m = result.metrics
    st.output.result(
        result.as_dict(),
        f"version {result.version.version} ({result.version.stage}) on {result.dataset}: "
        f"MAE {money(m['mae'])}, RMSE {money(m['rmse'])}, {int(m['rows']):,} rows",
    )


@app.command()
def predict(
    ctx: typer.Context,
    ride: Annotated[
        list[str] | None,
        typer.Option("--ride", help="FIELD=VALUE, once per raw field (passenger_count defaults to 1)."),
    ] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="CSV of raw rides, streamed in chunks.")
    ] = None,
    output_file: Annotated[
        Path | None, typer.Option("--output", help="Where to write key,fare_prediction (else stdout).")
    ] = None,
    stage: Stage = None,
    version: Version = None,
    target: Target = None,
) -> None:
    """Price one ride or a file of rides with a registered model (default: Production).

    Example: taxifare model predict --ride "pickup_datetime=2015-01-15 08:30:00 UTC"
    --ride pickup_longitude=-73.985 --ride pickup_latitude=40.758
    --ride dropoff_longitude=-73.78 --ride dropoff_latitude=40.644 --ride passenger_count=1
    """
    st = state(ctx)
    if bool(ride) == bool(input_file):
        raise UsageError("give either --ride FIELD=VALUE ... or --input rides.csv")
    if output_file is not None and input_file is None:
        raise UsageError("--output goes with --input")
    taxifare = st.app(**{"registry.backend": target})
    ref = taxifare.model_ref(version, stage)
    out = st.output
    if ride:
        res = taxifare.price_ride_fields(ref, ride)
        out.result(res.as_dict(), f"${res.fares[0]:.2f}")
        staged = "" if res.version.stage == "None" else f" ({res.version.stage})"
        out.info(f"priced by model version {res.version.version}{staged}")
        return
    assert input_file is not None
    file_res, frame = taxifare.price_file(ref, input_file, output_file)
    report_cleaning(out, str(input_file), file_res.report)
    if out.json_mode:
        payload = file_res.as_dict()
        if frame is not None:
            payload["predictions"] = frame.where(frame.notna(), None).to_dict(orient="records")
        out.result(payload)
    elif frame is not None:
        import sys

        frame.to_csv(sys.stdout, index=False)
    if output_file is not None:
        out.success(f"{file_res.predicted:,} of {file_res.rows:,} rides priced → {output_file}")


@app.command()
def promote(
    ctx: typer.Context,
    version: Annotated[int, typer.Option("--version", help="The version to promote.", min=1)],
    stage: Annotated[
        PromotableStage,
        typer.Option("--stage", help="Staging, Production or Archived.", case_sensitive=False),
    ],
    target: Target = None,
    dry_run: DryRun = False,
) -> None:
    """Move a version to a stage; the version that held it is archived.

    Example: taxifare model promote --version 3 --stage Production --dry-run
    """
    st = state(ctx)
    p = st.app(**{"registry.backend": target}).promote(version, stage, dry_run=dry_run)
    prev = f"; version {p.previous} {'would be archived' if p.dry_run else 'archived'}" if p.previous else ""
    verb = "would move" if p.dry_run else "moved"
    st.output.result(p.as_dict(), f"{verb} version {p.version} to {p.stage}{prev}")


@app.command("ls")
def list_(ctx: typer.Context, target: Target = None) -> None:
    """List model versions with their stage, metrics and the data they saw.

    Example: taxifare model ls --json
    """
    st = state(ctx)
    versions = st.app(**{"registry.backend": target}).models()
    rows = []
    for v in versions:
        last_eval = v.evaluations[-1] if v.evaluations else None
        problem = getattr(v, "problem", None)  # a damaged version, listed so it hides no other
        rows.append(
            (
                v.version,
                v.stage,
                v.created_at.astimezone().strftime("%Y-%m-%d %H:%M"),
                f"DAMAGED: {problem}" if problem else (v.data.get("train") or {}).get("dataset", ""),
                money(v.metrics.get("val_mae")),
                f"{money(last_eval['mae'])} on {last_eval['dataset']}" if last_eval else "",
                v.parent_version or "",
            )
        )
    st.output.result(
        [v.as_dict() for v in versions],
        st.output.table(
            f"{len(versions)} version(s)" if versions else "no model versions yet: run taxifare model train",
            ["version", "stage", "created", "trained on", "val MAE", "last evaluation", "from"],
            rows,
        ),
    )


@app.command()
def show(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(help="The version to show.", min=1)],
    target: Target = None,
) -> None:
    """Everything recorded about one version: metrics, params, the data it saw, its stages, its plots.

    Example: taxifare model show 3
    """
    from rich.console import Group

    st = state(ctx)
    details = st.app(**{"registry.backend": target}).show_model(version)
    v, out = details.version, st.output
    seen = []
    for split, d in v.data.items():
        if isinstance(d, dict):
            rows = (
                f"{d.get('rows_used', '?'):,} of {d.get('rows_read', '?'):,} rows"
                if d.get("rows_read")
                else ""
            )
            seen.append(
                (split, d.get("dataset", ""), d.get("source", ""), rows, (d.get("checksum") or "")[:23])
            )
    parts: list[Any] = [
        f"version {v.version} ({v.stage}), created {v.created_at.astimezone():%Y-%m-%d %H:%M}"
        + (f", fine-tuned from version {v.parent_version}" if v.parent_version else "")
        + (f", taxifare {v.package_version}" if v.package_version else ""),
        out.table("data seen", ["split", "dataset", "source", "rows used", "checksum"], seen),
        out.table("metrics", ["metric", "value"], [(k, _metric(m)) for k, m in sorted(v.metrics.items())]),
        out.table("params", ["param", "value"], [(k, str(p)) for k, p in sorted(v.params.items())]),
    ]
    if v.evaluations:
        parts.append(
            out.table(
                "evaluations",
                ["at", "dataset", "MAE", "decision"],
                [
                    (str(e.get("at", ""))[:16], e.get("dataset"), money(e.get("mae")), e.get("decision", ""))
                    for e in v.evaluations
                ],
            )
        )
    history = [
        f"{h['at'][:16]}  {h['stage']}  by {h['by']}"
        + (f" (replaced by version {h['replaced_by']})" if h.get("replaced_by") else "")
        for h in details.stage_history
    ]
    parts.append("stage history: " + ("; ".join(history) if history else "never promoted"))
    parts += [f"{name}: {where}" for name, where in v.plots.items()]
    out.result(details.as_dict(), Group(*parts))


@app.command()
def serve(
    ctx: typer.Context,
    stage: Stage = None,
    version: Version = None,
    target: Target = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = 8000,
    refresh: Annotated[
        float, typer.Option("--refresh", help="Seconds between checks for a newly promoted version.", min=0.1)
    ] = 5.0,
) -> None:
    """Serve the model over HTTP: GET /predict?pickup_datetime=...&..., POST /predict, /health, /model.

    Example: taxifare model serve --port 8000   (then curl 'http://127.0.0.1:8000/predict?...')
    """
    try:
        import uvicorn

        from taxifare_cli.web.api import create_api
    except ImportError as e:
        from taxifare_cli.errors import ConfigError

        raise ConfigError(
            f"model serve needs the web packages ({e.name} is not installed)",
            hint="pip install 'taxifare[serve]'",
        ) from None
    st = state(ctx)
    taxifare = st.app(**{"registry.backend": target})
    served = taxifare.served_model(taxifare.model_ref(version, stage), refresh_s=refresh)
    v = served.current.version
    follows = "" if version is not None else f", following {served.ref.stage}"
    st.output.info(
        f"serving version {v.version} ({v.stage}{follows}) on http://{host}:{port}  (Ctrl-C stops)"
    )
    st.output.info(f"  try: curl 'http://{host}:{port}/predict?{EXAMPLE_QUERY}'")
    uvicorn.run(create_api(served), host=host, port=port, log_level="warning", access_log=False)


EXAMPLE_QUERY = (
    "pickup_datetime=2015-01-15%2008:30:00%20UTC&pickup_longitude=-73.985&pickup_latitude=40.758"
    "&dropoff_longitude=-73.78&dropoff_latitude=40.644&passenger_count=1"
)


# `model reproduce` lives in its own module: it is a use case of data versions, not of pricing.
from taxifare_cli.cli.model_reproduce import reproduce  # noqa: E402

app.command("reproduce")(reproduce)


def _metric(value: float) -> str:
    """Counts in full (97,337 rows, not 9.734e+04); other figures to four significant digits."""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}"
