"""promote_model and list_models against a fake registry (artifacts need not be real models here)."""

from pathlib import Path

import pytest
from tests.fakes import FakeRegistry

from taxifare_cli.errors import NotFoundError, UsageError
from taxifare_cli.ports import TrainingRecord
from taxifare_cli.services.registry import list_models, promote_model, who


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    """Three versions, none in a stage; promotions are made by 'ann'."""
    monkeypatch.setenv("TAXIFARE_USER", "ann")
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "model.keras").write_bytes(b"weights")
    reg = FakeRegistry(tmp_path / "registry")
    for mae in (3.0, 2.5, 2.0):
        reg.save(
            artifact,
            TrainingRecord(
                params={},
                metrics={"val_mae": mae},
                data={},
                history={},
                package_version=None,
                git_commit=None,
            ),
        )
    return reg


def test_who_is_taxifare_user(registry: FakeRegistry) -> None:
    assert who() == "ann"


def test_promoting_to_production_archives_the_previous_holder(registry: FakeRegistry) -> None:
    first = promote_model(registry, 1, "Production")
    assert (first.version, first.stage, first.previous, first.by, first.dry_run) == (
        1,
        "Production",
        None,
        "ann",
        False,
    )
    second = promote_model(registry, 2, "Production")
    assert (second.version, second.previous) == (2, 1)
    assert registry.stages() == {1: "Archived", 2: "Production", 3: "None"}
    assert registry.promotions == [first, second]


def test_staging_and_production_are_held_separately(registry: FakeRegistry) -> None:
    promote_model(registry, 1, "Production")
    assert promote_model(registry, 2, "Staging").previous is None
    assert promote_model(registry, 3, "Staging").previous == 2
    assert registry.stages() == {1: "Production", 2: "Archived", 3: "Staging"}
    # Staging to Production: the old champion is archived, Staging is left empty.
    assert promote_model(registry, 3, "Production").previous == 1
    assert registry.stages() == {1: "Archived", 2: "Archived", 3: "Production"}
    assert registry.holder("Staging") is None


def test_promoting_the_holder_again_archives_nobody(registry: FakeRegistry) -> None:
    promote_model(registry, 2, "Production")
    assert promote_model(registry, 2, "Production").previous is None
    assert registry.stages()[2] == "Production"


def test_archiving_is_a_promotion_too(registry: FakeRegistry) -> None:
    promote_model(registry, 1, "Production")
    archived = promote_model(registry, 1, "Archived")
    assert (archived.stage, archived.previous) == ("Archived", None)
    assert registry.holder("Production") is None


def test_dry_run_says_who_would_be_archived_and_changes_nothing(registry: FakeRegistry) -> None:
    promote_model(registry, 1, "Production")
    before = (registry.stages(), list(registry.promotions))
    plan = promote_model(registry, 2, "Production", dry_run=True)
    assert (plan.version, plan.stage, plan.previous, plan.by, plan.dry_run) == (
        2,
        "Production",
        1,
        "ann",
        True,
    )
    assert plan.as_dict()["dry_run"] is True
    assert promote_model(registry, 2, "Staging", dry_run=True).previous is None
    assert promote_model(registry, 1, "Production", dry_run=True).previous is None
    assert (registry.stages(), registry.promotions) == before


def test_an_unknown_version_is_not_found(registry: FakeRegistry) -> None:
    for dry_run in (False, True):
        with pytest.raises(NotFoundError, match="model version 9 does not exist"):
            promote_model(registry, 9, "Production", dry_run=dry_run)
    assert registry.promotions == []


@pytest.mark.parametrize("stage", ["None", "production", "Retired"])
def test_stages_that_cannot_be_promoted_to_are_usage_errors(registry: FakeRegistry, stage: str) -> None:
    with pytest.raises(
        UsageError, match=f"cannot promote to '{stage}': choose Staging, Production, Archived"
    ):
        promote_model(registry, 1, stage)  # type: ignore[arg-type]
    assert registry.promotions == [] and set(registry.stages().values()) == {"None"}


def test_list_models_is_oldest_first_with_stages(registry: FakeRegistry) -> None:
    promote_model(registry, 2, "Production")
    models = list_models(registry)
    assert [(m.version, m.stage, m.metrics["val_mae"]) for m in models] == [
        (1, "None", 3.0),
        (2, "Production", 2.5),
        (3, "None", 2.0),
    ]
    assert list_models(FakeRegistry(registry.root / "empty")) == []
