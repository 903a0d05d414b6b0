"""`taxifare config`: see, check and start the settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from taxifare_cli.cli._context import state
from taxifare_cli.core.vocabulary import CLOUD_STORES
from taxifare_cli.errors import ConfigError

if TYPE_CHECKING:
    from taxifare_cli.settings import Settings

app = typer.Typer(name="config", help="Show, check and create the settings.", no_args_is_help=True)


@app.command()
def show(ctx: typer.Context) -> None:
    """Print the effective settings and where each value came from (secrets masked).

    Example: taxifare config show --json
    """
    from taxifare_cli.settings import settings_table

    st = state(ctx)
    loaded = st.load()
    rows = settings_table(loaded)
    payload = {
        "config_file": str(loaded.config_file) if loaded.config_file else None,
        "settings": {key: {"value": value, "origin": origin} for key, value, origin in rows},
    }
    where = f"config file: {loaded.config_file}" if loaded.config_file else "config file: none"
    st.output.result(payload, st.output.table(where, ["setting", "value", "from"], rows))


@app.command()
def check(ctx: typer.Context) -> None:
    """Validate the settings; one line per problem, exit 3 if any.

    Example: TAXIFARE_DATA__CHUNK_SIZE=10 taxifare config check
    """
    from taxifare_cli.settings import collect_problems

    st = state(ctx)
    loaded, problems = collect_problems(config=st.config)
    if loaded is not None:
        problems = _cross_checks(loaded.settings)
    st.output.result({"ok": not problems, "problems": problems})
    for p in problems:
        st.output.error(p)
    if problems:
        raise typer.Exit(ConfigError.exit_code)
    st.output.success(
        "settings are valid" + (f" (file {loaded.config_file})" if loaded and loaded.config_file else "")
    )


def _cross_checks(s: Settings) -> list[str]:
    """Problems no single field shows: a backend chosen without what it needs."""
    problems = []
    if s.storage.backend in CLOUD_STORES and not s.gcp.project:
        problems.append(f"storage.backend = {s.storage.backend} needs gcp.project (env GCP_PROJECT)")
    if s.storage.backend == "gcs" and not s.storage.bucket:
        problems.append("storage.backend = gcs needs storage.bucket (env BUCKET_NAME)")
    if s.notify.backend == "webhook" and not s.notify.webhook_url:
        problems.append("notify.backend = webhook needs notify.webhook_url")
    return problems


@app.command()
def init(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("taxifare.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a starter config listing every setting with its default.

    Example: taxifare config init && $EDITOR taxifare.toml
    """
    st = state(ctx)
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force to overwrite it")
    from taxifare_cli.files.atomic import write_text_atomic
    from taxifare_cli.settings import example_toml

    write_text_atomic(path, example_toml())
    st.output.result({"written": str(path)})
    st.output.success(f"wrote {path}")
