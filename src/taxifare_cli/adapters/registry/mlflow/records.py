"""The registry port's records written as MLflow runs, tags and artifacts, and read back.

A training run gets params, per-epoch metrics (`epoch/<name>`, step = epoch from 1),
final metrics, data-seen tags, plots and the feature config. A version gets tags
holding what `ModelVersion` reports (params, metrics, data, provenance), so that
`list` is one search. Nothing here talks to the server except `log_batch`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxifare_cli.adapters.registry.integrity import digest_files, verify_artifact
from taxifare_cli.core.vocabulary import Stage
from taxifare_cli.errors import DataError
from taxifare_cli.files.plots import learning_curve_png, residuals_png
from taxifare_cli.ports import ModelVersion, TrainingRecord

if TYPE_CHECKING:
    from mlflow import MlflowClient

TAG = "taxifare."
STAGE_TAG = TAG + "stage"
CONTEXT_TAG = "context"  # "train" or "evaluate"
PROMOTION_LOG_TAG = TAG + "promotions"  # on the registered model: the last promotions, JSON
PROMOTION_LOG_LENGTH = 200
CHECKSUMS_TAG = TAG + "checksums"  # on a version: sha256 of each file of its FareModel directory
# Params that look like these are readable by every MLflow user: never logged.
SECRET_KEY = re.compile(r"token|secret|password|passwd|credential|api_?key", re.IGNORECASE)
PARAM_TEXT_LIMIT = 6000


def train_tags(model_name: str, record: TrainingRecord) -> dict[str, str]:
    """Tags of a training run: context, provenance, the data seen, a readable note."""
    tags = {
        CONTEXT_TAG: "train",
        TAG + "model_name": model_name,
        "mlflow.source.name": "taxifare model train",
    }
    if record.package_version:
        tags[TAG + "package_version"] = record.package_version
    if record.git_commit:
        tags[TAG + "git_commit"] = record.git_commit
        tags["mlflow.source.git.commit"] = record.git_commit
    if record.parent_version is not None:
        tags[TAG + "parent_version"] = str(record.parent_version)
    for split, seen in data_items(record.data):
        for key, value in seen.items():
            if value is not None and not isinstance(value, dict | list):
                tags[f"{TAG}data.{split}.{key}"] = str(value)
    tags["mlflow.note.content"] = note(record)
    return tags


def version_tags(record: TrainingRecord) -> dict[str, str]:
    """What `get`/`list` report, stored with the version so one search returns it all."""
    tags = {
        TAG + "params": json.dumps(safe_params(record.params), sort_keys=True, default=str),
        TAG + "metrics": json.dumps(record.metrics, sort_keys=True),
        TAG + "data": json.dumps(record.data, sort_keys=True, default=str),
    }
    if record.package_version:
        tags[TAG + "package_version"] = record.package_version
    if record.git_commit:
        tags[TAG + "git_commit"] = record.git_commit
    if record.parent_version is not None:
        tags[TAG + "parent_version"] = str(record.parent_version)
    return tags


def checksum_tags(artifact_dir: Path) -> dict[str, str]:
    """The sha256 of every artifact file, as a version tag: checked after each download."""
    return {CHECKSUMS_TAG: json.dumps(digest_files(artifact_dir), sort_keys=True)}


def verify_download(mv: Any, directory: Path) -> None:
    """DataError naming the downloaded file that differs from the checksums saved with `mv`.

    A version registered before checksums were recorded (or by another tool) has none:
    its files are checked for shape only.
    """
    raw = (mv.tags or {}).get(CHECKSUMS_TAG)
    try:
        recorded = json.loads(raw) if raw else None
    except ValueError as e:
        raise DataError(f"MLflow model version {mv.version}: its {CHECKSUMS_TAG} tag is not JSON") from e
    checksums = recorded if isinstance(recorded, dict) else None
    verify_artifact(directory, checksums, what=f"MLflow model version {mv.version}")


def to_port(
    mv: Any,
    aliases: dict[str, str],
    stage_aliases: dict[Stage, str],
    evaluations: list[dict[str, Any]],
) -> ModelVersion:
    """An MLflow model version as the port's ModelVersion (read from its tags)."""
    tags: dict[str, str] = dict(mv.tags or {})
    parent = tags.get(TAG + "parent_version")
    return ModelVersion(
        version=int(mv.version),
        stage=stage_of(mv, aliases, stage_aliases),
        created_at=datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, timezone.utc),
        params=json_tag(tags, TAG + "params"),
        metrics=json_tag(tags, TAG + "metrics"),
        data=json_tag(tags, TAG + "data"),
        evaluations=evaluations,
        package_version=tags.get(TAG + "package_version"),
        git_commit=tags.get(TAG + "git_commit"),
        run_id=mv.run_id or None,
        parent_version=int(parent) if parent and parent.isdigit() else None,
        # The run keeps them (see run_files); `mlflow artifacts download -u <uri>` fetches one.
        plots={n: f"runs:/{mv.run_id}/plots/{n}.png" for n in ("learning_curve", "residuals")}
        if mv.run_id
        else {},
    )


