"""The champion/challenger rule, and run_lifecycle end to end on fakes with a tiny network."""

import math
from pathlib import Path

import pytest
from tests.fakes import FakeRegistry, FakeSource, FakeStore, RecordingProgress

from taxifare_cli.core.model import HyperParams
from taxifare_cli.ports import ModelRef
from taxifare_cli.services.lifecycle import SAMPLE_RIDES, LifecycleResult, decide, run_lifecycle

# -- decide ---------------------------------------------------------------------------------
# The rule is "improvement strictly greater than min_improvement" (lifecycle.py: `>`). The values
# below are exact in binary floating point: 3.0 - 2.75 == 0.25 exactly.


@pytest.mark.parametrize("auto_promote", [True, False])
@pytest.mark.parametrize("challenger", [0.5, 2.75, 99.0])
def test_with_no_production_the_challenger_is_promoted(auto_promote: bool, challenger: float) -> None:
    assert decide(None, challenger, min_improvement=0.25, auto_promote=auto_promote) == "promoted"


@pytest.mark.parametrize(
    ("production", "challenger", "auto_promote", "verdict"),
    [
        (3.0, 2.75 - 1e-9, True, "promoted"),  # just over the threshold
        (3.0, 2.75 - 1e-9, False, "staged"),
        (3.0, 2.75, True, "kept"),  # exactly the threshold is not enough
        (3.0, 2.75, False, "kept"),
        (3.0, 2.75 + 1e-9, True, "kept"),  # just under
        (3.0, 2.0, True, "promoted"),
        (3.0, 2.0, False, "staged"),
        (3.0, 3.0, True, "kept"),  # no better
        (3.0, 3.5, True, "kept"),  # worse
        (3.0, 3.5, False, "kept"),
    ],
)
def test_the_challenger_must_beat_production_by_more_than_min_improvement(
    production: float, challenger: float, auto_promote: bool, verdict: str
) -> None:
    assert production - 2.75 == 0.25  # the boundary is exact
    assert decide(production, challenger, min_improvement=0.25, auto_promote=auto_promote) == verdict


def test_with_no_min_improvement_any_gain_counts_and_a_tie_does_not() -> None:
    assert decide(3.0, 3.0 - 1e-9, min_improvement=0.0, auto_promote=True) == "promoted"
    assert decide(3.0, 3.0, min_improvement=0.0, auto_promote=True) == "kept"


# -- run_lifecycle --------------------------------------------------------------------------


class World:
    """A local store, a source of 1500-ride months, a registry: what run_lifecycle needs."""

    def __init__(self, root: Path, hp: HyperParams) -> None:
        self.local = FakeStore(root / "data")
        self.source = FakeSource(rows=1_500, seed=4)
        self.registry = FakeRegistry(root / "registry")
        self.hp = hp
        self.progress = RecordingProgress()

    def run(self, month: str, **kw: object) -> LifecycleResult:
        args: dict[str, object] = {"auto_promote": True, "min_improvement": 0.0} | kw
        return run_lifecycle(
            month,
            local=self.local,
            source=self.source,
            store=self.local,
            registry=self.registry,
            hp=self.hp,
            chunk_size=1_000,
            progress=self.progress,
            **args,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(
        tmp_path_factory.mktemp("lifecycle"), HyperParams(hidden_layers=(8,), epochs=1, patience=1, seed=5)
    )


@pytest.fixture(scope="module")
def january(world: World) -> LifecycleResult:
    """The first month: nothing in Production yet."""
    return world.run("jan", auto_promote=False, min_improvement=0.5)


@pytest.fixture(scope="module")
def february(world: World, january: LifecycleResult) -> LifecycleResult:
    """The second month, with January's model in Production."""
    return world.run("feb")


def test_the_first_month_is_fetched_trained_and_promoted(world: World, january: LifecycleResult) -> None:
    r = january
    assert r.month == "jan"
    assert [(f.name, f.unchanged) for f in r.fetched] == [("train_jan", False), ("val_jan", False)]
    assert [(i.name, i.rows) for i in world.local.list()][:2] == [("train_jan", 1_200), ("val_jan", 300)]
    assert (r.production_before, r.production_mae, r.improvement) == (None, None, None)
    # With no Production the new model is promoted even without auto_promote.
    assert r.verdict == "promoted"
    assert r.promotion is not None and (r.promotion.version, r.promotion.stage, r.promotion.previous) == (
        1,
        "Production",
        None,
    )
    assert r.trained.version.version == 1 and r.trained.parent_version is None
    assert r.new_mae == r.trained.metrics["val_mae"] and math.isfinite(r.new_mae)
    assert r.trained.version.params["train_dataset"] == "train_jan"


def test_the_first_month_prices_samples_with_the_new_production_model(january: LifecycleResult) -> None:
    assert len(january.samples) == SAMPLE_RIDES
    for s in january.samples:
        assert set(s) == {"pickup_datetime", "from", "to", "fare", "predicted"}
        assert s["pickup_datetime"].startswith("2015-01")
        assert s["fare"] > 0 and math.isfinite(s["predicted"])
    assert january.as_dict()["new_version"] == 1


def test_the_second_month_measures_production_and_decides_by_the_rule(
    world: World, january: LifecycleResult, february: LifecycleResult
) -> None:
    r = february
    assert r.production_before == 1
    assert r.production_mae is not None and math.isfinite(r.production_mae) and r.production_mae > 0
    assert r.improvement == pytest.approx(r.production_mae - r.new_mae)
    # Production was measured on this month's val set, and that is recorded with version 1.
    (evaluation,) = world.registry.versions[1].evaluations
    assert evaluation["dataset"] == "val_feb" and evaluation["mae"] == r.production_mae
    assert "measuring Production (version 1) on val_feb" in world.progress.tasks("log")
    # The challenger was fine-tuned from Production.
    assert r.trained.version.version == 2 and r.trained.parent_version == 1
    assert world.registry.fetched.count(ModelRef(stage="Production")) >= 1

    assert r.verdict == decide(r.production_mae, r.new_mae, min_improvement=0.0, auto_promote=True)
    if r.verdict == "promoted":
        assert r.promotion is not None and (r.promotion.version, r.promotion.previous) == (2, 1)
        assert world.registry.stages() == {1: "Archived", 2: "Production"}
    else:
        assert r.verdict == "kept" and r.promotion is None
        assert world.registry.stages() == {1: "Production", 2: "None"}
    assert len(r.samples) == SAMPLE_RIDES and all(
        s["pickup_datetime"].startswith("2015-02") for s in r.samples
    )


def test_a_clear_gain_without_auto_promote_is_staged(world: World, february: LifecycleResult) -> None:
    champion = world.registry.holder("Production")
    # A negative threshold makes any challenger "better": the rule, not the luck of training, decides.
    r = world.run("mar", auto_promote=False, min_improvement=-1_000.0)
    assert r.verdict == "staged"
    assert r.promotion is not None and (r.promotion.version, r.promotion.stage) == (3, "Staging")
    assert world.registry.holder("Staging") == 3 and world.registry.holder("Production") == champion
    assert r.trained.parent_version == champion


def test_a_challenger_short_of_the_threshold_is_kept_out_of_every_stage(
    world: World, february: LifecycleResult
) -> None:
    before = world.registry.stages()
    r = world.run("apr", auto_promote=True, min_improvement=1_000.0)
    assert r.verdict == "kept" and r.promotion is None
    new = r.trained.version.version
    assert world.registry.stages() == before | {new: "None"}
    assert r.as_dict()["promotion"] is None
    assert len(r.samples) == SAMPLE_RIDES  # still priced, by the unchanged Production model
