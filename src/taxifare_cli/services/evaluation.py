"""evaluate_model: a registered model's error on a dataset, recorded with the version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from taxifare_cli.artifact import FareModel
from taxifare_cli.core.cleaning import CleaningReport, clean_chunk
from taxifare_cli.core.model import MetricAccumulator
from taxifare_cli.errors import STOP, DataError
from taxifare_cli.files.atomic import scratch_dir
from taxifare_cli.ports import SILENT, DataStore, ModelRef, ModelRegistry, ModelVersion, Progress


@dataclass
class EvaluationResult:
    version: ModelVersion
    dataset: str
    source: str
    metrics: dict[str, float]
    report: CleaningReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.version,
            "stage": self.version.stage,
            "dataset": self.dataset,
            "source": self.source,
            "metrics": self.metrics,
            "cleaning": self.report.as_dict(),
        }


def evaluate_model(
    store: DataStore,
    registry: ModelRegistry,
    ref: ModelRef,
    *,
    dataset: str,
    chunk_size: int,
    record: bool = True,
    progress: Progress = SILENT,
) -> EvaluationResult:
    """MAE and RMSE of the model `ref` on `dataset`, streamed chunk by chunk."""
    with scratch_dir("eval") as tmp:
        version, artifact = registry.fetch_artifact(ref, Path(tmp))
        model = FareModel.load(artifact)
        acc = MetricAccumulator()
        report = CleaningReport()
        info = store.describe(dataset)
        task = f"evaluating on {dataset}"
        progress.start(task, total=info.rows if info and info.rows else None)
        for chunk in store.read_chunks(dataset, chunk_size):
            STOP.check()
            clean, rep = clean_chunk(chunk)
            report.add(rep)
            progress.advance(task, rep.rows_in)
            if not clean.empty:
                acc.update(clean["fare_amount"].to_numpy(), model.predict(clean))
        progress.finish(task)
    if acc.n == 0:
        raise DataError(f"{dataset} has no usable rows to evaluate on ({report.rows_in} read)")
    metrics = acc.result()
    if record:
        registry.record_evaluation(
            version.version,
            {
                "at": datetime.now(timezone.utc).isoformat(),
                "dataset": dataset,
                "source": store.kind,
                "checksum": info.checksum if info else None,
                "mae": metrics["mae"],
                "rmse": metrics["rmse"],
                "rows": metrics["rows"],
            },
        )
    return EvaluationResult(version, dataset, store.kind, metrics, report)
