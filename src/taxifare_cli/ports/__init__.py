"""The seams between services and the outside world, and the records they pass.

Each Protocol is implemented once per backend in `adapters/`; `bootstrap.py`
chooses which. Services depend only on what is here. The package is split by
concern (progress, data, models, workflow, cloud); every name is re-exported
here, so `from taxifare_cli.ports import X` is the one way to import them.
"""

from __future__ import annotations

from taxifare_cli.core.vocabulary import STAGES, Stage
from taxifare_cli.ports.cloud import JobLaunch, ObjectStore, RunnerState, TrainingRunner
from taxifare_cli.ports.data import (
    DatasetInfo,
    DataStore,
    Downloadable,
    FileStore,
    RideSource,
    VersionedStore,
)
from taxifare_cli.ports.models import (
    DataSeen,
    ModelRecords,
    ModelRef,
    ModelRegistry,
    ModelVersion,
    Promotion,
    TrainingRecord,
)
from taxifare_cli.ports.progress import SILENT, Progress, SilentProgress
from taxifare_cli.ports.workflow import (
    MonthSteps,
    Notification,
    Notifier,
    RunHistory,
    ScheduledEngine,
    WorkflowEngine,
)

__all__ = [
    "SILENT",
    "STAGES",
    "DataSeen",
    "DataStore",
    "DatasetInfo",
    "Downloadable",
    "FileStore",
    "JobLaunch",
    "ModelRecords",
    "ModelRef",
    "ModelRegistry",
    "ModelVersion",
    "MonthSteps",
    "Notification",
    "Notifier",
    "ObjectStore",
    "Progress",
    "Promotion",
    "RideSource",
    "RunHistory",
    "RunnerState",
    "ScheduledEngine",
    "SilentProgress",
    "Stage",
    "TrainingRecord",
    "TrainingRunner",
    "VersionedStore",
    "WorkflowEngine",
]
