"""`taxifare data`: get rides, see what is held where."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from taxifare_cli.cli._console import Output, human_bytes, human_time
from taxifare_cli.cli._context import state
from taxifare_cli.cli._options import DryRun, Month, Origin, Size, Yes
from taxifare_cli.core.vocabulary import CLOUD_STORES, CloudStore, StoreBackend
from taxifare_cli.errors import UsageError

if TYPE_CHECKING:
    from taxifare_cli.ports import DatasetInfo
    from taxifare_cli.services.transfer import TransferStep

app = typer.Typer(
    name="data",
    help="Get ride data and move it between disk, Cloud Storage and BigQuery.",
    no_args_is_help=True,
)


FetchFrom = Literal["remote", "synthetic", "gcs", "bigquery"]


@app.command()
def fetch(
    ctx: typer.Context,
    size: Size = None,
    month: Month = None,
    source: Annotated[
        FetchFrom | None,
        typer.Option(
            "--source",
            help="remote (data.remote_url), synthetic (the simulator, offline), "
            "or gcs / bigquery (pull back what was uploaded there).",
            case_sensitive=False,
        ),
    ] = None,
    checksum: Annotated[
        list[str] | None,
        typer.Option(
            "--checksum",
            help="With --source gcs: that exact version (sha256:..., see `data ls --versions`); repeatable.",
        ),
    ] = None,
    dry_run: DryRun = False,
) -> None:
    """Get train_ and val_ files of a size or month onto local disk.

    Example: taxifare data fetch --size 10k --source synthetic
    Example: taxifare data fetch --size 10k --source gcs --checksum sha256:9f2c...
    """
    st = state(ctx)
    if source in ("gcs", "bigquery"):
        steps = st.app().pull(source, size, month, checksums=checksum or (), dry_run=dry_run)
        _render_pulls(st.output, steps, dry_run)
        return
    if checksum:
        raise UsageError("--checksum needs --source gcs: only the bucket keeps versions")
    results = st.app(**{"data.origin": source}).fetch(size, month, dry_run=dry_run)
    out = st.output
    out.result({"dry_run": dry_run, "datasets": [r.as_dict() for r in results]})
    for r in results:
        if dry_run:
            held = f"(now: {r.info.rows} rows)" if r.info else "(not held yet)"
            out.info(f"would fetch {r.name} from {r.origin} {held}")
        elif r.info is not None:
            state_word = "unchanged" if r.unchanged else "fetched"
            size = human_bytes(r.info.bytes)
            out.success(f"{state_word} {r.name}: {r.info.rows:,} rows, {size} → {r.info.location}")


_PULLED = {"create": "fetched", "replace": "replaced"}


def _render_pulls(out: Output, steps: list[TransferStep], dry_run: bool) -> None:
    out.result({"dry_run": dry_run, "steps": [s.as_dict() for s in steps]})
    for s in steps:
        if s.action == "unchanged":
            held = (s.info.checksum or "") if s.info else ""
            out.info(f"{s.name}: the local file already holds it ({held[:19]})")
        elif dry_run:
            out.info(f"would {'fetch' if s.action == 'create' else 'replace'} {s.name} from {s.source}")
        elif s.info is not None:
            word = _PULLED.get(s.action, s.action)
            out.success(
                f"{word} {s.name} from {s.source}: {s.info.rows:,} rows, {human_bytes(s.info.bytes)}, "
                f"{(s.info.checksum or '')[:19]} → {s.info.location}"
            )


@app.command("ls")
def list_(
    ctx: typer.Context,
    versions: Annotated[
        bool,
        typer.Option("--versions", help="Every version each place holds (the bucket keeps each content)."),
    ] = False,
) -> None:
    """List the datasets each place holds: rows, bytes, checksum, source, when.

    Example: taxifare data ls --versions --json
    """
    st = state(ctx)
    held = st.app().data_versions() if versions else st.app().list_data()
    st.output.result(
        {kind: [i.as_dict() for i in infos] for kind, infos in held.items()},
        _tables(st.output, held, versions=versions),
    )


def _tables(out: Output, held: dict[str, list[DatasetInfo]], *, versions: bool = False) -> object:
    from rich.console import Group

    tables = []
    what = "version(s)" if versions else "dataset(s)"
    for kind, infos in held.items():
        rows = [
            (
                i.name,
                f"{i.rows:,}" if i.rows is not None else "?",
                human_bytes(i.bytes),
                # Versions are asked for by checksum: show enough of it to tell them apart.
                (i.checksum or "")[: 30 if versions else 19],
                i.source or "",
                human_time(i.updated),
            )
            for i in infos
        ]
        title = f"{kind}: {len(infos)} {what}" if infos else f"{kind}: nothing held"
        tables.append(out.table(title, ["name", "rows", "size", "checksum", "source", "updated"], rows))
    return Group(*tables)


def _render_steps(out: Output, steps: list[TransferStep], dry_run: bool) -> None:
    out.result({"dry_run": dry_run, "steps": [s.as_dict() for s in steps]})
    for s in steps:
        verb = "would " + s.action if dry_run else s.action
        out.info(f"{s.step} {s.name}: {verb} {s.source} → {s.destination}")


def _places(choice: str) -> tuple[CloudStore, ...]:
    return CLOUD_STORES if choice == "all" else tuple(c for c in CLOUD_STORES if c == choice)


@app.command()
def upload(
    ctx: typer.Context,
    to: Annotated[
        Literal["gcs", "bigquery", "all"],
        typer.Option("--to", help="gcs, bigquery, or all (bucket then tables).", case_sensitive=False),
    ],
    size: Size = None,
    month: Month = None,
    dry_run: DryRun = False,
) -> None:
    """Copy local train_/val_ files to the bucket and/or BigQuery tables; idempotent.

    Example: taxifare data upload --to all --size 100k
    """
    st = state(ctx)
    steps = st.app().upload(_places(to), size, month, dry_run=dry_run)
    _render_steps(st.output, steps, dry_run)


@app.command()
def reset(
    ctx: typer.Context,
    only: Annotated[
        StoreBackend | None,
        typer.Option("--only", help="Reset only local, gcs or bigquery.", case_sensitive=False),
    ] = None,
    source: Origin = None,
    yes: Yes = False,
    dry_run: DryRun = False,
) -> None:
    """Fetch the standard sizes, upload them to the bucket, (re)create the tables.

    Example: taxifare data reset --dry-run
    """
    st = state(ctx)
    scope = only or "all"
    if not dry_run and not yes:
        if not st.output.err.is_terminal or not sys.stdin.isatty():
            raise UsageError("data reset replaces data: pass --yes to confirm (or --dry-run to see the plan)")
        typer.confirm(f"Replace the standard datasets in {scope}?", abort=True, err=True)
    places = () if scope == "local" else _places(scope)
    steps = st.app(**{"data.origin": source}).reset(places, dry_run=dry_run)
    _render_steps(st.output, steps, dry_run)
