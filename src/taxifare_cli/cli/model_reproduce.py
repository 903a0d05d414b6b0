"""`taxifare model reproduce VERSION`: rebuild a version from its record, compare its val MAE."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from taxifare_cli.cli._context import state
from taxifare_cli.cli._options import DryRun, Target
from taxifare_cli.errors import DataError

if TYPE_CHECKING:
    from taxifare_cli.services.reproduce import ReproduceResult


class NotReproduced(DataError):
    """The rebuilt model's val MAE is outside the tolerance of the recorded one (exit 4)."""


def reproduce(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(help="The version to rebuild.", min=1)],
    target: Target = None,
    dry_run: DryRun = False,
    register: Annotated[
        bool, typer.Option("--register", help="Register the rebuilt model as a new version.")
    ] = False,
    tolerance: Annotated[
        float | None,
        typer.Option(
            "--tolerance",
            help="Largest val MAE difference, in dollars, that counts as the same (default 0.005).",
            min=0.0,
        ),
    ] = None,
) -> None:
    """Retrain VERSION on the exact data it saw, with its recorded parameters and seed.

    The record comes from the registry, else (a version registered on another
    machine) from the copy published to the bucket. The data comes from the
    recorded store, the local file when its checksum matches, else the
    bucket's copy of that checksum. Exit 0 only when the new
    val MAE is within the tolerance of the recorded one; 4 when it is not, or
    when the data is held nowhere. Registers nothing unless --register.

    Example: taxifare model reproduce 3 --dry-run
    """
    st = state(ctx)
    taxifare = st.app(**{"registry.backend": target})
    out = st.output
    result = taxifare.reproduce(
        version, dry_run=dry_run, register=register, tolerance=tolerance, announce=out.info
    )
    if result.record_from:
        out.info(f"version {version} is not in this registry: using its record from {result.record_from}")
    for d in result.data:
        out.info(f"{d.split}: {d.dataset} {d.checksum[:19]} from {d.where} ({d.location})")
        if d.note:
            out.warn(f"{d.split}: {d.note}")
    out.result(result.as_dict(), _summary(result))
    if result.registered is not None:
        out.info(f"registered as version {result.registered}")
    if result.agrees is False:
        raise NotReproduced(
            f"version {version} did not reproduce: val MAE {result.reproduced['val_mae']:.4f} "
            f"against {result.recorded['val_mae']:.4f} recorded (tolerance {result.tolerance})",
            hint="same data and seed: a larger gap than threads explain means other code or parameters",
        )


def _summary(r: ReproduceResult) -> str:
    recorded = f"${r.recorded['val_mae']:.4f}"
    if r.dry_run:
        return f"version {r.version} can be rebuilt: recorded val MAE {recorded} (dry run: nothing trained)"
    diff = r.difference or 0.0
    verdict = "reproduced" if r.agrees else "NOT reproduced"
    return (
        f"version {r.version} {verdict}: val MAE ${r.reproduced['val_mae']:.4f} against {recorded} "
        f"recorded (difference ${diff:.4f}, tolerance ${r.tolerance}); "
        f"{int(r.reproduced['epochs_run'])} epochs (best {int(r.reproduced['best_epoch'])}), "
        f"{r.duration_s:.0f} s"
    )
