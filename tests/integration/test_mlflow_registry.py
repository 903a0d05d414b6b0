"""What is MLflow's own in MlflowRegistry, against a real `mlflow server` on 127.0.0.1.

The port's promises (numbering, stages, NotFoundError, evaluations...) are checked for
every registry in test_registry_contract.py; here: runs, tags, aliases, the pyfunc, the
scoring server and how failures are reported. The server is the session's (see
`mlflow_server` in conftest.py); each test gets its own registered model name, so tests
do not see each other's versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("mlflow")

from tests.integration.mlflow_server import MlflowServer, free_port

from taxifare_cli.adapters.registry.mlflow import MODEL_ARTIFACT, MlflowRegistry, predict_fares
from taxifare_cli.adapters.registry.mlflow.errors import map_error
from taxifare_cli.core.pricing import UnpriceableRides
from taxifare_cli.errors import ConfigError, ServiceError
from taxifare_cli.ports import ModelRef, TrainingRecord

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EXPERIMENT = "taxifare-tests"


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _restore_process_state() -> Iterator[None]:
    """The registry sets MLflow's environment defaults; loading a pyfunc extends sys.path."""
    environ, path = dict(os.environ), list(sys.path)
    yield
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path


# -- a model and a record, cheaply --------------------------------------------------------------


