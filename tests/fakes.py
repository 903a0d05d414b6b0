"""In-memory fakes of the ports in `taxifare_cli.ports`, for unit tests of the services and the app.

They keep state in dicts and lists so a test can look at exactly what a service
did (what was put, fetched, promoted, recorded), and they raise the same domain
errors the real adapters promise (NotFoundError for what is not held, UsageError
for a stage that cannot be loaded). They are fakes: nothing here talks to disk
beyond the directories a test hands them. The real adapters (LocalStore, GcsStore,
BigQueryStore, LocalRegistry, MlflowRegistry, HttpSource) are tested against real
services in tests/integration (see test_store_contract.py, test_registry_contract.py).

Each fake subclasses the Protocol it stands for, so mypy checks its signatures
against the port.
"""

from __future__ import annotations

import builtins
import copy
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from taxifare_cli.core.simulator import iter_simulated_dataset
from taxifare_cli.core.vocabulary import LOADABLE_STAGES, STAGES, displaced
from taxifare_cli.errors import BusyError, NotFoundError, UsageError
from taxifare_cli.files.atomic import PART_SUFFIX
from taxifare_cli.files.ride_csv import count_rows, empty_frame, file_opener, iter_csv_chunks, sha256_file
from taxifare_cli.ports import (
    SILENT,
    DatasetInfo,
    DataStore,
    FileStore,
    ModelRef,
    ModelRegistry,
    ModelVersion,
    Notification,
    Notifier,
    Progress,
    Promotion,
    RideSource,
    RunHistory,
    Stage,
    TrainingRecord,
)

if TYPE_CHECKING:
    from taxifare_cli.core.cleaning import CleaningRules


# -- data stores ----------------------------------------------------------------------------


class MemoryStore(DataStore):
    """A DataStore that is not a FileStore (as BigQuery is): rides only as DataFrames in memory.

    `put` reads the CSV as `ride_csv` reads it (typed raw rides) and keeps the frame;
    `read_chunks` gives it back in chunks of at most `chunk_size`. Putting the same
    bytes again is a no-op that returns what was held, `updated` included.
    """

    def __init__(self, *, kind: str = "bigquery") -> None:
        self.kind = kind
        self.frames: dict[str, pd.DataFrame] = {}
        self.infos: dict[str, DatasetInfo] = {}
        self.puts: builtins.list[str] = []  # every put that changed what is held, in order
        self.reads: builtins.list[str] = []  # every read_chunks call, in order

    def _location(self, name: str) -> str:
        return f"memory://{self.kind}/{name}"

    def describe(self, name: str) -> DatasetInfo | None:
        return self.infos.get(name)

    def list(self) -> builtins.list[DatasetInfo]:
        return [self.infos[name] for name in sorted(self.infos)]

    def read_chunks(
        self, name: str, chunk_size: int, *, rules: CleaningRules | None = None
    ) -> Iterator[pd.DataFrame]:
        if name not in self.frames:  # raised at the call, as the real stores do
            raise NotFoundError(f"{name} is not in the {self.kind} fake store")
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be > 0, got {chunk_size}")
        self.reads.append(name)
        return self._chunks(self.frames[name], chunk_size)

    @staticmethod
    def _chunks(frame: pd.DataFrame, chunk_size: int) -> Iterator[pd.DataFrame]:
        for start in range(0, len(frame), chunk_size):
            chunk = frame.iloc[start : start + chunk_size].copy()
            chunk.attrs = {"malformed_rows": 0}
            yield chunk

    def put(self, name: str, csv_path: Path, *, source: str) -> DatasetInfo:
        checksum = sha256_file(csv_path)
        current = self.infos.get(name)
        if current is not None and current.checksum == checksum:
            return current
        chunks = list(iter_csv_chunks(file_opener(csv_path), 1_000_000, name=name))
        frame = pd.concat(chunks, ignore_index=True) if chunks else empty_frame()
        frame.attrs = {}
        info = DatasetInfo(
            name=name,
            rows=count_rows(csv_path),
            bytes=csv_path.stat().st_size,
            updated=datetime.now(UTC),
            location=self._location(name),
            checksum=checksum,
            source=source,
        )
        self.frames[name] = frame
        self.infos[name] = info
        self.puts.append(name)
        return info

    def delete(self, name: str) -> bool:
        self.frames.pop(name, None)
        return self.infos.pop(name, None) is not None


