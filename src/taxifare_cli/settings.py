"""Settings: one object, built once per command from four layers.

Precedence, highest first: flags the user typed > environment
(`TAXIFARE_SECTION__KEY` and the original project's names) > TOML file >
defaults. `load_settings` also records where each value came from, so that
`taxifare config show` can say it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: Vertex AI's prebuilt training containers
    import tomli as tomllib

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from taxifare_cli.core.schema import MONTHS, SIZES
from taxifare_cli.core.vocabulary import (
    EngineName,
    NotifyBackend,
    Policy,
    RegistryBackend,
    RetrainFrom,
    RideOrigin,
    StoreBackend,
    WebhookFormat,
)
from taxifare_cli.errors import ConfigError

ENV_PREFIX = "TAXIFARE_"
DEFAULT_CONFIG_NAME = "taxifare.toml"
DEFAULT_REMOTE_URL = "https://storage.googleapis.com/datascience-mlops/taxi-fare-ny/{name}.csv"

# The original project's environment names, kept so existing .env files and cron jobs work.
LEGACY_ENV: dict[str, str] = {
    "DATA_SIZE": "data.size",
    "DATASET_SIZE": "data.size",
    "VALIDATION_DATASET_SIZE": "data.val_size",
    "CHUNK_SIZE": "data.chunk_size",
    "LOCAL_DATA_PATH": "data.local_path",
    "DATA_SOURCE": "storage.backend",
    "MODEL_TARGET": "registry.backend",
    "LOCAL_REGISTRY_PATH": "registry.local_path",
    "GCP_PROJECT": "gcp.project",
    "GCP_REGION": "gcp.region",
    "BUCKET_NAME": "storage.bucket",
    "BQ_DATASET": "storage.bq_dataset",
    "MLFLOW_TRACKING_URI": "mlflow.tracking_uri",
    "MLFLOW_EXPERIMENT": "mlflow.experiment",
    "MLFLOW_MODEL_NAME": "mlflow.model_name",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _check_size(value: str) -> str:
    v = value.strip().lower()
    if v not in SIZES and v not in MONTHS:
        raise ValueError(f"must be a size ({', '.join(SIZES)}) or a 2015 month ({', '.join(MONTHS)})")
    return v


class DataSettings(_Section):
    local_path: Path = Field(Path("~/.taxifare/data"), description="Directory of the local raw CSV files.")
    size: str = Field("10k", description="Default dataset size or month for train/evaluate.")
    val_size: str | None = Field(
        None, description="Validation size or month; empty means the same as `size`."
    )
    chunk_size: int = Field(
        100_000, ge=1_000, description="Rows read and processed at a time; memory stays flat."
    )
    origin: RideOrigin = Field(
        "remote", description="Where `data fetch` gets rides: the remote URL or the simulator."
    )
    remote_url: str = Field(
        DEFAULT_REMOTE_URL, description="URL template of the raw files; {name} is e.g. train_10k."
    )
    timeout_s: float = Field(60.0, gt=0, description="Network timeout of a remote fetch, seconds.")
    synthetic_seed: int = Field(42, description="Seed of the ride simulator.")
    synthetic_month_rows: int = Field(
        100_000, ge=100, description="Rides the simulator makes for one 2015 month (train+val)."
    )
    synthetic_all_rows: int = Field(
        2_000_000, ge=1_000, description="Rides the simulator makes for the `all` size."
    )

    _size = field_validator("size")(_check_size)

    @field_validator("val_size")
    @classmethod
    def _val(cls, v: str | None) -> str | None:
        return _check_size(v) if v else None

    @field_validator("remote_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if "{name}" not in v:
            raise ValueError("must contain {name}, e.g. https://host/path/{name}.csv")
        return v


class StorageSettings(_Section):
    backend: StoreBackend = Field(
        "local", description="Where `model train/evaluate` read rides from by default."
    )
    bucket: str | None = Field(None, description="Cloud Storage bucket of the raw files.")
    prefix: str = Field("taxi-fare-ny", description="Folder of the raw files in the bucket.")
    bq_dataset: str = Field("taxifare", description="BigQuery dataset holding one table per file.")
    gcs_endpoint: str | None = Field(
        None, description="Cloud Storage endpoint (an emulator); STORAGE_EMULATOR_HOST also works."
    )
    bq_endpoint: str | None = Field(
        None, description="BigQuery endpoint (an emulator); BIGQUERY_EMULATOR_HOST also works."
    )
    timeout_s: float = Field(120.0, gt=0, description="Timeout of one cloud call, seconds.")
    retries: int = Field(5, ge=0, le=20, description="Retries of a transient cloud error.")


class RegistrySettings(_Section):
    backend: RegistryBackend = Field(
        "local", description="Where model versions are kept: a local folder or MLflow."
    )
    local_path: Path = Field(
        Path("~/.taxifare/registry"), description="Directory of the local model registry."
    )
    model_name: str = Field("taxifare", description="Name of the model in the local registry.")


class MlflowSettings(_Section):
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking server URI; unset: a local store in mlflow.local_store (no server).",
    )
    local_store: Path = Field(
        Path("~/.taxifare"),
        description="With no tracking_uri: where MLflow keeps mlflow.db (SQLite) and mlruns/ (artifacts).",
    )
    experiment: str = Field("taxifare", description="MLflow experiment of training runs.")
    model_name: str = Field("taxifare", description="Registered model name in MLflow.")
    tracking_token: SecretStr | None = Field(
        None, description="Bearer token for the MLflow server (secret; never printed)."
    )
    production_alias: str = Field("production", description="Alias that marks Production.")
    staging_alias: str = Field("staging", description="Alias that marks Staging.")
    legacy_stages: bool = Field(False, description="Also transition the deprecated MLflow stage on promote.")
    timeout_s: float = Field(30.0, gt=0, description="Timeout of one MLflow HTTP call, seconds.")


class GcpSettings(_Section):
    project: str | None = Field(None, description="Google Cloud project id.")
    region: str = Field("europe-west1", description="Google Cloud region.")
    credentials: Path | None = Field(
        None, description="Service-account key file; else Application Default Credentials."
    )


class TrainingSettings(_Section):
    epochs: int = Field(60, ge=1, description="Most epochs; early stopping usually ends sooner.")
    batch_size: int = Field(256, ge=1, description="Rows per gradient step.")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    patience: int = Field(8, ge=1, description="Epochs without val-MAE improvement before stopping.")
    hidden_layers: list[int] = Field(
        [128, 64, 32], min_length=1, description="Units of each hidden dense layer."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after each hidden layer.")
    seed: int = Field(42, description="Seed of weights and shuffling: same seed, same model.")


class WorkflowSettings(_Section):
    month: str = Field(
        "jan", description="Month `workflow run --month` defaults to when it is not the next one."
    )
    origin: RideOrigin = Field("synthetic", description="Where `workflow run` gets its month of rides.")
    policy: Policy = Field(
        "manual",
        description="manual: a better challenger waits in Staging for a human; auto: it goes to Production.",
    )
    min_gain: float = Field(
        0.10,
        ge=0,
        description="Dollars of val MAE the challenger must gain over Production to count as better.",
    )
    engine: EngineName = Field("local", description="local (in-process) or prefect (a Prefect 3 flow).")
    retrain_from: RetrainFrom = Field(
        "production", description="production: fine-tune Production's weights; scratch: new weights."
    )
    retries: int = Field(2, ge=0, le=10, description="Retries of a step that failed on a transient error.")
    state_path: Path = Field(
        Path("~/.taxifare/workflow"), description="Where the run history, journal and lock are kept."
    )
    psi_threshold: float = Field(
        0.2, gt=0, description="Population-stability index above which drift is flagged."
    )
    ks_threshold: float = Field(
        0.05, gt=0, le=1, description="KS statistic above which drift is flagged (raised on small samples)."
    )

    @field_validator("month")
    @classmethod
    def _month(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in MONTHS:
            raise ValueError(f"must be a 2015 month: {', '.join(MONTHS)}")
        return v


class NotifySettings(_Section):
    backend: NotifyBackend = Field("console", description="Where workflow verdicts go: console or webhook.")
    webhook_url: SecretStr | None = Field(
        None, description="Webhook receiving workflow verdicts (secret; never printed)."
    )
    webhook_format: WebhookFormat = Field(
        "slack", description="slack: JSON with a `text` field; form: a form post with `author` and `content`."
    )
    author: str = Field("taxifare", description="Who the messages are from (the form post's `author`).")
    retries: int = Field(3, ge=0, le=10, description="Attempts after the first when a webhook post fails.")
    timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for the webhook to answer.")


class CloudSettings(_Section):
    machine_type: str = Field("e2-standard-4", description="Machine type of a cloud training job.")
    zone: str = Field("europe-west1-b", description="Compute Engine zone of a training VM (in gcp.region).")
    spot: bool = Field(False, description="Train on a Spot VM (cheaper; may be preempted).")
    max_hours: float = Field(
        4.0, gt=0, le=168, description="Most hours a job may run; then Google deletes its VM or stops it."
    )
    service_account: str | None = Field(
        None,
        description="Account the job runs as; empty: taxifare-trainer@<gcp.project>.iam.gserviceaccount.com.",
    )
    image: str = Field(
        "projects/debian-cloud/global/images/family/debian-12", description="Boot image of a training VM."
    )
    disk_gb: int = Field(50, ge=10, description="Boot disk of a training VM, GB (deleted with the VM).")
    vertex_image: str = Field(
        "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest",
        description="Vertex AI prebuilt training container (a default to check against Google's list).",
    )
    jobs_prefix: str = Field("jobs", description="Folder of the job folders in storage.bucket.")
    poll_s: float = Field(10.0, gt=0, description="Seconds between looks at a running job.")
    compute_endpoint: str | None = Field(
        None, description="Compute Engine API endpoint (a stand-in server); empty: Google's."
    )
    vertex_endpoint: str | None = Field(
        None, description="Vertex AI API endpoint (a stand-in); empty: <region>-aiplatform.googleapis.com."
    )


class Settings(BaseSettings):
    """Everything the tool can be told. Build it with `load_settings`, not directly."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    data: DataSettings = Field(default_factory=DataSettings)  # type: ignore[arg-type]
    storage: StorageSettings = Field(default_factory=StorageSettings)  # type: ignore[arg-type]
    registry: RegistrySettings = Field(default_factory=RegistrySettings)  # type: ignore[arg-type]
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)  # type: ignore[arg-type]
    gcp: GcpSettings = Field(default_factory=GcpSettings)  # type: ignore[arg-type]
    training: TrainingSettings = Field(default_factory=TrainingSettings)  # type: ignore[arg-type]
    workflow: WorkflowSettings = Field(default_factory=WorkflowSettings)  # type: ignore[arg-type]
    notify: NotifySettings = Field(default_factory=NotifySettings)  # type: ignore[arg-type]
    cloud: CloudSettings = Field(default_factory=CloudSettings)  # type: ignore[arg-type]

    @property
    def data_dir(self) -> Path:
        return self.data.local_path.expanduser()

    @property
    def registry_dir(self) -> Path:
        return self.registry.local_path.expanduser()

    @property
    def mlflow_store_dir(self) -> Path:
        return self.mlflow.local_store.expanduser()

    @property
    def workflow_dir(self) -> Path:
        return self.workflow.state_path.expanduser()


