"""`taxifare model`: train, evaluate, predict, promote, list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from taxifare_cli.cli._context import AppState, state
from taxifare_cli.cli._options import DryRun, Month, PromoteStage, Size, Source, Stage, StageName, Target
from taxifare_cli.cli.data import pick_part
from taxifare_cli.errors import UsageError
from taxifare_cli.ports import ModelRef

app = typer.Typer(
    name="model", help="Train, evaluate, version, promote and use the fare model.", no_args_is_help=True
)


def _ref(version: int | None, stage: StageName | None, default_stage: str = "Production") -> ModelRef:
    if version is not None and stage is not None:
        raise UsageError("give --version or --stage, not both")
    if version is not None:
        return ModelRef(version=version)
    return ModelRef(stage=(stage.value if stage else default_stage))  # type: ignore[arg-type]


def _fmt(v: float | None, money: bool = True) -> str:
    if v is None:
        return ""
    return f"${v:,.2f}" if money else f"{v:,.0f}"


@app.command()
def train(
    ctx: typer.Context,
    size: Size = None,
    month: Month = None,
    source: Source = None,
    target: Target = None,
    from_stage: Annotated[
        StageName | None,
        typer.Option("--from-stage", help="Continue training the model in this stage.", case_sensitive=False),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Most epochs (training.epochs).", min=1)] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Rows per step (training.batch_size).", min=1)
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="Adam learning rate (training.learning_rate).", min=0)
    ] = None,
    patience: Annotated[
        int | None, typer.Option(help="Early-stopping patience (training.patience).", min=1)
    ] = None,
) -> None:
    """Train on train_<size|month>, validate on val_<...>, register a new version.

    Example: taxifare model train --size 100k --epochs 30
    """
    st = state(ctx)
    settings = st.load(
        **{
            "storage.backend": source.value if source else None,
            "registry.backend": target.value if target else None,
            "training.epochs": epochs,
            "training.batch_size": batch_size,
            "training.learning_rate": learning_rate,
            "training.patience": patience,
        }
    ).settings
    part = pick_part(size, month, None if (size or month) else settings.data.size)
    val_part = settings.data.val_size if not (size or month) and settings.data.val_size else part

    from taxifare_cli.bootstrap import build_hyperparams, build_registry, build_store
    from taxifare_cli.services.training import train_model

    hp = build_hyperparams(settings)
    store, registry = build_store(settings), build_registry(settings)
    out = st.output
    out.info(f"training on train_{part} from {store.kind}, validating on val_{val_part}")
    result = train_model(
        store,
        registry,
        train_name=f"train_{part}",
        val_name=f"val_{val_part}",
        chunk_size=settings.data.chunk_size,
        hp=hp,
        from_stage=from_stage.value if from_stage else None,
        progress=out.progress(),
    )
    _report_cleaning(st, "train", result.train_report)
    m = result.metrics
    out.result(
        result.as_dict(),
        f"version {result.version.version}: val MAE {_fmt(m['val_mae'])}, RMSE {_fmt(m['val_rmse'])} "
        f"on {int(m['val_rows']):,} rows; {result.epochs_run} epochs (best {result.best_epoch}), "
        f"{result.duration_s:.0f} s",
    )
    out.info(f"next: taxifare model promote --version {result.version.version} --stage Production")


def _report_cleaning(st: AppState, label: str, report: Any) -> None:
    if report.rows_dropped:
        parts = ", ".join(f"{n:,} {reason}" for reason, n in report.dropped.most_common())
        st.output.info(f"{label}: kept {report.rows_out:,} of {report.rows_in:,} rows; dropped {parts}")


@app.command()
def evaluate(
    ctx: typer.Context,
    size: Size = None,
    month: Month = None,
    stage: Stage = None,
    version: Annotated[int | None, typer.Option("--version", help="A model version.", min=1)] = None,
    source: Source = None,
    target: Target = None,
) -> None:
    """Report MAE and RMSE of a model on val_<size|month>; record it with the version.

    Example: taxifare model evaluate --stage Production --month feb
    """
    st = state(ctx)
    settings = st.load(
        **{
            "storage.backend": source.value if source else None,
            "registry.backend": target.value if target else None,
        }
    ).settings
    part = pick_part(size, month, None if (size or month) else (settings.data.val_size or settings.data.size))
    from taxifare_cli.bootstrap import build_registry, build_store
    from taxifare_cli.services.evaluation import evaluate_model

    result = evaluate_model(
        build_store(settings),
        build_registry(settings),
        _ref(version, stage),
        dataset=f"val_{part}",
        chunk_size=settings.data.chunk_size,
        progress=st.output.progress(),
    )
    _report_cleaning(st, result.dataset, result.report)
    m = result.metrics
    st.output.result(
        result.as_dict(),
        f"version {result.version.version} ({result.version.stage}) on {result.dataset}: "
        f"MAE {_fmt(m['mae'])}, RMSE {_fmt(m['rmse'])}, {int(m['rows']):,} rows",
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
    version: Annotated[int | None, typer.Option("--version", help="A model version.", min=1)] = None,
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
    settings = st.load(**{"registry.backend": target.value if target else None}).settings
    from taxifare_cli.bootstrap import build_registry
    from taxifare_cli.services import prediction

    registry = build_registry(settings)
    ref = _ref(version, stage)
    out = st.output
    if ride:
        res = prediction.predict_rides(registry, ref, prediction.parse_ride(ride))
        out.result(res.as_dict(), f"${res.fares[0]:.2f}")
        out.info(f"priced by model version {res.version.version} ({res.version.stage})")
        return
    assert input_file is not None
    file_res, frame = prediction.predict_file(
        registry,
        ref,
        input_file,
        output_file,
        chunk_size=settings.data.chunk_size,
        progress=out.progress(),
    )
    _report_cleaning(st, str(input_file), file_res.report)
    if output_file is None and frame is not None and not out.json_mode:
        import sys

        frame.to_csv(sys.stdout, index=False)
    elif out.json_mode:
        payload = file_res.as_dict()
        if frame is not None:
            payload["predictions"] = frame.where(frame.notna(), None).to_dict(orient="records")
        out.result(payload)
    if output_file is not None:
        out.success(f"{file_res.predicted:,} of {file_res.rows:,} rides priced → {output_file}")


@app.command()
def promote(
    ctx: typer.Context,
    version: Annotated[int, typer.Option("--version", help="The version to promote.", min=1)],
    stage: Annotated[PromoteStage, typer.Option("--stage", help="Staging, Production or Archived.")],
    target: Target = None,
    dry_run: DryRun = False,
) -> None:
    """Move a version to a stage; the version that held it is archived.

    Example: taxifare model promote --version 3 --stage Production --dry-run
    """
    st = state(ctx)
    settings = st.load(**{"registry.backend": target.value if target else None}).settings
    from taxifare_cli.bootstrap import build_registry
    from taxifare_cli.services.registry import promote_model

    p = promote_model(build_registry(settings), version, stage.value, dry_run=dry_run)
    prev = (
        f"; version {p.previous} would be archived"
        if p.dry_run and p.previous
        else (f"; version {p.previous} archived" if p.previous else "")
    )
    verb = "would move" if p.dry_run else "moved"
    st.output.result(p.as_dict(), f"{verb} version {p.version} to {p.stage}{prev}")


@app.command("ls")
def list_(ctx: typer.Context, target: Target = None) -> None:
    """List model versions with their stage, metrics and the data they saw.

    Example: taxifare model ls --json
    """
    st = state(ctx)
    settings = st.load(**{"registry.backend": target.value if target else None}).settings
    from taxifare_cli.bootstrap import build_registry
    from taxifare_cli.services.registry import list_models

    versions = list_models(build_registry(settings))
    rows = []
    for v in versions:
        last_eval = v.evaluations[-1] if v.evaluations else None
        rows.append(
            (
                v.version,
                v.stage,
                v.created_at.astimezone().strftime("%Y-%m-%d %H:%M"),
                (v.data.get("train") or {}).get("dataset", ""),
                _fmt(v.metrics.get("val_mae")),
                f"{_fmt(last_eval['mae'])} on {last_eval['dataset']}" if last_eval else "",
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
