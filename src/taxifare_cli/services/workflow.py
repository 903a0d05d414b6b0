"""The monthly champion/challenger workflow, as steps any engine runs (ports.MonthSteps).

A month: prepare (fetch train_ and val_<month>, upload them where configured)
→ evaluate Production on val_<month> and measure drift against what it was
trained on ‖ train a challenger on train_<month> → decide by the policy →
move the challenger → tell a human → record. Each step journals its result,
so a run killed anywhere is completed by the next run of the month.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from taxifare_cli.core.vocabulary import Policy, RetrainFrom, Stage
from taxifare_cli.errors import NotFoundError, ServiceError
from taxifare_cli.ports import (
    SILENT,
    DataStore,
    FileStore,
    ModelRef,
    ModelRegistry,
    Notification,
    Notifier,
    Progress,
    RideSource,
    RunHistory,
)
from taxifare_cli.services.data import fetch_data
from taxifare_cli.services.evaluation import evaluate_model
from taxifare_cli.services.registry import promote_model
from taxifare_cli.services.training import DEFAULT_MIN_ROWS, train_model

if TYPE_CHECKING:
    from taxifare_cli.core.model import HyperParams

Verdict = Literal["promoted", "staged", "kept"]
# Float noise in a difference of dollar MAEs; a gain this close to min_gain counts as reaching it.
_TOLERANCE = 1e-9


def decide(
    production_mae: float | None, challenger_mae: float, *, policy: Policy, min_gain: float
) -> Verdict:
    """The champion/challenger rule.

    The challenger is better when it beats Production's MAE on the same month by
    at least `min_gain` dollars (and by something), or when there is no
    Production. A better challenger is promoted under the auto policy and waits
    in Staging under the manual one (a human runs `model promote`); a challenger
    that is not better is kept out of both stages.
    """
    if production_mae is not None:
        gain = production_mae - challenger_mae
        if gain <= 0 or gain + _TOLERANCE < min_gain:
            return "kept"
    return "promoted" if policy == "auto" else "staged"


@dataclass
class WorkflowOptions:
    """How a month is run: the settings of the workflow section, resolved."""

    policy: Policy
    min_gain: float
    retrain_from: RetrainFrom
    retries: int
    psi_threshold: float
    ks_threshold: float
    engine: str
    min_rows: int = DEFAULT_MIN_ROWS  # training.min_rows: the fewest clean rows a challenger trains on


@dataclass
class MonthOutcome:
    """What a month's run did: the numbers, the decision, and whether a human was told."""

    month: str
    policy: Policy
    min_gain: float
    engine: str
    started_at: str
    finished_at: str | None = None
    seconds: float | None = None
    fetched: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    production_version: int | None = None
    production_mae: float | None = None
    challenger_version: int | None = None
    challenger_mae: float | None = None
    parent_version: int | None = None
    verdict: Verdict | None = None
    drift: dict[str, Any] | None = None
    notified: bool | None = None
    notify_error: str | None = None
    resumed: list[str] = field(default_factory=list)  # steps taken from a killed run's journal

    @property
    def gain(self) -> float | None:
        if self.production_mae is None or self.challenger_mae is None:
            return None
        return round(self.production_mae - self.challenger_mae, 4)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["gain"] = self.gain
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonthOutcome:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class MonthRun:
    """ports.MonthSteps for one month, over the ports it needs."""

    def __init__(
        self,
        month: str,
        *,
        local: FileStore,
        source: RideSource,
        uploads: list[DataStore],
        store: DataStore,
        registry: ModelRegistry,
        hp: HyperParams,
        chunk_size: int,
        options: WorkflowOptions,
        notifier: Notifier,
        history: RunHistory,
        links: dict[str, str] | None = None,
        progress: Progress = SILENT,
    ) -> None:
        self.month = month
        self.retries = options.retries
        self.local, self.source, self.uploads, self.store = local, source, uploads, store
        self.registry, self.hp, self.chunk_size, self.options = registry, hp, chunk_size, options
        self.notifier, self.history, self.links, self.progress = notifier, history, links or {}, progress
        self.journal: dict[str, Any] = history.journal(month)
        self.outcome = MonthOutcome(
            month=month,
            policy=options.policy,
            min_gain=options.min_gain,
            engine=options.engine,
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        self._started = time.monotonic()

    @property
    def train_name(self) -> str:
        return f"train_{self.month}"

    @property
    def val_name(self) -> str:
        return f"val_{self.month}"

    def _save(self, step: str, result: dict[str, Any]) -> None:
        self.journal[step] = result
        self.history.write_journal(self.month, self.journal)

    def _resume(self, step: str, *, unless: Any = None) -> dict[str, Any] | None:
        """What a killed run of this month already did for `step` (None if nothing, or `unless` fails)."""
        done = self.journal.get(step)
        if not isinstance(done, dict) or (unless is not None and not unless(done)):
            return None
        self.outcome.resumed.append(step)
        self.progress.log(f"{step}: done by an earlier run that did not finish; not repeated")
        return done

    # -- the steps ----------------------------------------------------------------------

    def prepare(self) -> None:
        from taxifare_cli.services.transfer import upload_data

        fetched = fetch_data(self.month, self.local, self.source, progress=self.progress)
        self.outcome.fetched = [f.as_dict() for f in fetched]
        names = [self.train_name, self.val_name]
        for dest in self.uploads:
            steps = upload_data(
                names, src=self.local, dest=dest, chunk_size=self.chunk_size, progress=self.progress
            )
            self.outcome.uploads += [s.as_dict() for s in steps]

    def evaluate_champion(self) -> None:
        self._evaluate_production()
        # Beside the training, not before it: the challenger does not need it, and it reads two months.
        self.outcome.drift = self._drift()

    def _evaluate_production(self) -> None:
        if isinstance(self.journal.get("decision"), dict):
            # Decided by a killed run: Production may be the challenger now; keep the numbers it decided on.
            done = self._resume("champion")
            if done is not None:
                self.outcome.production_version, self.outcome.production_mae = done["version"], done["mae"]
            return
        try:
            champion = self.registry.get(ModelRef(stage="Production"))
        except NotFoundError:
            return
        challenger = self.journal.get("challenger")
        if isinstance(challenger, dict) and challenger.get("version") == champion.version:
            return  # this month's challenger is in Production already: never judge it against itself
        done = self._resume("champion", unless=lambda d: d.get("version") == champion.version)
        if done is not None:
            self.outcome.production_version, self.outcome.production_mae = done["version"], done["mae"]
            return
        self.progress.log(f"measuring Production (version {champion.version}) on {self.val_name}")
        result = evaluate_model(
            self.store,
            self.registry,
            ModelRef(version=champion.version),
            dataset=self.val_name,
            chunk_size=self.chunk_size,
            progress=self.progress,
        )
        self.outcome.production_version, self.outcome.production_mae = champion.version, result.metrics["mae"]
        self._save("champion", {"version": champion.version, "mae": result.metrics["mae"]})

    def train_challenger(self) -> None:
        done = self._resume("challenger")
        if done is None:
            parent = self._parent()
            trained = train_model(
                self.store,
                self.registry,
                train_name=self.train_name,
                val_name=self.val_name,
                chunk_size=self.chunk_size,
                hp=self.hp,
                from_stage="Production" if parent is not None else None,
                progress=self.progress,
                min_rows=self.options.min_rows,
            )
            done = {
                "version": trained.version.version,
                "mae": trained.metrics["val_mae"],
                "parent": trained.parent_version,
            }
            self._save("challenger", done)
        self.outcome.challenger_version = done["version"]
        self.outcome.challenger_mae = done["mae"]
        self.outcome.parent_version = done.get("parent")

    def transition(self) -> None:
        o = self.outcome
        if o.challenger_version is None or o.challenger_mae is None:
            raise RuntimeError("transition before a challenger was trained")
        # The decision is journaled before it is carried out: a run killed in between is
        # completed by carrying out the same decision (promoting again is a no-op).
        done = self._resume("decision")
        if done is None:
            verdict = decide(o.production_mae, o.challenger_mae, policy=o.policy, min_gain=o.min_gain)
            done = {"verdict": verdict, "carried_out": False}
            self._save("decision", done)
        o.verdict = done["verdict"]
        if done.get("carried_out"):
            return
        stage: Stage | None = None
        if done["verdict"] == "promoted":
            stage = "Production"
        elif done["verdict"] == "staged":
            stage = "Staging"
        if stage is not None and self.registry.get(ModelRef(version=o.challenger_version)).stage != stage:
            promote_model(self.registry, o.challenger_version, stage)
        self._record_decision(done["verdict"])
        self._save("decision", {**done, "carried_out": True})

    def notify(self) -> None:
        note = self.notification()
        try:
            self.notifier.notify(note)
        except ServiceError as e:
            self.outcome.notified, self.outcome.notify_error = False, str(e)
            self.progress.log(f"warning: the verdict was not delivered: {e}")
            return
        self.outcome.notified = True

    def finish(self) -> None:
        o = self.outcome
        o.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        o.seconds = round(time.monotonic() - self._started, 1)
        self.history.record(o.as_dict())

    # -- what the steps share -------------------------------------------------------------

    def _parent(self) -> int | None:
        """The version the challenger starts from: Production's, unless told to start from scratch."""
        if self.options.retrain_from == "scratch":
            return None
        try:
            return self.registry.get(ModelRef(stage="Production")).version
        except NotFoundError:
            return None

    def _record_decision(self, verdict: Verdict) -> None:
        """The challenger's score on the month, with the decision, kept with its version (a run in MLflow)."""
        o = self.outcome
        assert o.challenger_version is not None
        info = self.local.describe(self.val_name)
        self.registry.record_evaluation(
            o.challenger_version,
            {
                "at": datetime.now(timezone.utc).isoformat(),
                "dataset": self.val_name,
                "source": self.store.kind,
                "checksum": info.checksum if info else None,
                "mae": o.challenger_mae,
                "month": self.month,
                "decision": verdict,
                "policy": o.policy,
                "production_version": o.production_version,
                "production_mae": o.production_mae,
            },
        )

    def _drift(self) -> dict[str, Any] | None:
        """The month's rides against the rides Production was last trained on, when both can be read."""
        from taxifare_cli.core.cleaning import clean_chunk
        from taxifare_cli.core.drift import RideSample, drift_report

        try:
            champion = self.registry.get(ModelRef(stage="Production"))
        except NotFoundError:
            return None
        reference = (champion.data.get("train") or {}).get("dataset")
        if not reference or reference == self.train_name:
            return None
        samples = []
        for name in (reference, self.train_name):
            if self.local.describe(name) is None:
                self.progress.log(f"drift not measured: {name} is not on local disk")
                return None
            sample = RideSample()
            for chunk in self.local.read_chunks(name, self.chunk_size):
                sample.add(clean_chunk(chunk)[0])
            samples.append(sample.frame())
        report = drift_report(
            samples[0],
            samples[1],
            psi_threshold=self.options.psi_threshold,
            ks_threshold=self.options.ks_threshold,
        )
        return {"reference": reference, **report.as_dict(), "summary": report.summary()}

    def notification(self) -> Notification:
        o = self.outcome
        money = "${:.2f}".format
        challenger = f"version {o.challenger_version}"
        if o.verdict == "promoted":
            subject = f"taxifare {o.month}: {challenger} is now in Production"
        elif o.verdict == "staged":
            subject = f"taxifare {o.month}: {challenger} waits in Staging for you"
        else:
            subject = f"taxifare {o.month}: Production is unchanged ({challenger} is not better)"
        lines = []
        if o.production_mae is None:
            lines.append(f"no Production model yet; the challenger scores MAE {money(o.challenger_mae)}")
        else:
            lines.append(
                f"Production (version {o.production_version}) MAE {money(o.production_mae)} "
                f"on {self.val_name}; challenger MAE {money(o.challenger_mae)} "
                f"(gain {money(o.gain or 0.0)}, needed {money(o.min_gain)})"
            )
        drift = o.drift or {}
        if drift:
            lines.append(f"drift since {drift.get('reference')}: {drift.get('summary')}")
        promote = f"taxifare model promote --version {o.challenger_version} --stage Production"
        if o.verdict == "staged":
            lines.append(f"to use it: {promote}")
        lines += [f"{what}: {url}" for what, url in self.links.items()]
        return Notification(
            subject=subject,
            lines=lines,
            level="info" if o.verdict != "kept" else "warning",
            fields={
                "month": o.month,
                "production_version": o.production_version,
                "production_mae": o.production_mae,
                "challenger_version": o.challenger_version,
                "challenger_mae": o.challenger_mae,
                "decision": o.verdict,
                "drift": drift.get("summary"),
                "promote_command": promote,
                **self.links,
            },
        )


# What `workflow run` reports and plans, kept apart; imported here for the callers.
from taxifare_cli.services.workflow_run import WorkflowRun, next_month, plan_month  # noqa: E402

__all__ = ["WorkflowRun", "next_month", "plan_month"]