class FakeStore(MemoryStore, FileStore):
    """A FileStore: rides in memory as MemoryStore keeps them, plus the CSV bytes under `root`.

    `path(name)` is where the bytes of `name` are kept (so an upload from it copies
    the file unchanged, as from the local store); `staging_path` makes a new empty
    `.part` file in `root` and remembers it in `staged`.
    """

    def __init__(self, root: Path, *, kind: str = "local") -> None:
        super().__init__(kind=kind)
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.staged: builtins.list[Path] = []

    def _location(self, name: str) -> str:
        return str(self.path(name))

    def path(self, name: str) -> Path:
        return self.root / f"{name}.csv"

    def staging_path(self, name: str) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=PART_SUFFIX, dir=self.root)
        os.close(fd)
        self.staged.append(Path(tmp))
        return Path(tmp)

    def put(self, name: str, csv_path: Path, *, source: str) -> DatasetInfo:
        before = self.infos.get(name)
        info = super().put(name, csv_path, source=source)
        if info is not before:
            shutil.copyfile(csv_path, self.path(name))
        return info

    def delete(self, name: str) -> bool:
        self.path(name).unlink(missing_ok=True)
        return super().delete(name)

    def put_frame(self, name: str, frame: pd.DataFrame, *, source: str = "test") -> DatasetInfo:
        """Write `frame` as a raw CSV (as the real files are written) and put it under `name`."""
        from taxifare_cli.files.ride_csv import write_csv_atomic

        incoming = self.root / ".incoming"
        incoming.mkdir(exist_ok=True)
        path = incoming / f"{name}.csv"
        write_csv_atomic([frame], path)
        try:
            return self.put(name, path, source=source)
        finally:
            path.unlink(missing_ok=True)

    def leftovers(self) -> builtins.list[Path]:
        """Staging files that still exist (each should have been put or removed)."""
        return [p for p in self.staged if p.exists()]


# -- ride sources ---------------------------------------------------------------------------


class FakeSource(RideSource):
    """Writes `rows` simulated raw rides for any dataset name (`core.simulator`), deterministically.

    A size (`train_1k`) gets `rows` rows whatever its nominal size; a month gets
    the train or val share of a `rows`-ride month. With `text`, it writes that
    instead (to play a server that answers with something that is not rides).
    `fetches` lists the names fetched, in order. Change `seed` to change the content.
    """

    def __init__(
        self, *, rows: int = 1_000, seed: int = 1, kind: str = "fake", text: str | None = None
    ) -> None:
        self.kind = kind
        self.rows = rows
        self.seed = seed
        self.text = text
        self.fetches: list[str] = []

    def describe(self, name: str) -> str:
        return f"fake (seed {self.seed})"

    def fetch(self, name: str, dest: Path, *, progress: Progress = SILENT) -> None:
        from taxifare_cli.files.ride_csv import write_csv_atomic

        self.fetches.append(name)
        if self.text is not None:
            dest.write_text(self.text, encoding="utf-8")
            return
        chunks = iter_simulated_dataset(
            name, chunk_size=50_000, seed=self.seed, rows=self.rows, month_rows=self.rows
        )
        write_csv_atomic(chunks, dest)


# -- registry -------------------------------------------------------------------------------


