"""Option types shared by several commands; their choices come from `core.vocabulary`."""

from __future__ import annotations

from typing import Annotated

import typer

from taxifare_cli.core.vocabulary import LoadableStage, RegistryBackend, RideOrigin, StoreBackend

Size = Annotated[
    str | None,
    typer.Option("--size", help="Dataset size: 1k, 10k, 100k, 500k, 1m or all (default: data.size)."),
]
Month = Annotated[
    str | None, typer.Option("--month", help="A month of 2015: jan, feb, mar, apr, may or jun.")
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would be done; change nothing.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Version = Annotated[int | None, typer.Option("--version", help="A model version number.", min=1)]
Source = Annotated[
    StoreBackend | None,
    typer.Option("--source", help="Where to read rides (default: storage.backend).", case_sensitive=False),
]
Origin = Annotated[
    RideOrigin | None,
    typer.Option(
        "--source",
        help="remote (data.remote_url) or synthetic (the simulator, offline).",
        case_sensitive=False,
    ),
]
Target = Annotated[
    RegistryBackend | None,
    typer.Option("--target", help="Model registry (default: registry.backend).", case_sensitive=False),
]
Stage = Annotated[
    LoadableStage | None, typer.Option("--stage", help="Use the model in this stage.", case_sensitive=False)
]

# The training flags `model train` and the `cloud` commands share.
FromStage = Annotated[
    LoadableStage | None,
    typer.Option("--from-stage", help="Continue training the model in this stage.", case_sensitive=False),
]
Epochs = Annotated[
    int | None,
    typer.Option(
        help="Epochs, over which the learning rate decays; early stopping may end sooner (training.epochs).",
        min=1,
    ),
]
BatchSize = Annotated[int | None, typer.Option(help="Rows per step (training.batch_size).", min=1)]
MAX_LEARNING_RATE = 1.0  # the same bound as the setting: a larger Adam step only diverges


def _learning_rate(value: float | None) -> float | None:
    """Refuse a rate training cannot use before anything starts (exit 2), not after it diverged."""
    if value is not None and not 0 < value <= MAX_LEARNING_RATE:  # also refuses nan
        raise typer.BadParameter(f"{value:g} is not in 0 < x <= {MAX_LEARNING_RATE:g} (try 1e-3)")
    return value


LearningRate = Annotated[
    float | None,
    typer.Option(
        help=f"Adam learning rate, 0 < x <= {MAX_LEARNING_RATE:g} (training.learning_rate).",
        callback=_learning_rate,
    ),
]
Patience = Annotated[int | None, typer.Option(help="Early-stopping patience (training.patience).", min=1)]
