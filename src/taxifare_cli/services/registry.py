"""promote_model and list_models: moving versions between stages, and showing them."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from taxifare_cli.core.vocabulary import PROMOTABLE_STAGES, Stage, displaced
from taxifare_cli.errors import UsageError
from taxifare_cli.ports import ModelRef, ModelRegistry, ModelVersion, Promotion


def who() -> str:
    """The user a promotion is recorded under."""
    try:
        return os.environ.get("TAXIFARE_USER") or getpass.getuser()
    except OSError:  # no login name (some containers)
        return "unknown"


def promote_model(registry: ModelRegistry, version: int, stage: Stage, *, dry_run: bool = False) -> Promotion:
    """Put `version` in `stage`; the previous holder is archived. A dry run changes nothing."""
    if stage not in PROMOTABLE_STAGES:
        raise UsageError(f"cannot promote to {stage!r}: choose {', '.join(PROMOTABLE_STAGES)}")
    registry.get(ModelRef(version=version))  # raises NotFoundError
    if dry_run:
        holder = next((v.version for v in registry.list() if v.stage == stage), None)
        previous = displaced(stage, version, holder)
        return Promotion(version, stage, previous, datetime.now(timezone.utc), who(), dry_run=True)
    return registry.promote(version, stage, by=who())


def list_models(registry: ModelRegistry) -> list[ModelVersion]:
    return registry.list()


@dataclass
class ModelDetails:
    """One version with everything recorded about it, and its moves between stages."""

    version: ModelVersion
    stage_history: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {**self.version.as_dict(), "stage_history": self.stage_history}


def show_model(registry: ModelRegistry, version: int) -> ModelDetails:
    """`version` (NotFoundError if absent) and each promotion that moved it, oldest first."""
    mv = registry.get(ModelRef(version=version))
    history = []
    for p in registry.promotions():
        if p.get("version") == version:
            history.append({"at": p.get("at"), "stage": p.get("stage"), "by": p.get("by")})
        elif p.get("previous") == version:  # displaced by another version's promotion
            history.append(
                {"at": p.get("at"), "stage": "Archived", "by": p.get("by"), "replaced_by": p.get("version")}
            )
    return ModelDetails(mv, history)