def stage_of(mv: Any, aliases: dict[str, str], stage_aliases: dict[Stage, str]) -> Stage:
    """The stage of `mv`: the stage whose alias points at it, else Archived by tag, else None."""
    number = str(mv.version)
    for stage, alias in stage_aliases.items():
        if aliases.get(alias) == number:
            return stage
    return "Archived" if (mv.tags or {}).get(STAGE_TAG) == "Archived" else "None"


def archived_tags(when: str, by: str, *, replaced_by: int) -> dict[str, str]:
    """Tags of a version that a promotion pushed out of its stage."""
    return {
        STAGE_TAG: "Archived",
        TAG + "archived_at": when,
        TAG + "archived_by": by,
        TAG + "replaced_by_version": str(replaced_by),
    }


def promoted_tags(
    stage: Stage, when: str, by: str, *, from_stage: Stage, replaced: int | None
) -> tuple[dict[str, str], list[str]]:
    """Tags to set on a promoted version, and stale tags to delete from it."""
    tags = {
        TAG + "promoted_at": when,
        TAG + "promoted_by": by,
        TAG + "promoted_from_stage": from_stage,
    }
    stale = [] if stage == "None" else [TAG + "archived_at", TAG + "archived_by"]
    if replaced is not None:
        tags[TAG + "replaced_version"] = str(replaced)
    else:
        stale.append(TAG + "replaced_version")
    if stage == "None":
        stale.append(STAGE_TAG)
    else:
        tags[STAGE_TAG] = stage
    return tags, stale


def evaluation_tags(model_name: str, version: int, evaluation: dict[str, Any]) -> dict[str, str]:
    """Tags of an evaluation run: what links it to the version, and the evaluation as JSON."""
    return {
        CONTEXT_TAG: "evaluate",
        TAG + "model_name": model_name,
        TAG + "model_version": str(version),
        TAG + "evaluation": json.dumps(evaluation, sort_keys=True, default=str),
        **{
            f"{TAG}data.{k}": str(v)
            for k, v in evaluation.items()
            if k in ("dataset", "source", "checksum", "rows") and v is not None
        },
        # A workflow's decision on the month, as tags the MLflow UI can filter and compare on.
        **{
            f"{TAG}workflow.{k}": str(v)
            for k, v in evaluation.items()
            if k in ("month", "decision", "policy", "production_version") and v is not None
        },
    }


def evaluation_params(model_name: str, version: int, evaluation: dict[str, Any]) -> dict[str, str]:
    params = {"model_name": model_name, "model_version": str(version)}
    params.update({k: str(v) for k, v in evaluation.items() if k in ("dataset", "source", "checksum") and v})
    return params


def evaluations_query(model_name: str, version: int | None) -> str:
    """The search filter for the finished evaluation runs of a model (or of one version)."""
    query = (
        f"tags.{CONTEXT_TAG} = 'evaluate' and tags.`{TAG}model_name` = {quote(model_name)} "
        "and attributes.status = 'FINISHED'"
    )
    if version is not None:
        query += f" and tags.`{TAG}model_version` = '{version}'"
    return query


def evaluation_of(run: Any) -> tuple[int, dict[str, Any]] | None:
    """(version, evaluation with its run_id) of an evaluation run; None if its tags are broken."""
    tags = run.data.tags
    try:
        evaluation = json.loads(tags[TAG + "evaluation"])
        number = int(tags[TAG + "model_version"])
    except (KeyError, ValueError):
        return None
    return number, {**evaluation, "run_id": run.info.run_id}