class FakeRegistry(ModelRegistry):
    """Model versions in memory; each artifact copied under `root/<version>` so FareModel.load works.

    `get`, `list` and `fetch_artifact` return copies, so a test cannot change what is
    held by accident. `promotions` lists every promotion made; `records` the
    TrainingRecord each version was saved with.
    """

    def __init__(self, root: Path, *, kind: str = "fake") -> None:
        self.kind = kind
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.versions: dict[int, ModelVersion] = {}
        self.records: dict[int, TrainingRecord] = {}
        self.promotions: list[Promotion] = []
        self.fetched: list[ModelRef] = []

    def artifact_dir(self, version: int) -> Path:
        return self.root / str(version)

    def holder(self, stage: Stage) -> int | None:
        """The version in `stage` (Staging or Production), or None."""
        return next((n for n, v in self.versions.items() if v.stage == stage), None)

    def save(self, artifact_dir: Path, record: TrainingRecord) -> ModelVersion:
        number = max(self.versions, default=0) + 1
        shutil.copytree(artifact_dir, self.artifact_dir(number))
        mv = ModelVersion(
            version=number,
            stage="None",
            created_at=datetime.now(UTC),
            params=copy.deepcopy(record.params),
            metrics=dict(record.metrics),
            data=copy.deepcopy(record.data),
            package_version=record.package_version,
            git_commit=record.git_commit,
            parent_version=record.parent_version,
        )
        self.versions[number] = mv
        self.records[number] = record
        return copy.deepcopy(mv)

    def _resolve(self, ref: ModelRef) -> int:
        if ref.version is not None:
            if ref.version not in self.versions:
                raise NotFoundError(f"model version {ref.version} does not exist")
            return ref.version
        if ref.stage not in LOADABLE_STAGES:
            raise UsageError(f"cannot load by stage {ref.stage!r}: use Staging, Production or a version")
        held = self.holder(ref.stage)
        if held is None:
            raise NotFoundError(f"no model is in {ref.stage}")
        return held

    def get(self, ref: ModelRef) -> ModelVersion:
        return copy.deepcopy(self.versions[self._resolve(ref)])

    def fetch_artifact(self, ref: ModelRef, dest: Path) -> tuple[ModelVersion, Path]:
        mv = self.get(ref)
        self.fetched.append(ref)
        target = dest / "artifact"
        shutil.copytree(self.artifact_dir(mv.version), target, dirs_exist_ok=True)
        return mv, target

    def list(self) -> list[ModelVersion]:
        return [copy.deepcopy(self.versions[n]) for n in sorted(self.versions)]

    def promote(self, version: int, stage: Stage, *, by: str) -> Promotion:
        if stage not in STAGES:
            raise UsageError(f"unknown stage {stage!r}: choose one of {', '.join(STAGES)}")
        if version not in self.versions:
            raise NotFoundError(f"model version {version} does not exist")
        previous = displaced(stage, version, self.holder(stage))
        if previous is not None:
            self.versions[previous].stage = "Archived"
        self.versions[version].stage = stage
        promotion = Promotion(version, stage, previous, datetime.now(UTC), by)
        self.promotions.append(promotion)
        return promotion

    def record_evaluation(self, version: int, evaluation: dict[str, Any]) -> None:
        if version not in self.versions:
            raise NotFoundError(f"model version {version} does not exist")
        self.versions[version].evaluations.append(dict(evaluation))

    def stages(self) -> dict[int, Stage]:
        """{version: stage} of every version, for short assertions."""
        return {n: v.stage for n, v in sorted(self.versions.items())}


# -- progress -------------------------------------------------------------------------------


@dataclass
class RecordingProgress(Progress):
    """Keeps every call as (method, task or message, amount or total, info or unit)."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def start(self, task: str, total: float | None = None, unit: str = "rows") -> None:
        self.calls.append(("start", task, total, unit))

    def advance(self, task: str, amount: float = 1.0, *, info: str = "") -> None:
        self.calls.append(("advance", task, amount, info))

    def finish(self, task: str) -> None:
        self.calls.append(("finish", task))

    def log(self, message: str) -> None:
        self.calls.append(("log", message))

    def tasks(self, method: str) -> list[str]:
        """The task (or message) of each call of `method`, in order."""
        return [c[1] for c in self.calls if c[0] == method]

    def advanced(self, task: str) -> float:
        """The total amount `task` was advanced by."""
        return sum(c[2] for c in self.calls if c[0] == "advance" and c[1] == task)


# -- the workflow's ports ---------------------------------------------------------------------


class FakeNotifier(Notifier):
    """Keeps every Notification it is handed in `notes`; raises `fail` (after keeping it) when set."""

    def __init__(self, *, fail: Exception | None = None, kind: str = "fake") -> None:
        self.kind = kind
        self.fail = fail
        self.notes: list[Notification] = []

    def notify(self, note: Notification) -> None:
        self.notes.append(copy.deepcopy(note))
        if self.fail is not None:
            raise self.fail


class FakeHistory(RunHistory):
    """A RunHistory in memory: journals by month, finished runs in a list, a lock that is a flag.

    `lock()` raises BusyError while another `lock()` of this object is held, as the
    real one does across processes. Everything handed in or out is a deep copy, so a
    test sees what was written, not the object a MonthRun keeps changing.
    """

    def __init__(self, *, kind: str = "memory") -> None:
        self.kind = kind
        self.journals: dict[str, dict[str, Any]] = {}
        self.recorded: list[dict[str, Any]] = []
        self.journal_writes: list[tuple[str, dict[str, Any]]] = []  # (month, journal) of each write
        self.held = False

    @contextmanager
    def lock(self) -> Iterator[None]:
        if self.held:
            raise BusyError("another workflow run holds the fake history's lock")
        self.held = True
        try:
            yield
        finally:
            self.held = False

    def journal(self, month: str) -> dict[str, Any]:
        return copy.deepcopy(self.journals.get(month, {}))

    def write_journal(self, month: str, journal: dict[str, Any]) -> None:
        self.journals[month] = copy.deepcopy(journal)
        self.journal_writes.append((month, copy.deepcopy(journal)))

    def record(self, run: dict[str, Any]) -> None:
        self.recorded.append(copy.deepcopy(run))
        self.journals.pop(str(run.get("month", "")), None)

    def runs(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self.recorded)
