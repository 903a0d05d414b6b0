"""The taxifare fare model as an MLflow pyfunc: raw ride columns in, fares out.

A version is logged as "models from code": `PYFUNC_SCRIPT` beside the FareModel
directory and a copy of this package, so loading it unpickles nothing. The pyfunc
prices rides through the one pricing path, `FareModel.price` (core/pricing.py), so a
served model and `taxifare model predict` agree to the cent.

mlflow, pandas and keras are imported on first use: importing this module stays cheap.
"""

from __future__ import annotations

import functools
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models import ModelSignature
    from mlflow.pyfunc import PythonModel

    from taxifare_cli.artifact import FareModel
    from taxifare_cli.core.pricing import InvalidRides

MODEL_ARTIFACT = "fare_model"  # the FareModel directory inside the pyfunc model
LOGGED_MODEL_NAME = "model"
PREDICTION_COLUMN = "fare_amount"
SCRIPT_FILE = "taxifare_pyfunc.py"
INVALID_RIDES_PARAM = "invalid_rides"

# The file MLflow runs to rebuild the model ("models from code": no pickle to load).
# Models already logged run this import: `taxifare_cli.adapters.registry.mlflow` must
# keep exporting `fare_pyfunc`.
PYFUNC_SCRIPT = '''\
"""The taxifare fare model as an MLflow pyfunc: raw ride columns in, fares out."""
import mlflow

from taxifare_cli.adapters.registry.mlflow import fare_pyfunc

mlflow.models.set_model(fare_pyfunc())
'''


