"""The model registry and the records it keeps: versions, stages, promotions, what training hands it."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from taxifare_cli.core.vocabulary import Stage


@dataclass
class DataSeen:
    """The data a model was trained or evaluated on."""

    dataset: str
    source: str
    rows: int
    checksum: str | None = None


@dataclass
class ModelVersion:
    """One registered model version and everything recorded about it."""

    version: int
    stage: Stage
    created_at: datetime
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # train/val DataSeen as dicts
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    package_version: str | None = None
    git_commit: str | None = None
    run_id: str | None = None  # tracking run (MLflow) when there is one
    parent_version: int | None = None  # the version it was fine-tuned from
    plots: dict[str, str] = field(default_factory=dict)  # name -> path or URI (learning curve, residuals)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stage": self.stage,
            "created_at": self.created_at.isoformat(),
            "params": self.params,
            "metrics": self.metrics,
            "data": self.data,
            "evaluations": self.evaluations,
            "package_version": self.package_version,
            "git_commit": self.git_commit,
            "run_id": self.run_id,
            "parent_version": self.parent_version,
            "plots": self.plots,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        return cls(
            version=int(d["version"]),
            stage=d.get("stage", "None"),
            created_at=datetime.fromisoformat(d["created_at"]),
            params=d.get("params", {}),
            metrics=d.get("metrics", {}),
            data=d.get("data", {}),
            evaluations=d.get("evaluations", []),
            package_version=d.get("package_version"),
            git_commit=d.get("git_commit"),
            run_id=d.get("run_id"),
            parent_version=d.get("parent_version"),
        )


@dataclass(frozen=True)
class ModelRef:
    """Which model: a version number or a stage."""

    version: int | None = None
    stage: Stage | None = None

    def __str__(self) -> str:
        return f"version {self.version}" if self.version is not None else f"stage {self.stage}"


@dataclass
class Promotion:
    version: int
    stage: Stage
    previous: int | None  # the version that held the stage before, now Archived
    at: datetime
    by: str
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stage": self.stage,
            "previous": self.previous,
            "at": self.at.isoformat(),
            "by": self.by,
            "dry_run": self.dry_run,
        }


@dataclass
class TrainingRecord:
    """What a training run hands the registry along with the artifact."""

    params: dict[str, Any]
    metrics: dict[str, float]
    data: dict[str, Any]
    history: dict[str, list[float]]  # per-epoch loss, mae, val_loss, val_mae
    package_version: str | None
    git_commit: str | None
    parent_version: int | None = None
    # Files to keep beside the run (plots, feature config) where the backend can.
    extra_artifacts: list[Path] = field(default_factory=list)
    # (true fares, predicted fares) of up to a few thousand validation rides, for a residual plot.
    val_predictions: tuple[list[float], list[float]] | None = None


class ModelRegistry(Protocol):
    """Where trained models are versioned and staged."""

    kind: str

    def save(self, artifact_dir: Path, record: TrainingRecord) -> ModelVersion:
        """Register a new version; all or nothing."""
        ...

    def get(self, ref: ModelRef) -> ModelVersion:
        """Raise NotFoundError if there is no such version or nothing in that stage."""
        ...

    def fetch_artifact(self, ref: ModelRef, dest: Path) -> tuple[ModelVersion, Path]:
        """Copy (or point at) the artifact directory of `ref`; return it with its version."""
        ...

    def list(self) -> list[ModelVersion]:
        """All versions, oldest first."""
        ...

    def promote(self, version: int, stage: Stage, *, by: str) -> Promotion:
        """Put `version` in `stage`, archiving the previous holder of that stage."""
        ...

    def record_evaluation(self, version: int, evaluation: dict[str, Any]) -> None:
        """Keep an evaluation (metrics, data, time) with the version."""
        ...

    def promotions(self) -> builtins.list[dict[str, Any]]:
        """Every promotion kept (Promotion.as_dict()), oldest first."""
        ...


@runtime_checkable
class ModelRecords(Protocol):
    """A place shared beyond one registry that keeps each version's record, written once (the bucket).

    It lets a machine whose registry lacks a version reproduce it from the
    record alone. Records are small JSON documents; nothing is ever replaced.
    """

    def record_location(self, model: str, version: int) -> str:
        """Where the record of `model`'s `version` is or would be kept."""
        ...

    def create_record(self, model: str, version: int, data: bytes) -> bool:
        """Write the record unless one is held: True if written, False if one was there (left as it is)."""
        ...

    def read_record(self, model: str, version: int) -> bytes | None:
        """The record's bytes, or None if none is held."""
        ...
