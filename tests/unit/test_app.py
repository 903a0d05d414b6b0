"""The application object: its rules for parts and model references, its lazy backends, and fakes in it.

Settings are real (load_settings with an isolated environment and HOME); the
backends that use cases run on are the fakes of tests/fakes.py, handed to the
app's constructor in place of the ones it would build.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.fakes import FakeRegistry, FakeSource, FakeStore, MemoryStore

from taxifare_cli import bootstrap
from taxifare_cli.adapters.registry.local import LocalRegistry
from taxifare_cli.adapters.storage.local import LocalStore
from taxifare_cli.app import Taxifare
from taxifare_cli.core.model import HyperParams
from taxifare_cli.errors import UsageError
from taxifare_cli.ports import ModelRef, TrainingRecord
from taxifare_cli.settings import load_settings

MakeApp = Callable[..., Taxifare]


@pytest.fixture
def make_app(home: Path, monkeypatch: pytest.MonkeyPatch) -> MakeApp:
    """make_app({"data.size": "1k", ...}): a Taxifare on real settings, given as flags, nothing else leaking in."""
    monkeypatch.setenv("HOME", str(home))

    def make(flags: dict[str, Any] | None = None, **backends: Any) -> Taxifare:
        return Taxifare(load_settings(config=None, flags=flags or {}).settings, **backends)

    return make


def record() -> TrainingRecord:
    return TrainingRecord(params={}, metrics={}, data={}, history={}, package_version=None, git_commit=None)


def dummy_artifact(tmp: Path) -> Path:
    d = tmp / "artifact"
    d.mkdir(exist_ok=True)
    (d / "model.keras").write_bytes(b"weights")
    return d


# -- part -----------------------------------------------------------------------------------


def test_part_is_the_size_or_the_month_normalised() -> None:
    assert Taxifare.part("10k", None) == "10k"
    assert Taxifare.part(" 1M ", None) == "1m"
    assert Taxifare.part(None, "Feb") == "feb"
    assert Taxifare.part(None, None, "100k") == "100k"
    assert Taxifare.part("1k", None, "100k") == "1k"  # typed beats the default


def test_part_refuses_both_neither_and_unknown() -> None:
    with pytest.raises(UsageError, match="give --size or --month, not both"):
        Taxifare.part("10k", "feb")
    with pytest.raises(UsageError, match=r"give --size \(1k, 10k, 100k, 500k, 1m, all\) or --month"):
        Taxifare.part(None, None)
    with pytest.raises(UsageError, match="give --size"):
        Taxifare.part("", "")
    with pytest.raises(UsageError, match="unknown size or month '2k'"):
        Taxifare.part("2k", None)
    with pytest.raises(UsageError, match="unknown size or month 'jul'"):
        Taxifare.part(None, "jul")


def test_dataset_names() -> None:
    assert Taxifare.dataset_names("feb") == ["train_feb", "val_feb"]


# -- training and evaluation parts ----------------------------------------------------------


def test_training_parts_default_to_data_size_validated_by_itself(make_app: MakeApp) -> None:
    app = make_app()
    assert app.settings.data.size == "10k" and app.settings.data.val_size is None
    assert app.training_parts(None, None) == ("10k", "10k")
    assert app.evaluation_part(None, None) == "10k"


def test_val_size_validates_data_size_when_neither_flag_is_given(make_app: MakeApp) -> None:
    app = make_app({"data.size": "1k", "data.val_size": "100k"})
    assert app.training_parts(None, None) == ("1k", "100k")
    assert app.evaluation_part(None, None) == "100k"
    # A typed size or month is validated by the same part: val_size no longer applies.
    assert app.training_parts("10k", None) == ("10k", "10k")
    assert app.training_parts(None, "MAR") == ("mar", "mar")
    assert app.evaluation_part("500k", None) == "500k"
    with pytest.raises(UsageError, match="not both"):
        app.training_parts("10k", "mar")


def test_size_and_val_size_from_the_environment(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_SIZE", "jan")
    monkeypatch.setenv("VALIDATION_DATASET_SIZE", "feb")
    assert make_app().training_parts(None, None) == ("jan", "feb")


# -- model references -----------------------------------------------------------------------


def test_model_ref_is_a_version_or_a_loadable_stage() -> None:
    assert Taxifare.model_ref() == ModelRef(stage="Production")
    assert Taxifare.model_ref(version=3) == ModelRef(version=3)
    assert Taxifare.model_ref(version=0) == ModelRef(version=0)
    assert Taxifare.model_ref(stage="staging") == ModelRef(stage="Staging")
    assert Taxifare.model_ref(stage="PRODUCTION") == ModelRef(stage="Production")
    assert str(Taxifare.model_ref(version=3)) == "version 3"


@pytest.mark.parametrize("stage", ["Archived", "archived", "None", "prod"])
def test_model_ref_refuses_stages_that_cannot_be_loaded(stage: str) -> None:
    with pytest.raises(UsageError, match=f"cannot load a model by stage '{stage}': use Staging, Production"):
        Taxifare.model_ref(stage=stage)


def test_model_ref_refuses_version_and_stage() -> None:
    with pytest.raises(UsageError, match="not both"):
        Taxifare.model_ref(version=1, stage="Staging")


# -- backends -------------------------------------------------------------------------------


def test_backends_are_built_on_first_use_and_only_once(
    make_app: MakeApp, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    for name in ("build_registry", "build_store", "build_hyperparams"):
        real = getattr(bootstrap, name)

        def counting(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            built.append(_name)
            return _real(*args, **kw)

        monkeypatch.setattr(bootstrap, name, counting)

    app = make_app({"training.hidden_layers": [8, 4], "training.epochs": 3})
    assert app.part("1k", None) == "1k" and app.chunk_size == 100_000
    assert built == []  # building the app and applying its rules builds no backend
    assert not (home / "data").exists() and not (home / "registry").exists()

    assert app.registry is app.registry
    assert isinstance(app.registry, LocalRegistry) and app.registry.dir == home / "registry" / "taxifare"
    assert app.local is app.local and isinstance(app.local, LocalStore) and app.local.root == home / "data"
    assert app.store is app.store is app.store_named("local")
    assert app.hyperparams is app.hyperparams
    assert app.hyperparams == HyperParams(hidden_layers=(8, 4), epochs=3)
    assert built.count("build_registry") == built.count("build_store") == built.count("build_hyperparams") == 1
    assert app.local is app.store  # one LocalStore for the data directory
    so_far = len(built)
    for _ in range(3):
        app.registry, app.local, app.store, app.store_named("local"), app.hyperparams
    assert len(built) == so_far  # nothing is built twice


def test_configured_stores_are_local_plus_what_is_configured(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()
    assert [s.kind for s in app.configured_stores()] == ["local"]
    gcs, bq = FakeStore(tmp_path / "gcs", kind="gcs"), MemoryStore(kind="bigquery")
    app = make_app({"storage.bucket": "rides", "gcp.project": "p"}, stores={"gcs": gcs, "bigquery": bq})
    stores = app.configured_stores()
    assert stores[0] is app.local and stores[1:] == [gcs, bq]


# -- use cases on fakes ---------------------------------------------------------------------


def test_fetch_upload_and_list_run_on_injected_fakes(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, gcs, source = (
        FakeStore(tmp_path / "local"),
        FakeStore(tmp_path / "gcs", kind="gcs"),
        FakeSource(rows=50),
    )
    app = make_app(
        {"data.size": "1k", "storage.bucket": "rides"},
        stores={"local": local, "gcs": gcs},
        sources={"remote": source},  # data.origin's default
    )

    fetched = app.fetch()  # data.size
    assert [(f.name, f.unchanged) for f in fetched] == [("train_1k", False), ("val_1k", False)]
    assert [f.name for f in app.fetch(month="jan")] == ["train_jan", "val_jan"]
    assert source.fetches == ["train_1k", "val_1k", "train_jan", "val_jan"]
    assert app.fetch(size="10k", dry_run=True)[0].info is None and len(source.fetches) == 4

    steps = app.upload(to=("gcs",))
    assert [(s.name, s.destination, s.action) for s in steps] == [
        ("train_1k", "gcs", "create"),
        ("val_1k", "gcs", "create"),
    ]
    assert [s.action for s in app.upload(to=("gcs",))] == ["unchanged", "unchanged"]
    listed = app.list_data()
    assert [i.name for i in listed["local"]] == ["train_1k", "train_jan", "val_1k", "val_jan"]
    assert [i.name for i in listed["gcs"]] == ["train_1k", "val_1k"]


def test_promote_and_models_run_on_an_injected_registry(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAXIFARE_USER", "ann")
    registry = FakeRegistry(tmp_path / "reg")
    app = make_app(registry=registry)
    for _ in range(2):
        registry.save(dummy_artifact(tmp_path), record())
    assert app.promote(1, "Production").previous is None
    assert app.promote(2, "Production", dry_run=True).previous == 1
    promotion = app.promote(2, "Production")
    assert (promotion.previous, promotion.by) == (1, "ann")
    assert [(m.version, m.stage) for m in app.models()] == [(1, "Archived"), (2, "Production")]
    assert app.registry is registry


def test_train_evaluate_and_price_run_on_injected_fakes(
    make_app: MakeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings reach the services: the training section, data.size/val_size, data.chunk_size."""
    store, registry = FakeStore(tmp_path / "data"), FakeRegistry(tmp_path / "reg")
    app = make_app(
        {
            "data.size": "1k",
            "data.val_size": "10k",
            "data.chunk_size": 1_000,
            "training.hidden_layers": [8],
            "training.epochs": 1,
            "training.seed": 2,
        },
        stores={"local": store},
        registry=registry,
    )
    source = FakeSource(rows=1_500)
    for name in ("train_1k", "val_10k"):
        path = store.staging_path(name)
        source.fetch(name, path)
        store.put(name, path, source="fake")
        path.unlink()

    trained = app.train()
    params = registry.get(ModelRef(version=1)).params
    assert (params["train_dataset"], params["val_dataset"]) == ("train_1k", "val_10k")
    assert (params["hidden_layers"], params["epochs"], params["chunk_size"]) == ([8], 1, 1_000)
    assert trained.epochs_run == 1 and trained.parent_version is None
    assert store.reads.count("train_1k") == 1

    evaluation = app.evaluate(app.model_ref(version=1))
    assert (evaluation.dataset, evaluation.version.version) == ("val_10k", 1)
    assert [e["dataset"] for e in registry.versions[1].evaluations] == ["val_10k"]

    registry.promote(1, "Production", by="test")
    fares = app.price_ride_fields(
        app.model_ref(),
        [
            "pickup_datetime=2015-01-01 13:00:00 UTC",
            "pickup_longitude=-73.985",
            "pickup_latitude=40.758",
            "dropoff_longitude=-73.965",
            "dropoff_latitude=40.776",
        ],
    )
    assert fares.version.stage == "Production" and len(fares.fares) == 1 and fares.fares[0] > 0
