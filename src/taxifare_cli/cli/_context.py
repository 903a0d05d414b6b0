"""What every command gets from the root, through the click context: settings' origin, output, the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from taxifare_cli.cli._console import Output

if TYPE_CHECKING:
    from taxifare_cli.app import Taxifare
    from taxifare_cli.settings import LoadedSettings


@dataclass
class AppState:
    config: Path | None = None
    output: Output = field(default_factory=Output)

    def load(self, **flags: Any) -> LoadedSettings:
        """Settings with the flags the user typed (dotted keys; None = not typed)."""
        from taxifare_cli.settings import load_settings  # pydantic costs start-up time

        return load_settings(config=self.config, flags=flags)

    def app(self, **flags: Any) -> Taxifare:
        """The application object on these settings, reporting progress to this output."""
        from taxifare_cli.app import Taxifare

        return Taxifare(self.load(**flags).settings, progress=self.output.progress())


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj
