"""The sections of the settings: each key with its type, bounds, default and description.

`settings.py` assembles them into `Settings` and loads the layers; `taxifare config
show` and `taxifare.toml.example` list these descriptions.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

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

# scheme://rest: http(s), sqlite, postgresql+driver, file, databricks://profile...
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S*$")
DEFAULT_REMOTE_URL = "https://storage.googleapis.com/datascience-mlops/taxi-fare-ny/{name}.csv"


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

    @field_validator("tracking_uri")
    @classmethod
    def _uri(cls, v: str | None) -> str | None:
        # MLflow reads a bare path as a file store (refused by MLflow 3): a typo would surface late.
        if v and v.strip() and not _URL.match(v.strip()) and v.strip() != "databricks":
            raise ValueError("must be a URL, e.g. http://127.0.0.1:5000 or sqlite:///path/mlflow.db")
        return v.strip() if v else None


class GcpSettings(_Section):
    project: str | None = Field(None, description="Google Cloud project id.")
    region: str = Field("europe-west1", description="Google Cloud region.")
    credentials: Path | None = Field(
        None, description="Service-account key file; else Application Default Credentials."
    )


class TrainingSettings(_Section):
    epochs: int = Field(
        20, ge=1, description="Epochs; the learning rate decays over them, and early stopping may end sooner."
    )
    batch_size: int = Field(512, ge=1, description="Rows per gradient step.")
    learning_rate: float = Field(
        2e-3, gt=0, le=1, description="Adam's starting learning rate; above 1 training only diverges."
    )
    patience: int = Field(8, ge=1, description="Epochs without val-MAE improvement before stopping.")
    hidden_layers: list[int] = Field(
        [128, 64, 32], min_length=1, description="Units of each hidden dense layer."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout after each hidden layer.")
    seed: int = Field(42, description="Seed of weights and shuffling: same seed, same model.")
    min_rows: int = Field(
        100, ge=1, description="Fewest clean rows to train on; below it training is refused (exit 4)."
    )


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
