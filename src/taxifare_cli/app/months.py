"""The workflow over many months, and on a schedule: mixed into Taxifare."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from taxifare_cli import bootstrap
from taxifare_cli.core.schema import MONTHS
from taxifare_cli.errors import UsageError
from taxifare_cli.ports import SILENT, Progress, ScheduledEngine
from taxifare_cli.settings import Settings

if TYPE_CHECKING:
    from taxifare_cli.services.workflow import MonthOutcome, WorkflowRun


class MonthsInOrder:
    """`workflow simulate` and `workflow schedule --engine prefect` as methods."""

    settings: Settings
    progress: Progress = SILENT

    def workflow_month(self, month: str | None) -> str | None:
        raise NotImplementedError  # Taxifare's

    def run_workflow(
        self, month: str | None = None, *, force: bool = False, dry_run: bool = False
    ) -> WorkflowRun:
        raise NotImplementedError  # Taxifare's

    def serve_workflow(self, cron: str) -> None:
        """Run the workflow on `cron` with an engine that schedules (prefect), until stopped."""
        engine = bootstrap.build_engine(self.settings)
        if not isinstance(engine, ScheduledEngine):
            raise UsageError(
                f"the {engine.kind} engine does not schedule by itself",
                hint="use cron: taxifare workflow schedule --engine local --cron ... --install",
            )
        engine.serve(cron, lambda: self.run_workflow().as_dict())

    def simulate_months(self, first: str, last: str) -> list[MonthOutcome]:
        """The passing of time: each month from `first` to `last` through the workflow, in order."""
        months = list(MONTHS)
        a, b = (self.workflow_month(m) for m in (first, last))
        assert a is not None and b is not None
        if months.index(a) > months.index(b):
            raise UsageError(f"--from {a} comes after --to {b}")
        outcomes = []
        for month in months[months.index(a) : months.index(b) + 1]:
            self.progress.log(f"— {month} —")
            run = self.run_workflow(month, force=True)
            assert run.outcome is not None
            outcomes.append(run.outcome)
        return outcomes

    @staticmethod
    def plot_months(outcomes: list[MonthOutcome], path: Path) -> Path | None:
        """A PNG of Production's and the challengers' MAE over the months (None with no months)."""
        from taxifare_cli.files.plots import mae_over_months_png

        if not outcomes:
            return None
        return mae_over_months_png(
            [o.month for o in outcomes],
            [o.production_mae for o in outcomes],
            [o.challenger_mae for o in outcomes],
            [o.verdict for o in outcomes],
            path,
        )
