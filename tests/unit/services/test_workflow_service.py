"""The champion/challenger workflow's rule and its steps (MonthRun), on the fakes of tests/fakes.py.

The steps are called in the order an engine calls them, by hand, so each test can
stop where a killed run would have stopped. Months are small (FakeSource, 2,000
rides) and the network tiny, so a training takes about a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import FakeHistory, FakeNotifier, FakeRegistry, FakeSource, FakeStore

from taxifare_cli.core.model import HyperParams
from taxifare_cli.errors import ServiceError
from taxifare_cli.ports import ModelRef
from taxifare_cli.services.workflow import MonthOutcome, MonthRun, WorkflowOptions, decide

HP = HyperParams(hidden_layers=(8,), epochs=1, patience=1, batch_size=256, seed=3)
ROWS = 2_000  # rides of a month, train and val
CHUNK = 1_000

# -- decide -------------------------------------------------------------------------------------
# min_gain 0.25 and MAEs 3.0 / 2.75 are exact binary floats: the gain is exactly 0.25.


@pytest.mark.parametrize(("policy", "better"), [("auto", "promoted"), ("manual", "staged")])
@pytest.mark.parametrize(
    ("challenger_mae", "is_better"),
    [
        pytest.param(2.75, True, id="gain-exactly-min_gain"),
        pytest.param(2.75 + 1e-6, False, id="gain-just-under"),
        pytest.param(2.75 - 1e-6, True, id="gain-just-over"),
    ],
)
def test_decide_at_the_edge_of_min_gain(
    policy: Any, better: str, challenger_mae: float, is_better: bool
) -> None:
    assert 3.0 - 2.75 == 0.25  # the premise: no rounding in the pinned case
    verdict = decide(3.0, challenger_mae, policy=policy, min_gain=0.25)
    assert verdict == (better if is_better else "kept")


@pytest.mark.parametrize("policy", ["auto", "manual"])
def test_decide_counts_float_noise_as_reaching_min_gain(policy: Any) -> None:
    assert 0.3 - 0.2 < 0.1  # 0.09999999999999998
    assert decide(0.3, 0.2, policy=policy, min_gain=0.1) != "kept"


@pytest.mark.parametrize("policy", ["auto", "manual"])
@pytest.mark.parametrize("min_gain", [0.0, 0.25])
def test_a_tie_or_a_worse_challenger_is_kept(policy: Any, min_gain: float) -> None:
    assert decide(3.0, 3.0, policy=policy, min_gain=min_gain) == "kept"
    assert decide(3.0, 3.5, policy=policy, min_gain=min_gain) == "kept"
    assert decide(3.0, 3.0 + 1e-6, policy=policy, min_gain=min_gain) == "kept"


def test_any_gain_is_enough_with_min_gain_zero() -> None:
    assert decide(3.0, 3.0 - 1e-6, policy="auto", min_gain=0.0) == "promoted"
    assert decide(3.0, 3.0 - 1e-6, policy="manual", min_gain=0.0) == "staged"


def test_without_production_the_challenger_is_promoted_or_staged() -> None:
    assert decide(None, 99.0, policy="auto", min_gain=0.25) == "promoted"
    assert decide(None, 99.0, policy="manual", min_gain=0.25) == "staged"
    assert decide(None, 99.0, policy="manual", min_gain=1000.0) == "staged"


# -- a world of fakes -----------------------------------------------------------------------------


@dataclass
class World:
    """The ports a MonthRun works over, all fakes; `run(month)` makes a new MonthRun on them."""

    root: Path
    local: FakeStore
    registry: FakeRegistry
    source: FakeSource = field(default_factory=lambda: FakeSource(rows=ROWS, seed=1))
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    history: FakeHistory = field(default_factory=FakeHistory)

    @classmethod
    def new(cls, root: Path) -> World:
        return cls(root, FakeStore(root / "local"), FakeRegistry(root / "registry"))

    def run(
        self,
        month: str,
        *,
        policy: Any = "auto",
        min_gain: float = 0.1,
        retrain_from: Any = "production",
        uploads: list[Any] | None = None,
        links: dict[str, str] | None = None,
    ) -> MonthRun:
        options = WorkflowOptions(
            policy=policy,
            min_gain=min_gain,
            retrain_from=retrain_from,
            retries=0,
            psi_threshold=0.2,
            ks_threshold=0.05,
            engine="test",
        )
        return MonthRun(
            month,
            local=self.local,
            source=self.source,
            uploads=uploads or [],
            store=self.local,
            registry=self.registry,
            hp=HP,
            chunk_size=CHUNK,
            options=options,
            notifier=self.notifier,
            history=self.history,
            links=links,
        )


def run_all(run: MonthRun) -> MonthOutcome:
    """Every step, in the order an engine runs them (no threads, no retries)."""
    for step in (
        run.prepare,
        run.evaluate_champion,
        run.train_challenger,
        run.transition,
        run.notify,
        run.finish,
    ):
        step()
    return run.outcome


@dataclass
class AfterJan:
    """A world where January ran (auto): version 1, trained on train_jan, is in Production."""

    world: World
    outcome: MonthOutcome


@pytest.fixture(scope="module")
def after_jan(tmp_path_factory: pytest.TempPathFactory) -> AfterJan:
    world = World.new(tmp_path_factory.mktemp("after-jan"))
    outcome = run_all(world.run("jan", policy="auto"))
    return AfterJan(world, outcome)


@pytest.fixture
def feb_world(tmp_path: Path, after_jan: AfterJan) -> World:
    """A fresh copy of `after_jan`'s world (Production = version 1, jan's files on local disk)."""
    base = after_jan.world
    world = World.new(tmp_path)
    for name in ("train_jan", "val_jan"):
        world.local.put(name, base.local.path(name), source="copied")
    world.registry.save(base.registry.artifact_dir(1), base.registry.records[1])
    world.registry.promote(1, "Production", by="test")
    world.history.record(after_jan.outcome.as_dict())
    return world


def money(v: float | None) -> str:
    assert v is not None
    return f"${v:.2f}"


def evaluations_on(registry: FakeRegistry, version: int, dataset: str) -> list[dict[str, Any]]:
    """The evaluations of `version` on `dataset` (not the workflow's decisions, kept the same way)."""
    return [
        e
        for e in registry.versions[version].evaluations
        if e.get("dataset") == dataset and "decision" not in e
    ]


# -- the first month ------------------------------------------------------------------------------


def test_first_month_auto_promotes_a_model_trained_from_scratch(after_jan: AfterJan) -> None:
    o, world = after_jan.outcome, after_jan.world
    assert (o.month, o.policy, o.verdict) == ("jan", "auto", "promoted")
    assert o.production_version is None and o.production_mae is None and o.gain is None
    assert o.challenger_version == 1 and o.parent_version is None
    assert world.registry.stages() == {1: "Production"}
    assert world.registry.records[1].parent_version is None
    assert o.challenger_mae == world.registry.versions[1].metrics["val_mae"]
    assert o.drift is None  # nothing to compare with on the first month
    assert [f["name"] for f in o.fetched] == ["train_jan", "val_jan"]
    assert o.notified is True and o.notify_error is None
    assert o.resumed == []
    # the decision is kept with the challenger's version
    [decision] = [e for e in world.registry.versions[1].evaluations if "decision" in e]
    assert decision["decision"] == "promoted" and decision["month"] == "jan"
    assert decision["dataset"] == "val_jan" and decision["production_version"] is None
    # told, recorded, journal gone
    [note] = world.notifier.notes
    assert note.fields["month"] == "jan" and note.fields["decision"] == "promoted"
    assert note.fields["production_mae"] is None and note.fields["challenger_mae"] == o.challenger_mae
    assert "no Production model yet" in note.text() and money(o.challenger_mae) in note.text()
    assert "jan" in note.subject and "Production" in note.subject
    [record] = world.history.runs()
    assert record["month"] == "jan" and record["verdict"] == "promoted" and record["notified"] is True
    assert record["finished_at"] and record["seconds"] is not None
    assert "jan" not in world.history.journals


def test_first_month_manual_stages_and_says_how_to_promote(tmp_path: Path) -> None:
    world = World.new(tmp_path)
    o = run_all(world.run("jan", policy="manual", links={"MLflow": "http://mlflow.example/#/models/m"}))
    assert o.verdict == "staged"
    assert world.registry.stages() == {1: "Staging"}
    [note] = world.notifier.notes
    command = "taxifare model promote --version 1 --stage Production"
    assert f"to use it: {command}" in note.lines
    assert note.fields["promote_command"] == command and note.fields["decision"] == "staged"
    assert "Staging" in note.subject and note.level == "info"
    assert "MLflow: http://mlflow.example/#/models/m" in note.lines


def test_prepare_uploads_the_month_to_each_store_given(tmp_path: Path) -> None:
    world = World.new(tmp_path)
    bucket = FakeStore(tmp_path / "bucket", kind="gcs")
    run = world.run("jan", uploads=[bucket])
    run.prepare()
    assert sorted(bucket.infos) == ["train_jan", "val_jan"]
    for name in ("train_jan", "val_jan"):
        assert bucket.infos[name].checksum == world.local.infos[name].checksum
    assert run.outcome.uploads and len(run.outcome.uploads) >= 2
    assert world.source.fetches == ["train_jan", "val_jan"]
    assert world.local.leftovers() == []
    assert run.outcome.drift is None


def test_no_upload_when_none_is_configured(tmp_path: Path) -> None:
    world = World.new(tmp_path)
    run = world.run("jan")
    run.prepare()
    assert run.outcome.uploads == []


def test_a_failing_notifier_does_not_undo_the_promotion(tmp_path: Path) -> None:
    world = World.new(tmp_path)
    world.notifier = FakeNotifier(fail=ServiceError("the webhook answered HTTP 500"))
    o = run_all(world.run("jan", policy="auto"))
    assert o.verdict == "promoted"
    assert world.registry.stages() == {1: "Production"}  # the promotion stands
    assert len(world.notifier.notes) == 1  # it was tried
    assert o.notified is False and o.notify_error is not None and "HTTP 500" in o.notify_error
    [record] = world.history.runs()  # finish still recorded the month
    assert record["month"] == "jan" and record["notified"] is False and "HTTP 500" in record["notify_error"]


def test_transition_before_a_challenger_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        World.new(tmp_path).run("jan").transition()


# -- the second month -----------------------------------------------------------------------------


def test_second_month_judges_production_on_the_new_month(feb_world: World) -> None:
    world = feb_world
    o = run_all(world.run("feb", policy="auto", min_gain=0.1))
    # Production measured on val_feb, and that evaluation is kept with version 1
    assert o.production_version == 1
    [ev] = evaluations_on(world.registry, 1, "val_feb")
    assert ev["mae"] == o.production_mae and o.production_mae is not None and o.production_mae > 0
    # the challenger is fine-tuned from Production
    assert o.challenger_version == 2 and o.parent_version == 1
    assert world.registry.records[2].parent_version == 1
    assert ModelRef(stage="Production") in world.registry.fetched  # training started from its weights
    # the transition is what `decide` says
    assert o.challenger_mae is not None
    expected = decide(o.production_mae, o.challenger_mae, policy="auto", min_gain=0.1)
    assert o.verdict == expected
    if expected == "promoted":
        assert world.registry.stages() == {1: "Archived", 2: "Production"}
    else:
        assert world.registry.stages() == {1: "Production", 2: "None"}
    [decision] = [e for e in world.registry.versions[2].evaluations if "decision" in e]
    assert decision["decision"] == expected and decision["month"] == "feb"
    assert decision["production_version"] == 1 and decision["production_mae"] == o.production_mae
    # drift against what Production was trained on
    assert isinstance(o.drift, dict) and o.drift["reference"] == "train_jan"
    assert isinstance(o.drift["summary"], str) and o.drift["summary"]
    # the notification holds the month, both MAEs and the decision
    [note] = world.notifier.notes
    f = note.fields
    assert f["month"] == "feb" and f["decision"] == expected
    assert f["production_mae"] == o.production_mae and f["challenger_mae"] == o.challenger_mae
    assert f["production_version"] == 1 and f["challenger_version"] == 2
    text = note.text()
    assert "feb" in note.subject and money(o.production_mae) in text and money(o.challenger_mae) in text
    assert f"drift since train_jan: {o.drift['summary']}" in text
    assert [r["month"] for r in world.history.runs()] == ["jan", "feb"]


def test_retrain_from_scratch_has_no_parent(feb_world: World) -> None:
    o = run_all(feb_world.run("feb", retrain_from="scratch"))
    assert o.challenger_version == 2 and o.parent_version is None
    assert feb_world.registry.records[2].parent_version is None
    assert ModelRef(stage="Production") not in feb_world.registry.fetched
    assert o.production_version == 1  # Production is still judged


def test_an_unreachable_min_gain_keeps_production(feb_world: World) -> None:
    o = run_all(feb_world.run("feb", policy="auto", min_gain=1000.0))
    assert o.verdict == "kept"
    assert feb_world.registry.stages() == {1: "Production", 2: "None"}
    assert len(feb_world.registry.promotions) == 1  # only the fixture's own
    [note] = feb_world.notifier.notes
    assert note.level == "warning" and "unchanged" in note.subject
    assert not any("to use it" in line for line in note.lines)


def test_manual_stages_a_better_challenger_next_to_production(feb_world: World) -> None:
    # A killed run measured Production at $99 on val_feb: any challenger beats that.
    feb_world.history.write_journal("feb", {"champion": {"version": 1, "mae": 99.0}})
    o = run_all(feb_world.run("feb", policy="manual", min_gain=0.5))
    assert "champion" in o.resumed and o.production_mae == 99.0
    assert o.verdict == "staged"
    assert feb_world.registry.stages() == {1: "Production", 2: "Staging"}
    [note] = feb_world.notifier.notes
    assert "to use it: taxifare model promote --version 2 --stage Production" in note.lines
    assert "$99.00" in note.text()


def test_drift_is_measured_on_the_second_month_only(feb_world: World, tmp_path: Path) -> None:
    run = feb_world.run("feb")
    run.prepare()
    assert run.outcome.drift is None  # measured beside the training, not before it
    run.evaluate_champion()
    drift = run.outcome.drift
    assert isinstance(drift, dict) and drift["reference"] == "train_jan"
    assert "summary" in drift and "items" in drift and drift["current_rows"] > 0
    first = World.new(tmp_path / "first").run("jan")
    first.prepare()
    first.evaluate_champion()
    assert first.outcome.drift is None


# -- the journal: a rerun after a kill ------------------------------------------------------------


def test_a_rerun_does_not_train_again_but_rejudges_a_new_production(feb_world: World) -> None:
    world = feb_world
    killed = world.run("feb")
    killed.prepare()
    killed.evaluate_champion()
    killed.train_challenger()
    # ... killed here: the journal has what was done
    journal = world.history.journals["feb"]
    assert journal["champion"]["version"] == 1
    assert journal["challenger"] == {"version": 2, "mae": killed.outcome.challenger_mae, "parent": 1}
    assert len(world.registry.versions) == 2

    # A rerun with Production unchanged takes both middle steps from the journal.
    rerun = world.run("feb")
    rerun.prepare()
    rerun.evaluate_champion()
    rerun.train_challenger()
    assert len(world.registry.versions) == 2  # not trained again
    assert set(rerun.outcome.resumed) == {"champion", "challenger"}
    assert len(evaluations_on(world.registry, 1, "val_feb")) == 1  # not evaluated again
    assert rerun.outcome.challenger_version == 2 and rerun.outcome.parent_version == 1
    assert rerun.outcome.production_mae == killed.outcome.production_mae

    # Someone puts another version in Production before the next rerun: it is judged anew.
    world.registry.save(world.registry.artifact_dir(1), world.registry.records[1])  # version 3
    world.registry.promote(3, "Production", by="someone")
    again = world.run("feb")
    o = run_all(again)
    assert o.resumed == ["challenger"]
    assert o.production_version == 3
    assert len(evaluations_on(world.registry, 3, "val_feb")) == 1
    assert len(world.registry.versions) == 3  # still no second challenger
    assert o.challenger_version == 2
    assert o.verdict == decide(o.production_mae, o.challenger_mae or 0.0, policy="auto", min_gain=0.1)
    assert "feb" not in world.history.journals  # finish forgot the journal
    assert [r["month"] for r in world.history.runs()] == ["jan", "feb"]


def test_a_run_killed_after_its_decision_is_completed_with_the_numbers_it_decided_on(tmp_path: Path) -> None:
    """Killed between transition and finish: the rerun must not judge the challenger against itself."""
    world = World.new(tmp_path)
    killed = world.run("jan", policy="auto")
    for step in (killed.prepare, killed.evaluate_champion, killed.train_challenger, killed.transition):
        step()
    assert killed.outcome.verdict == "promoted" and world.registry.stages() == {1: "Production"}
    # ... killed here, before notify and finish
    o = run_all(world.run("jan", policy="auto"))
    assert {"challenger", "decision"} <= set(o.resumed)
    assert len(world.registry.versions) == 1 and o.verdict == "promoted"
    # There was no Production when version 1 was judged; now it is Production itself.
    assert (o.production_version, o.production_mae) == (None, None), (
        f"the rerun recorded version {o.production_version} as the champion the challenger "
        f"(version {o.challenger_version}) was judged against"
    )
    assert evaluations_on(world.registry, 1, "val_jan") == [], "the challenger was evaluated as Production"
    [note] = world.notifier.notes
    assert "no Production model yet" in note.text()


def test_a_run_killed_between_its_promotion_and_its_journal_is_completed_as_promoted(tmp_path: Path) -> None:
    """Killed inside transition: promote_model returned, the decision was not journaled yet
    (_record_decision, an MLflow call with that registry, comes between the two)."""
    world = World.new(tmp_path)
    killed = world.run("jan", policy="auto")
    for step in (killed.prepare, killed.evaluate_champion, killed.train_challenger):
        step()
    world.registry.promote(1, "Production", by="taxifare")  # transition's first act, then the kill
    assert "decision" not in world.history.journals["jan"]
    o = run_all(world.run("jan", policy="auto"))
    assert world.registry.stages() == {1: "Production"}
    assert (o.verdict, o.production_version) == ("promoted", None), (
        f"the rerun judged version {o.challenger_version} against Production version "
        f"{o.production_version} (itself) and recorded {o.verdict!r}, while it is in Production"
    )
