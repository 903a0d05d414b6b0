"""What `workflow run` reports (a month done, skipped, planned, or nothing left) and plans (--dry-run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from taxifare_cli.errors import NotFoundError
from taxifare_cli.ports import ModelRef, RideSource

if TYPE_CHECKING:
    from taxifare_cli.services.workflow import MonthOutcome, MonthRun


def next_month(done: list[str], months: tuple[str, ...]) -> str | None:
    """The first month of `months` not in `done`, or None when all are done."""
    return next((m for m in months if m not in done), None)


@dataclass
class WorkflowRun:
    """What `workflow run` did: a finished month, a month skipped or planned, or nothing left to do."""

    month: str | None
    status: Literal["done", "skipped", "planned", "nothing-to-do"]
    outcome: MonthOutcome | None = None
    plan: dict[str, Any] | None = None
    reason: str = ""
    warnings: list[str] = field(default_factory=list)  # what went wrong without failing the month

    def as_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "status": self.status,
            "reason": self.reason or None,
            **({"warnings": self.warnings} if self.warnings else {}),
            **({"plan": self.plan} if self.plan is not None else {}),
            **(self.outcome.as_dict() if self.outcome is not None else {}),
        }


def plan_month(run: MonthRun, source: RideSource) -> dict[str, Any]:
    """What running `run` would do, touching nothing (for --dry-run)."""
    try:
        champion: int | None = run.registry.get(ModelRef(stage="Production")).version
    except NotFoundError:
        champion = None
    o = run.options
    start = (
        "Production's weights" if champion is not None and o.retrain_from == "production" else "new weights"
    )
    then = "goes to Production" if o.policy == "auto" else "waits in Staging for `model promote`"
    rule = (
        f"no Production yet: the challenger {then}"
        if champion is None
        else f"the challenger must beat version {champion}'s MAE by ${o.min_gain:.2f}; then it {then}"
    )
    evaluate = f"evaluate Production (version {champion}) on {run.val_name} and measure drift"
    steps = [
        f"fetch {run.train_name} and {run.val_name} from {source.describe(run.train_name)}",
        *(f"upload them to {d.kind}" for d in run.uploads),
        evaluate if champion else "no Production to evaluate",
        f"train a challenger on {run.train_name} from {start} ({o.engine} engine)",
        rule,
        f"tell a human ({run.notifier.kind})",
    ]
    resumed = sorted(k for k, v in run.journal.items() if isinstance(v, dict))
    return {
        "month": run.month,
        "policy": o.policy,
        "min_gain": o.min_gain,
        "engine": o.engine,
        "production_version": champion,
        "resumes": resumed,
        "steps": steps,
    }
