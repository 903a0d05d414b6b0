"""`taxifare data`: get rides, see what is held where."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Any

import typer

from taxifare_cli.cli._console import human_bytes, human_time
from taxifare_cli.cli._context import AppState, state
from taxifare_cli.cli._options import DryRun, Month, Origin, Size, Yes
from taxifare_cli.errors import UsageError

app = typer.Typer(
    name="data",
    help="Get ride data and move it between disk, Cloud Storage and BigQuery.",
    no_args_is_help=True,
)


def pick_part(size: str | None, month: str | None, default: str | None = None) -> str:
    """The one size or month a command works on."""
    if size and month:
        raise UsageError("give --size or --month, not both")
    part = size or month or default
    if not part:
        raise UsageError("give --size (1k, 10k, 100k, 500k, 1m, all) or --month (jan..jun)")
    from taxifare_cli.core.schema import check_part

    try:
        return check_part(part)
    except ValueError as e:
        raise UsageError(str(e)) from None


@app.command()
def fetch(
    ctx: typer.Context,
    size: Size = None,
    month: Month = None,
    source: Annotated[
        Origin | None,
        typer.Option("--source", help="remote (data.remote_url) or synthetic (the simulator, offline)."),
    ] = None,
    dry_run: DryRun = False,
) -> None:
    """Get train_ and val_ files of a size or month onto local disk.

    Example: taxifare data fetch --size 10k --source synthetic
    """
    st = state(ctx)
    loaded = st.load(**{"data.origin": source.value if source else None})
    settings = loaded.settings
    part = pick_part(size, month, settings.data.size if not (size or month) else None)

    from taxifare_cli.bootstrap import build_source, build_store
    from taxifare_cli.services.data import fetch_data

    store = build_store(settings, "local")
    rides = build_source(settings)
    results = fetch_data(part, store, rides, dry_run=dry_run, progress=st.output.progress())  # type: ignore[arg-type]
    out = st.output
    out.result({"dry_run": dry_run, "datasets": [r.as_dict() for r in results]})
    for r in results:
        if dry_run:
            held = f"(now: {r.info.rows} rows)" if r.info else "(not held yet)"
            out.info(f"would fetch {r.name} from {r.origin} {held}")
        elif r.info is not None:
            state_word = "unchanged" if r.unchanged else "fetched"
            out.success(
                f"{state_word} {r.name}: {r.info.rows:,} rows, {human_bytes(r.info.bytes)} "
                f"→ {r.info.location}"
            )


@app.command("ls")
def list_(ctx: typer.Context) -> None:
    """List the datasets each place holds: rows, bytes, checksum, source, when.

    Example: taxifare data ls --json
    """
    st = state(ctx)
    settings = st.load().settings
    from taxifare_cli.bootstrap import build_store
    from taxifare_cli.services.data import list_data

    stores = [build_store(settings, "local")]
    # The cloud places are shown when they are configured (a bucket, a project).
    if settings.storage.bucket:
        stores.append(build_store(settings, "gcs"))
    if settings.gcp.project:
        stores.append(build_store(settings, "bigquery"))
    held = list_data(stores)
    st.output.result(
        {kind: [i.as_dict() for i in infos] for kind, infos in held.items()},
        _tables(st, held),
    )


def _tables(st: object, held: dict[str, list]) -> object:
    from rich.console import Group

    from taxifare_cli.cli._context import AppState

    assert isinstance(st, AppState)
    tables = []
    for kind, infos in held.items():
        rows = [
            (
                i.name,
                f"{i.rows:,}" if i.rows is not None else "?",
                human_bytes(i.bytes),
                (i.checksum or "")[:19],
                i.source or "",
                human_time(i.updated),
            )
            for i in infos
        ]
        title = f"{kind}: {len(infos)} dataset(s)" if infos else f"{kind}: nothing held"
        tables.append(st.output.table(title, ["name", "rows", "size", "checksum", "source", "updated"], rows))
    return Group(*tables)


class UploadTarget(str, Enum):
    gcs = "gcs"
    bigquery = "bigquery"
    all = "all"


class ResetScope(str, Enum):
    local = "local"
    gcs = "gcs"
    bigquery = "bigquery"


def _render_steps(st: AppState, steps: list[Any], dry_run: bool) -> None:
    st.output.result({"dry_run": dry_run, "steps": [s.as_dict() for s in steps]})
    for s in steps:
        verb = "would " + s.action if dry_run else s.action
        st.output.info(f"{s.step} {s.name}: {verb} {s.source} → {s.destination}")


@app.command()
def upload(
    ctx: typer.Context,
    to: Annotated[UploadTarget, typer.Option("--to", help="gcs, bigquery, or all (bucket then tables).")],
    size: Size = None,
    month: Month = None,
    dry_run: DryRun = False,
) -> None:
    """Copy local train_/val_ files to the bucket and/or BigQuery tables; idempotent.

    Example: taxifare data upload --to all --size 100k
    """
    st = state(ctx)
    settings = st.load().settings
    part = pick_part(size, month, None if (size or month) else settings.data.size)
    from taxifare_cli.bootstrap import build_store
    from taxifare_cli.services.data import dataset_names
    from taxifare_cli.services.transfer import upload_data

    names = dataset_names(part)
    local = build_store(settings, "local")
    steps = []
    progress = st.output.progress()
    if to in (UploadTarget.gcs, UploadTarget.all):
        steps += upload_data(
            names, src=local, dest=build_store(settings, "gcs"), dry_run=dry_run, progress=progress
        )
    if to in (UploadTarget.bigquery, UploadTarget.all):
        bq = build_store(settings, "bigquery")
        steps += upload_data(names, src=local, dest=bq, dry_run=dry_run, progress=progress)
    _render_steps(st, steps, dry_run)


@app.command()
def reset(
    ctx: typer.Context,
    only: Annotated[
        ResetScope | None, typer.Option("--only", help="Reset only local, gcs or bigquery.")
    ] = None,
    source: Annotated[
        Origin | None, typer.Option("--source", help="remote or synthetic (data.origin).")
    ] = None,
    yes: Yes = False,
    dry_run: DryRun = False,
) -> None:
    """Fetch the standard sizes, upload them to the bucket, (re)create the tables.

    Example: taxifare data reset --dry-run
    """
    st = state(ctx)
    settings = st.load(**{"data.origin": source.value if source else None}).settings
    from taxifare_cli.bootstrap import build_source, build_store
    from taxifare_cli.services.transfer import reset_sources

    scope = only.value if only else "all"
    dests = []
    if scope in ("gcs", "all"):
        dests.append(build_store(settings, "gcs"))
    if scope in ("bigquery", "all"):
        dests.append(build_store(settings, "bigquery"))
    if not dry_run and not yes:
        if not st.output.err.is_terminal or not sys.stdin.isatty():
            raise UsageError("data reset replaces data: pass --yes to confirm (or --dry-run to see the plan)")
        typer.confirm(f"Replace the standard datasets in {scope}?", abort=True, err=True)
    from taxifare_cli.adapters.storage.local import LocalStore

    local = LocalStore(settings.data_dir)
    steps = reset_sources(
        local=local,
        source=build_source(settings),
        dests=dests,
        dry_run=dry_run,
        progress=st.output.progress(),
    )
    _render_steps(st, steps, dry_run)