@dataclass
class LoadedSettings:
    """The settings and, for each dotted key, the layer it came from."""

    settings: Settings
    origins: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[leaf] = value


def find_config_file(explicit: Path | None, environ: dict[str, str]) -> Path | None:
    """`--config`, else TAXIFARE_CONFIG, else ./taxifare.toml if present."""
    if explicit is not None:
        if explicit.is_dir():
            raise ConfigError(f"config file {explicit} is a directory", hint="name the TOML file itself")
        if not explicit.is_file():
            raise ConfigError(
                f"config file {explicit} does not exist",
                hint="check the path, or create one with `taxifare config init`",
            )
        return explicit
    env = environ.get("TAXIFARE_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config file {path} (from TAXIFARE_CONFIG) does not exist",
                hint="fix TAXIFARE_CONFIG or create the file with `taxifare config init`",
            )
        return path
    local = Path(DEFAULT_CONFIG_NAME)
    return local.resolve() if local.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not UTF-8 text (byte {e.start})", hint="save it as UTF-8") from e
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e


def _env_layer(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Values from the environment, and the variable each came from."""
    flat: dict[str, Any] = {}
    names: dict[str, str] = {}
    for var, dotted in LEGACY_ENV.items():
        if environ.get(var):
            flat[dotted] = environ[var]
            names[dotted] = var
    source = EnvSettingsSource(
        Settings, case_sensitive=False, env_prefix=ENV_PREFIX, env_nested_delimiter="__"
    )
    source.env_vars = {k.lower(): v for k, v in environ.items()}
    for dotted, value in _flatten(source()).items():
        flat[dotted] = value  # the TAXIFARE_ name wins over a legacy one
        names[dotted] = ENV_PREFIX + dotted.upper().replace(".", "__")
    return flat, names


def _format_validation_error(err: ValidationError, origins: dict[str, str]) -> list[str]:
    problems = []
    for e in err.errors():
        dotted = ".".join(str(p) for p in e["loc"])
        where = origins.get(dotted, "default")
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown setting (see taxifare.toml.example for the valid keys)"
        problems.append(f"{dotted} = {e.get('input')!r} from {where}: {msg}")
    return problems


def collect_problems(
    *,
    config: Path | None = None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[LoadedSettings | None, list[str]]:
    """Build the settings; return them, or None and one line per problem."""
    env = dict(os.environ if environ is None else environ)
    path = find_config_file(config, env)
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if path is not None:
        for dotted, value in _flatten(_read_toml(path)).items():
            _set(merged, dotted, value)
            origins[dotted] = f"file {path}"
    env_values, env_names = _env_layer(env)
    for dotted, value in env_values.items():
        _set(merged, dotted, value)
        origins[dotted] = f"env {env_names[dotted]}"
    for dotted, value in (flags or {}).items():
        if value is None:  # never pass an untyped flag's default as if it were set
            continue
        _set(merged, dotted, value)
        origins[dotted] = "flag"
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as e:
        return None, _format_validation_error(e, origins)
    return LoadedSettings(settings, origins, path), []


def load_settings(
    *,
    config: Path | None = None,
    flags: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> LoadedSettings:
    """Build the settings or raise ConfigError naming the first problem."""
    loaded, problems = collect_problems(config=config, flags=flags, environ=environ)
    if loaded is None:
        more = f" (and {len(problems) - 1} more: run `taxifare config check`)" if len(problems) > 1 else ""
        raise ConfigError(f"invalid setting {problems[0]}{more}")
    return loaded


def settings_table(loaded: LoadedSettings) -> list[tuple[str, str, str]]:
    """(dotted key, value with secrets masked, origin) for every setting."""
    rows = []
    dumped = loaded.settings.model_dump(mode="python")
    for dotted, value in _flatten(dumped).items():
        if isinstance(value, SecretStr):
            shown = "********" if value.get_secret_value() else ""
        elif value is None:
            shown = ""
        elif isinstance(value, Path):
            shown = str(value)
        else:
            shown = str(value)
        rows.append((dotted, shown, loaded.origins.get(dotted, "default")))
    return rows


def example_toml() -> str:
    """A starter config listing every key with its default and description."""
    lines = [
        "# taxifare configuration. Precedence: flags > environment > this file > defaults.",
        "# Environment: TAXIFARE_SECTION__KEY (e.g. TAXIFARE_DATA__CHUNK_SIZE=50000), and the",
        "# original names: " + ", ".join(LEGACY_ENV) + ".",
        "",
    ]
    for name, fld in Settings.model_fields.items():
        section_cls = fld.annotation
        assert isinstance(section_cls, type) and issubclass(section_cls, BaseModel)
        lines.append(f"[{name}]")
        for key, sub in section_cls.model_fields.items():
            lines.append(f"# {sub.description}")
            default = sub.get_default(call_default_factory=True)
            if default is None or isinstance(default, SecretStr):
                lines.append(f"# {key} = ")
            else:
                lines.append(f"{key} = {_toml_value(default)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'