def raw_rides(n: int, seed: int = 0) -> pd.DataFrame:
    """Rides as a raw file has them: every column, times as `2015-01-15 08:30:00 UTC` text."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2015-01-01", tz="UTC")
    times = start + pd.to_timedelta(rng.integers(0, 86_400 * 150, n), unit="s")
    return pd.DataFrame(
        {
            "key": [f"2015-01-01 00:00:00.{i:07d}" for i in range(n)],
            "fare_amount": rng.uniform(4, 60, n).round(2),
            "pickup_datetime": times.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "pickup_longitude": rng.uniform(-74.01, -73.95, n),
            "pickup_latitude": rng.uniform(40.71, 40.80, n),
            "dropoff_longitude": rng.uniform(-74.01, -73.78, n),
            "dropoff_latitude": rng.uniform(40.64, 40.80, n),
            "passenger_count": rng.integers(1, 6, n),
        }
    )


def typed(rides: pd.DataFrame) -> pd.DataFrame:
    """The same rides typed as the CSV reader types them (what FareModel.predict takes)."""
    out = rides.copy()
    out["pickup_datetime"] = pd.to_datetime(out["pickup_datetime"].str.replace(" UTC", ""), utc=True)
    out["passenger_count"] = out["passenger_count"].astype("float64")
    return out


def make_record() -> TrainingRecord:
    return TrainingRecord(
        params={
            "hidden_layers": [8],
            "learning_rate": 0.001,
            "epochs": 3,
            "train_dataset": "train_1k",
            "webhook_token": "s3cret-do-not-log",
        },
        metrics={"val_mae": 2.5, "val_rmse": 3.75, "train_rows": 900.0, "epochs_run": 3.0},
        data={
            "train": {"dataset": "train_1k", "source": "local", "checksum": "sha256:abc", "rows_used": 900},
            "val": {"dataset": "val_1k", "source": "local", "checksum": "sha256:def", "rows_used": 95},
        },
        history={
            "loss": [9.0, 6.0, 5.0],
            "mae": [8.0, 4.0, 3.0],
            "val_loss": [8.5, 6.5, 5.5],
            "val_mae": [7.0, 3.0, 2.5],
        },
        package_version="0.1.0",
        git_commit="0123456789abcdef",
    )


@pytest.fixture
def registry(mlflow_server: MlflowServer) -> MlflowRegistry:
    return MlflowRegistry(
        mlflow_server.uri, experiment=EXPERIMENT, model_name=f"taxifare-{uuid.uuid4().hex[:8]}"
    )


@pytest.fixture
def client(mlflow_server: MlflowServer) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.uri, registry_uri=mlflow_server.uri)


# -- save -----------------------------------------------------------------------------------------


def test_save_registers_a_version_with_params_metrics_data_and_plots(
    registry: MlflowRegistry, client: Any, fare_artifact: Path, tmp_path: Path
) -> None:
    record = make_record()
    # The residual plot needs predictions (an optional field of the record).
    record.val_predictions = ([10.0, 20.0, 30.0], [11.0, 18.5, 33.0])
    extra = tmp_path / "cleaning_report.json"
    extra.write_text('{"rows_in": 1000}')
    record.extra_artifacts = [extra]

    mv = registry.save(fare_artifact, record)

    assert mv.version == 1 and mv.stage == "None"
    assert mv.metrics == record.metrics
    assert mv.data == record.data
    assert "webhook_token" not in mv.params and mv.params["hidden_layers"] == [8]
    assert (mv.package_version, mv.git_commit) == ("0.1.0", "0123456789abcdef")

    run = client.get_run(mv.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["hidden_layers"] == "[8]"
    assert "webhook_token" not in run.data.params
    assert "s3cret" not in json.dumps(run.data.tags)
    tags = run.data.tags
    assert tags["context"] == "train"
    assert tags["taxifare.data.train.dataset"] == "train_1k"
    assert tags["taxifare.data.train.checksum"] == "sha256:abc"
    assert tags["taxifare.data.train.rows_used"] == "900"
    assert tags["taxifare.package_version"] == "0.1.0"
    assert tags["mlflow.source.git.commit"] == "0123456789abcdef"
    assert run.data.metrics["val_mae"] == 2.5
    curve = client.get_metric_history(mv.run_id, "epoch/val_mae")
    assert [(m.step, m.value) for m in curve] == [(1, 7.0), (2, 3.0), (3, 2.5)]

    files = {a.path for a in client.list_artifacts(mv.run_id)}
    assert {"feature_config.json", "plots", "cleaning_report.json"} <= files
    plots = {a.path for a in client.list_artifacts(mv.run_id, "plots")}
    assert plots == {"plots/learning_curve.png", "plots/residuals.png"}
    local = Path(client.download_artifacts(mv.run_id, "feature_config.json", str(tmp_path)))
    config = json.loads(local.read_text())
    assert config["feature_version"] >= 1 and "haversine_km" in config["feature_names"]
    assert "cleaning_rules" in config

    [listed] = registry.list()
    assert listed.version == 1 and listed.metrics == record.metrics and listed.run_id == mv.run_id
    source = client.get_model_version(registry.model_name, "1").source
    assert source.startswith("models:/m-")


def test_a_failure_while_logging_the_model_marks_the_run_failed_and_registers_nothing(
    registry: MlflowRegistry, client: Any, fare_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("disk full while uploading the model")

    monkeypatch.setattr(registry, "_log_pyfunc", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        registry.save(fare_artifact, make_record())

    assert registry.list() == []
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`taxifare.model_name` = '{registry.model_name}'"
    )
    assert [r.info.status for r in runs] == ["FAILED"]


# -- stages -----------------------------------------------------------------------------------------


def test_promote_moves_the_alias_and_archives_the_previous_holder(
    registry: MlflowRegistry, client: Any, fare_artifact: Path
) -> None:
    for _ in range(2):
        registry.save(fare_artifact, make_record())

    first = registry.promote(1, "Production", by="alice")
    assert (first.version, first.previous) == (1, None)
    second = registry.promote(2, "Production", by="bob")
    assert (second.version, second.stage, second.previous, second.by) == (2, "Production", 1, "bob")

    assert client.get_registered_model(registry.model_name).aliases == {"production": "2"}
    assert registry.get(ModelRef(stage="Production")).version == 2
    assert {v.version: v.stage for v in registry.list()} == {1: "Archived", 2: "Production"}
    old = client.get_model_version(registry.model_name, "1").tags
    assert old["taxifare.stage"] == "Archived"
    assert (old["taxifare.archived_by"], old["taxifare.replaced_by_version"]) == ("bob", "2")
    new = client.get_model_version(registry.model_name, "2").tags
    assert (new["taxifare.promoted_by"], new["taxifare.replaced_version"]) == ("bob", "1")
    assert "taxifare.promoted_at" in new
    assert [(p["version"], p["previous"]) for p in registry.promotions()] == [(1, None), (2, 1)]

    # Back from the archive to Staging: one stage at a time, the archive mark goes.
    registry.promote(1, "Staging", by="alice")
    assert {v.version: v.stage for v in registry.list()} == {1: "Staging", 2: "Production"}
    registry.promote(1, "Production", by="alice")
    assert client.get_registered_model(registry.model_name).aliases == {"production": "1"}
    assert {v.version: v.stage for v in registry.list()} == {1: "Production", 2: "Archived"}


def test_legacy_stages_follow_the_aliases_without_a_deprecation_warning(
    mlflow_server: MlflowServer, client: Any, fare_artifact: Path
) -> None:
    registry = MlflowRegistry(
        mlflow_server.uri,
        experiment=EXPERIMENT,
        model_name=f"legacy-{uuid.uuid4().hex[:8]}",
        legacy_stages=True,
    )
    registry.save(fare_artifact, make_record())
    registry.save(fare_artifact, make_record())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.promote(1, "Production", by="alice")
        registry.promote(2, "Production", by="alice")
    assert not [w for w in caught if issubclass(w.category, FutureWarning)]
    stages = {v: client.get_model_version(registry.model_name, str(v)).current_stage for v in (1, 2)}
    assert stages == {1: "Archived", 2: "Production"}


# -- evaluation -------------------------------------------------------------------------------------


def test_record_evaluation_logs_a_run_linked_to_the_version(
    registry: MlflowRegistry, client: Any, fare_artifact: Path
) -> None:
    registry.save(fare_artifact, make_record())
    evaluation = {
        "at": "2015-03-01T00:00:00+00:00",
        "dataset": "val_feb",
        "source": "local",
        "checksum": "sha256:feb",
        "mae": 2.75,
        "rmse": 4.0,
        "rows": 1000,
    }
    registry.record_evaluation(1, evaluation)

    [recorded] = registry.get(ModelRef(version=1)).evaluations
    assert {k: recorded[k] for k in evaluation} == evaluation
    run = client.get_run(recorded["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["context"] == "evaluate"
    assert run.data.tags["taxifare.model_version"] == "1"
    assert (run.data.params["model_version"], run.data.params["dataset"]) == ("1", "val_feb")
    assert run.data.metrics["mae"] == 2.75
    last = json.loads(client.get_model_version(registry.model_name, "1").tags["taxifare.last_evaluation"])
    assert last["mae"] == 2.75 and last["run_id"] == recorded["run_id"]
    assert registry.list()[0].evaluations == [recorded]


# -- the pyfunc ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def production(mlflow_server: MlflowServer, fare_artifact: Path) -> tuple[MlflowRegistry, Any]:
    """A model whose version 1 is in Production, and that version loaded back as a pyfunc by alias."""
    import mlflow.pyfunc

    registry = MlflowRegistry(
        mlflow_server.uri, experiment=EXPERIMENT, model_name=f"served-{uuid.uuid4().hex[:8]}"
    )
    registry.save(fare_artifact, make_record())
    registry.promote(1, "Production", by="alice")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)  # as a user would
        pyfunc = mlflow.pyfunc.load_model(f"models:/{registry.model_name}@production")
    return registry, pyfunc


def bad_rides() -> pd.DataFrame:
    bad = raw_rides(3, seed=3)
    bad.loc[1, "pickup_latitude"] = 0.0  # outside New York
    return bad


def test_the_pyfunc_loaded_by_alias_prices_raw_rides_like_fare_model(
    production: tuple[MlflowRegistry, Any], fare_artifact: Path, tmp_path: Path
) -> None:
    from mlflow.exceptions import MlflowException

    from taxifare_cli.artifact import FareModel
    from taxifare_cli.core.cents import in_cents
    from taxifare_cli.core.few_rides import MIN_FARE

    registry, pyfunc = production
    version, fetched = registry.fetch_artifact(ModelRef(stage="Production"), tmp_path / "fetched")
    assert version.version == 1 and version.stage == "Production"
    assert fetched.name == MODEL_ARTIFACT and (fetched / "model.keras").is_file()

    rides = raw_rides(40, seed=7)
    fares = pyfunc.predict(rides)  # raw columns, times as text, key and fare included

    outputs = FareModel.load(fetched).predict(typed(rides))
    np.testing.assert_allclose(FareModel.load(fare_artifact).predict(typed(rides)), outputs, atol=1e-5)
    # The network's outputs, floored at the flag drop, in cents: what every pricing path gives.
    expected = in_cents(np.maximum(outputs, MIN_FARE))
    assert len(fares) == len(rides)
    np.testing.assert_array_equal(np.asarray(fares, dtype=np.float64), expected)
    assert np.ptp(expected) > 0  # a model that says the same fare for every ride would prove nothing

    # Typed frames (as the CSV reader yields them) work too.
    np.testing.assert_array_equal(np.asarray(pyfunc.predict(typed(rides)), dtype=np.float64), expected)

    with pytest.raises(MlflowException, match="1 of 3 rides cannot be priced") as refused:
        pyfunc.predict(bad_rides())
    assert "invalid_rides" in str(refused.value)  # the message says how to get NaN instead
    with pytest.raises(MlflowException, match="invalid_rides must be"):
        pyfunc.predict(rides, params={"invalid_rides": "skip"})
    lenient = np.asarray(pyfunc.predict(bad_rides(), params={"invalid_rides": "nan"}))
    assert np.isnan(lenient[1]) and not np.isnan(lenient[[0, 2]]).any()


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_the_scoring_server_prices_json_rides(production: tuple[MlflowRegistry, Any]) -> None:
    """The app `mlflow models serve` runs, in process: JSON rides in, fares out."""
    pytest.importorskip("httpx")  # fastapi's TestClient needs it
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    _, pyfunc = production

    def split(frame: pd.DataFrame) -> dict[str, Any]:
        return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}

    rides = raw_rides(2, seed=11)
    with TestClient(scoring_server.init(pyfunc)) as http:
        answer = http.post("/invocations", json=split(rides))
        refused = http.post("/invocations", json=split(bad_rides()))
    assert answer.status_code == 200, answer.text
    served = [p["fare_amount"] for p in answer.json()["predictions"]]
    np.testing.assert_allclose(served, np.asarray(pyfunc.predict(rides)), rtol=1e-6)
    assert refused.status_code == 400 and "cannot be priced" in refused.json()["message"]


def test_predict_fares_keeps_the_index_and_defaults_passengers(fare_artifact: Path) -> None:
    from taxifare_cli.artifact import FareModel

    model = FareModel.load(fare_artifact)
    rides = raw_rides(5).drop(columns=["passenger_count"]).set_index(pd.Index([10, 11, 12, 13, 14]))
    fares = predict_fares(model, rides)
    assert list(fares.index) == [10, 11, 12, 13, 14]
    assert fares.name == "fare_amount" and fares.notna().all()
    # The one pricing path: the same fares as FareModel.price, its errors as they are.
    np.testing.assert_array_equal(fares.to_numpy(), model.price(rides).fares)
    with pytest.raises(UnpriceableRides, match="1 of 3 rides cannot be priced"):
        predict_fares(model, bad_rides())
    with pytest.raises(ValueError, match="invalid_rides must be 'error' or 'nan'"):
        predict_fares(model, rides, {"invalid_rides": "skip"})


# -- failures ---------------------------------------------------------------------------------------


def test_server_down_is_a_one_line_service_error(
    tmp_path: Path, fare_artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    registry = MlflowRegistry(uri, experiment=EXPERIMENT, model_name="taxifare")
    for call in (
        registry.list,
        lambda: registry.get(ModelRef(stage="Production")),
        lambda: registry.save(fare_artifact, make_record()),
        lambda: registry.promote(1, "Production", by="alice"),
    ):
        with pytest.raises(ServiceError) as err:
            call()
        assert err.value.exit_code == 5
        assert "cannot reach" in str(err.value) and uri in str(err.value)
        assert "\n" not in str(err.value)


def test_a_url_that_is_not_an_mlflow_server_is_a_config_error(mlflow_server: MlflowServer) -> None:
    registry = MlflowRegistry(f"{mlflow_server.uri}/not-mlflow", model_name="taxifare")
    with pytest.raises(ConfigError, match="does not answer like an MLflow tracking server") as err:
        registry.list()
    assert err.value.exit_code == 3


def test_permission_denied_says_what_to_do() -> None:
    from mlflow.exceptions import RestException

    denied = RestException({"error_code": "PERMISSION_DENIED", "message": "User cannot read"})
    mapped = map_error(denied, "listing versions", "http://127.0.0.1:1")
    assert isinstance(mapped, ServiceError) and "permission denied" in str(mapped)
    assert "MLFLOW_TRACKING_TOKEN" in str(mapped)


@pytest.mark.parametrize("uri", ["localhost:5000", "htp://127.0.0.1:5000", ""])
def test_a_malformed_tracking_uri_is_a_config_error(uri: str) -> None:
    with pytest.raises(ConfigError):
        MlflowRegistry(uri)


def test_with_no_tracking_uri_the_store_is_local_under_the_taxifare_home(tmp_path: Path) -> None:
    from taxifare_cli.settings import load_settings

    settings = load_settings(environ={"TAXIFARE_MLFLOW__LOCAL_STORE": str(tmp_path / "home")}).settings
    registry = MlflowRegistry.from_settings(settings)
    db = (tmp_path / "home" / "mlflow.db").resolve()
    assert registry.tracking_uri == f"sqlite:///{db}"
    assert registry.artifact_root == (tmp_path / "home" / "mlruns").resolve().as_uri()
    assert registry.ui_command == f"mlflow ui --backend-store-uri sqlite:///{db} --default-artifact-root {registry.artifact_root}"
    assert registry.list() == []  # a working store, created on first use
    assert db.is_file()


def test_from_settings_keeps_the_token_out_of_sight(monkeypatch: pytest.MonkeyPatch) -> None:
    from taxifare_cli.settings import load_settings

    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)

    settings = load_settings(
        environ={
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
            "MLFLOW_MODEL_NAME": "fares",
            "TAXIFARE_MLFLOW__TRACKING_TOKEN": "tok-123",
            "TAXIFARE_MLFLOW__PRODUCTION_ALIAS": "champion",
        }
    ).settings
    registry = MlflowRegistry.from_settings(settings)
    assert (registry.tracking_uri, registry.model_name) == ("http://127.0.0.1:5000", "fares")
    assert registry.aliases["Production"] == "champion"
    assert os.environ["MLFLOW_TRACKING_TOKEN"] == "tok-123"  # where MLflow's client reads it
    assert "tok-123" not in repr(registry)


def test_importing_the_adapter_does_not_import_mlflow() -> None:
    code = (
        "import sys, taxifare_cli.adapters.registry.mlflow\n"
        "heavy = [m for m in ('mlflow', 'tensorflow', 'keras', 'pandas', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
