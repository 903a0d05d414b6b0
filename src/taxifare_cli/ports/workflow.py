"""The monthly workflow's seams: its steps, the engines that run them, notifiers, the run history."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass
class Notification:
    """What a workflow run tells a human: one subject line, a few body lines, and the facts as fields."""

    subject: str
    lines: list[str] = field(default_factory=list)
    level: Literal["info", "warning", "error"] = "info"
    # month, production_mae, challenger_mae, decision, drift, promote_command, runs_url...
    fields: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        return "\n".join([self.subject, *self.lines])

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "lines": self.lines, "level": self.level, "fields": self.fields}


class Notifier(Protocol):
    """Tells a human something happened (a workflow verdict). Raises ServiceError when it could not."""

    kind: str

    def notify(self, note: Notification) -> None: ...


class MonthSteps(Protocol):
    """One month of the champion/challenger workflow, as steps an engine runs in this order.

    prepare; then evaluate_champion and train_challenger (independent: an engine
    may run them at once); then transition, notify, finish. Each step keeps its
    result on the object and in a journal, so a step already done by a killed
    run is not done again. A transient failure raises ServiceError: the engine
    may retry the step (at most `retries` more times).
    """

    month: str
    retries: int

    def prepare(self) -> None:
        """Fetch train_ and val_<month>, upload them where configured, measure drift."""
        ...

    def evaluate_champion(self) -> None:
        """Production's MAE on val_<month> (nothing when there is no Production)."""
        ...

    def train_challenger(self) -> None:
        """A new version trained on train_<month>, validated on val_<month>."""
        ...

    def transition(self) -> None:
        """Apply the policy: the challenger to Production, to Staging, or kept where it is."""
        ...

    def notify(self) -> None:
        """Tell a human; a failure is recorded and reported, never undoes the transition."""
        ...

    def finish(self) -> None:
        """Record the run in the history; the month is done."""
        ...


class WorkflowEngine(Protocol):
    """Runs a month's steps: in-process threads, or a Prefect flow."""

    kind: str

    def run(self, steps: MonthSteps) -> None: ...


@runtime_checkable
class ScheduledEngine(Protocol):
    """An engine that can run the workflow on a schedule itself (Prefect's `flow.serve`)."""

    def serve(self, cron: str, job: Callable[[], dict[str, Any]]) -> None:
        """Run `job` on the `cron` schedule until stopped; ConfigError if no scheduler can fire it."""
        ...


class RunHistory(Protocol):
    """Where workflow runs are remembered, and the lock that keeps two from running at once."""

    kind: str

    def lock(self) -> AbstractContextManager[None]:
        """Held for a whole run; raises BusyError at once if another process holds it."""
        ...

    def journal(self, month: str) -> dict[str, Any]:
        """What an unfinished run of `month` already did ({} if nothing)."""
        ...

    def write_journal(self, month: str, journal: dict[str, Any]) -> None: ...

    def record(self, run: dict[str, Any]) -> None:
        """Keep a finished run (and forget its journal)."""
        ...

    def runs(self) -> list[dict[str, Any]]:
        """Finished runs, oldest first."""
        ...