def run_artifacts(artifact_dir: Path, record: TrainingRecord, dest: Path) -> Path:
    """The files a training run keeps (feature config, plots, extras), written under `dest`."""
    from taxifare_cli.artifact import FEATURES_FILE
    from taxifare_cli.core.cleaning import DEFAULT_RULES
    from taxifare_cli.core.schema import RIDE_FIELDS

    (dest / "plots").mkdir(parents=True)
    features_path = artifact_dir / FEATURES_FILE
    features = json.loads(features_path.read_text(encoding="utf-8")) if features_path.is_file() else {}
    config = {**features, "ride_fields": list(RIDE_FIELDS), "cleaning_rules": asdict(DEFAULT_RULES)}
    (dest / "feature_config.json").write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    learning_curve_png(record.history, dest / "plots" / "learning_curve.png")
    sample = record.val_predictions  # optional: (true fares, predicted fares)
    if sample is not None:
        residuals_png(sample[0], sample[1], dest / "plots" / "residuals.png")
    for extra in record.extra_artifacts:
        if extra.is_dir():
            shutil.copytree(extra, dest / extra.name, dirs_exist_ok=True)
        else:
            shutil.copy2(extra, dest / extra.name)
    return dest


def training_metrics(record: TrainingRecord) -> list[Any]:
    """Final metrics at step 0 and the history per epoch as `epoch/<name>`, as MLflow Metrics."""
    from mlflow.entities import Metric

    now = int(datetime.now(timezone.utc).timestamp() * 1000)
    metrics = [Metric(k, float(v), now, 0) for k, v in record.metrics.items() if is_number(v)]
    for key, values in record.history.items():
        metrics.extend(
            Metric(f"epoch/{key}", float(v), now, epoch)
            for epoch, v in enumerate(values, start=1)
            if is_number(v)
        )
    return metrics


def log_batch(
    client: MlflowClient,
    run_id: str,
    *,
    params: dict[str, str] | None = None,
    metrics: list[Any] | None = None,
) -> None:
    from mlflow.entities import Param

    # The REST API takes at most 100 params and 1000 metrics per request.
    items = [Param(k, v) for k, v in (params or {}).items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])
    metrics = metrics or []
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i : i + 1000])


def safe_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params minus anything that looks like a secret: they are readable by every MLflow user."""
    return {
        k: v
        for k, v in params.items()
        if not SECRET_KEY.search(k) and type(v).__name__ not in ("SecretStr", "SecretBytes")
    }


def param_texts(params: dict[str, Any]) -> dict[str, str]:
    """The safe params as MLflow param values (JSON for lists and dicts, cut to MLflow's limit)."""
    return {k: _param_text(v) for k, v in safe_params(params).items()}


def _param_text(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)
    return text[:PARAM_TEXT_LIMIT]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def data_items(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for split, seen in data.items():
        if isinstance(seen, dict):
            yield split, seen


def train_run_name(record: TrainingRecord) -> str:
    dataset = record.params.get("train_dataset")
    return f"train {dataset}" if dataset else "train"


def note(record: TrainingRecord) -> str:
    """The run's description in MLflow's UI: version, data, result, parent."""
    parts = [f"taxifare {record.package_version or ''}".strip()]
    for split, seen in data_items(record.data):
        parts.append(f"{split}: {seen.get('dataset')} from {seen.get('source')}")
    if "val_mae" in record.metrics:
        parts.append(f"val MAE ${record.metrics['val_mae']:.2f}")
    if record.parent_version is not None:
        parts.append(f"fine-tuned from version {record.parent_version}")
    return "; ".join(parts)


def json_tag(tags: dict[str, str], key: str) -> dict[str, Any]:
    try:
        value = json.loads(tags.get(key, "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def model_id(mv: Any) -> str | None:
    """The LoggedModel behind a version (the REST API leaves `model_id` empty; `source` has it)."""
    if getattr(mv, "model_id", None):
        return str(mv.model_id)
    m = re.fullmatch(r"models:/(m-[0-9a-f]+)/?", str(mv.source or ""))
    return m.group(1) if m else None


def quote(text: str) -> str:
    """`text` as a quoted string in an MLflow search filter."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