def predict_fares(model: FareModel, rides: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.Series:
    """Fares for raw rides, one per row, named `fare_amount`, with the rides' index.

    Priced by `FareModel.price`. Rides that cannot be priced raise UnpriceableRides (a
    ValueError), or get NaN with `params={"invalid_rides": "nan"}`; another value of
    `invalid_rides` is a ValueError too.
    """
    import pandas as pd

    priced = model.price(rides, invalid=invalid_rides(params))
    return pd.Series(priced.fares, index=rides.index, name=PREDICTION_COLUMN)


def invalid_rides(params: dict[str, Any] | None) -> InvalidRides:
    """The `invalid_rides` param ("error" by default); ValueError if it is neither choice."""
    from taxifare_cli.core.pricing import InvalidRides

    value = (params or {}).get(INVALID_RIDES_PARAM, "error")
    choices: tuple[str, ...] = get_args(InvalidRides)
    if value not in choices:
        options = " or ".join(map(repr, choices))
        raise ValueError(f"{INVALID_RIDES_PARAM} must be {options}, not {value!r}")
    return cast("InvalidRides", value)


@functools.cache
def pyfunc_model_class() -> type[PythonModel]:
    """The mlflow.pyfunc.PythonModel that wraps FareModel (built on first use: mlflow is heavy)."""
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import PythonModel

    from taxifare_cli.core.pricing import UnpriceableRides

    def load_context(self: Any, context: Any) -> None:
        from taxifare_cli.artifact import FareModel

        self.fare_model = FareModel.load(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(
        self: Any, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.Series:
        try:
            priced = self.fare_model.price(model_input, invalid=invalid_rides(params))
        except ValueError as e:  # a 400 from `mlflow models serve`, not a 500
            message = str(e)
            if isinstance(e, UnpriceableRides):
                message += f"; pass params={{'{INVALID_RIDES_PARAM}': 'nan'}} to get NaN for them"
            raise MlflowException.invalid_parameter_value(message) from e
        return pd.Series(priced.fares, index=model_input.index, name=PREDICTION_COLUMN)

    # MLflow reads predict's type hints when the class is made; this module's are strings.
    predict.__annotations__ = {
        "context": Any,
        "model_input": pd.DataFrame,
        "params": dict[str, Any] | None,
        "return": pd.Series,
    }
    cls: type[PythonModel] = type(
        "FarePyfunc",
        (PythonModel,),
        {
            "__module__": __name__,
            "__doc__": "Taxi fares from raw ride columns; wraps taxifare's FareModel.",
            "load_context": load_context,
            "predict": predict,
        },
    )
    return cls


def fare_pyfunc() -> PythonModel:
    """A new, unloaded FarePyfunc; MLflow calls its load_context with the artifacts."""
    return pyfunc_model_class()()


def pyfunc_signature() -> ModelSignature:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

    from taxifare_cli.core.schema import COORD_COLUMNS

    inputs = Schema(
        [
            # Raw text ("2015-01-15 08:30:00 UTC"), ISO 8601 or datetimes: MLflow's own datetime
            # type refuses the timezone-aware times raw ride files are read into.
            ColSpec(AnyType(), "pickup_datetime"),
            *(ColSpec("double", c) for c in COORD_COLUMNS),
            ColSpec(AnyType(), "passenger_count", required=False),
            # Raw files carry these; accepted and ignored.
            ColSpec(AnyType(), "key", required=False),
            ColSpec(AnyType(), "fare_amount", required=False),
        ]
    )
    outputs = Schema([ColSpec("double", PREDICTION_COLUMN)])
    params = ParamSchema([ParamSpec(INVALID_RIDES_PARAM, "string", "error")])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def pyfunc_input_example() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "pickup_datetime": ["2015-01-15 08:30:00 UTC", "2015-01-15 18:05:00 UTC"],
            "pickup_longitude": [-73.9840, -73.9857],
            "pickup_latitude": [40.7549, 40.7484],
            "dropoff_longitude": [-73.7781, -73.9632],
            "dropoff_latitude": [40.6413, 40.7794],
            "passenger_count": [1, 2],
        }
    )


def pyfunc_requirements() -> list[str]:
    """Pinned to what runs here, so a served model computes what was validated."""

    def pinned(dist: str) -> str | None:
        found = installed_version(dist)
        return f"{dist}=={found}" if found else None

    requirements = [pinned("mlflow") or pinned("mlflow-skinny")]
    tf = installed_version("tensorflow-cpu") or installed_version("tensorflow")
    if tf:
        # tensorflow-cpu exists for Linux x86-64 only; the same version elsewhere is tensorflow.
        requirements += [
            f"tensorflow-cpu=={tf}; sys_platform == 'linux' and platform_machine == 'x86_64'",
            f"tensorflow=={tf}; sys_platform != 'linux' or platform_machine != 'x86_64'",
        ]
    requirements += [pinned("keras"), pinned("numpy"), pinned("pandas")]
    return [r for r in requirements if r]


def installed_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def pyfunc_files(artifact_dir: Path, dest: Path) -> Path:
    """The model script, the FareModel directory and this package's code, ready to log."""
    import taxifare_cli

    dest.mkdir(parents=True)
    (dest / SCRIPT_FILE).write_text(PYFUNC_SCRIPT, encoding="utf-8")
    shutil.copytree(artifact_dir, dest / MODEL_ARTIFACT)
    # The pyfunc imports taxifare_cli wherever it is loaded (`mlflow models serve` too).
    shutil.copytree(
        Path(taxifare_cli.__file__).parent,
        dest / "code" / "taxifare_cli",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return dest


def log_pyfunc(
    files: Path,
    *,
    tracking_uri: str,
    run_id: str,
    experiment_id: str,
    params: dict[str, str],
    tags: dict[str, str],
    package_version: str | None,
) -> str:
    """Log `files` (see `pyfunc_files`) as a LoggedModel of the run; its model id."""
    import mlflow
    import mlflow.pyfunc
    from mlflow.models import Model

    # Model.log goes through MLflow's global client: point it at our server meanwhile.
    with global_tracking_uri(tracking_uri), _mlflow_chatter_hidden():
        logged = mlflow.initialize_logged_model(
            name=LOGGED_MODEL_NAME,
            source_run_id=run_id,
            experiment_id=experiment_id,
            params=params,
            tags=tags,
        )
        Model.log(
            artifact_path=None,
            name=LOGGED_MODEL_NAME,
            flavor=mlflow.pyfunc,
            run_id=run_id,
            model_id=logged.model_id,
            python_model=str(files / SCRIPT_FILE),
            artifacts={MODEL_ARTIFACT: str(files / MODEL_ARTIFACT)},
            code_paths=[str(files / "code" / "taxifare_cli")],
            signature=pyfunc_signature(),
            input_example=pyfunc_input_example(),
            pip_requirements=pyfunc_requirements(),
            metadata={"taxifare_version": package_version or "unknown"},
        )
    return str(logged.model_id)


@contextmanager
def global_tracking_uri(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's global client at `tracking_uri` meanwhile.

    Model.log, and the SQLite registry store when it registers a `models:/` source,
    make their own MlflowClient() with the global URI, not ours. (_use_tracking_uri
    unsets MLFLOW_TRACKING_URI on exit: the user's value is put back.)
    """
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    user_uri = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(tracking_uri):
            yield
    finally:
        if user_uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = user_uri


@contextmanager
def _mlflow_chatter_hidden() -> Iterator[None]:
    """Hide what MLflow says about its own internals while it saves a model.

    (pandas deprecations inside MLflow, "Failed to resolve installed pip version" when
    this environment has no pip: neither is the user's to act on.)
    """
    import logging

    env_logger = logging.getLogger("mlflow.utils.environment")
    level = env_logger.level
    env_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"mlflow\.")
            yield
    finally:
        env_logger.setLevel(level)
