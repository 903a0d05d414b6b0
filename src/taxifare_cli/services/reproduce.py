"""reproduce_model: rebuild a registered version from its record and say whether it comes out the same.

A version records the checksum and dataset of the train and val data it saw,
its hyper-parameters and seed, the chunk size (the first pass shuffles within
chunks) and, in its artifact, the feature version. Reproducing finds those
exact bytes (the recorded store if it still holds them, the local file if
its sha256 matches, another store under the name, else the bucket's content
address), retrains with the recorded parameters, and compares the new
validation MAE with the recorded one. Nothing is registered unless asked:
the retrained model goes to a sink. A version this registry lacks is read
from the record another machine's registry published to the bucket
(model_record.py), feature version included.

How close is "the same": on one machine with the same number of CPU threads,
training is bit-identical (same data, seed and parameters, same MAE to the
last digit). TensorFlow's kernels split sums over the intra-op threads, so
another thread count (or another CPU) adds in another order: measured on 10k
synthetic rides, 1 thread against 2 moved the val MAE by $0.0004 (1.76434 vs
1.76477), while other seeds land $0.0005-$0.013 away. DEFAULT_TOLERANCE is
ten times the thread effect.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxifare_cli.artifact import FEATURES_FILE
from taxifare_cli.core.features import FEATURE_VERSION
from taxifare_cli.core.model import HyperParams
from taxifare_cli.errors import DataError, NotFoundError, UsageError
from taxifare_cli.files.atomic import scratch_dir
from taxifare_cli.files.ride_csv import file_opener, iter_csv_chunks, sha256_file
from taxifare_cli.ports import (
    SILENT,
    DatasetInfo,
    DataStore,
    FileStore,
    ModelRecords,
    ModelRef,
    ModelRegistry,
    ModelVersion,
    Progress,
    Promotion,
    Stage,
    TrainingRecord,
    VersionedStore,
)
from taxifare_cli.services.model_record import RecordedVersion, read_published

if TYPE_CHECKING:
    import pandas as pd

    from taxifare_cli.core.cleaning import CleaningRules

# Dollars of val MAE: see the module's docstring for where the figure comes from.
DEFAULT_TOLERANCE = 0.005
SPLITS = ("train", "val")


@dataclass
class DataFound:
    """Where one split's recorded data was found (or, on a dry run, would be read from)."""

    split: str
    dataset: str
    checksum: str
    where: str  # "local", "gcs", "bigquery" (the store holds it under its name), "gcs version"
    location: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v != "" or k != "note"}


@dataclass
class ReproduceResult:
    version: int
    recorded: dict[str, float]  # the version's val_mae, epochs_run, best_epoch
    reproduced: dict[str, float]  # the same, retrained (empty on a dry run)
    tolerance: float
    data: list[DataFound]
    params: dict[str, Any]
    feature_version: int | str | None
    dry_run: bool = False
    registered: int | None = None
    duration_s: float = 0.0
    record_from: str | None = None  # the bucket's record, when this registry lacks the version

    @property
    def difference(self) -> float | None:
        if "val_mae" not in self.reproduced:
            return None
        return abs(self.reproduced["val_mae"] - self.recorded["val_mae"])

    @property
    def agrees(self) -> bool | None:
        """Within the tolerance (None on a dry run)."""
        diff = self.difference
        return None if diff is None else diff <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "dry_run": self.dry_run,
            "recorded": self.recorded,
            "reproduced": self.reproduced,
            "difference": self.difference,
            "tolerance": self.tolerance,
            "agrees": self.agrees,
            "data": [d.as_dict() for d in self.data],
            "params": self.params,
            "feature_version": self.feature_version,
            "registered": self.registered,
            "record_from": self.record_from,
            "duration_s": round(self.duration_s, 2),
        }


def reproduce_model(
    version: int,
    *,
    registry: ModelRegistry,
    local: FileStore,
    places: Sequence[DataStore] = (),
    records: ModelRecords | None = None,
    model_name: str = "taxifare",
    dry_run: bool = False,
    register: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: Progress = SILENT,
    announce: Callable[[str], None] | None = None,
) -> ReproduceResult:
    """Retrain `version` on its exact data with its recorded parameters; compare the val MAE.

    `places` are the other configured stores (the bucket, BigQuery); `records`
    the bucket's published records of `model_name`, read when the registry has
    no such version. Raises
    NotFoundError (exit 4) naming the checksum of data held nowhere, DataError
    when the record lacks what a rebuild needs.
    """
    if tolerance < 0:
        raise UsageError("--tolerance cannot be negative")
    started = time.monotonic()
    mv, published = _find_version(version, registry, records, model_name)
    if mv.parent_version is not None:
        raise DataError(
            f"version {version} was fine-tuned from version {mv.parent_version}: "
            "only versions trained from scratch can be reproduced",
            hint=f"reproduce version {mv.parent_version} instead",
        )
    hp, chunk_size = _recorded_params(mv)
    keys: tuple[str, ...] = ("val_mae", "epochs_run", "best_epoch")
    recorded = {k: float(mv.metrics[k]) for k in keys if k in mv.metrics}
    if "val_mae" not in recorded:
        raise DataError(f"version {version} records no val_mae to compare with")
    with scratch_dir("reproduce") as scratch:
        feature_version = (
            published.feature_version
            if published is not None
            else _feature_version(registry, version, scratch / "artifact")
        )
        if feature_version != FEATURE_VERSION:
            raise DataError(
                f"version {version} was trained on features v{feature_version}; "
                f"this taxifare computes v{FEATURE_VERSION}",
                hint=f"reproduce it with taxifare {mv.package_version or 'of that time'}",
            )
        found = [_locate(mv, split, local, places) for split in SPLITS]
        result = ReproduceResult(
            version=version,
            recorded=recorded,
            reproduced={},
            tolerance=tolerance,
            data=[f for f, _ in found],
            params=dict(mv.params),
            feature_version=feature_version,
            dry_run=dry_run,
            record_from=published.location if published is not None else None,
        )
        if dry_run:
            return result
        if announce is not None:  # once the version and its data are found: the long part starts
            announce(f"reproducing version {version} (training again: this takes as long as it did)")
        pinned = _Pinned(found, scratch, progress)
        sink: ModelRegistry = registry if register else _Unregistered()
        from taxifare_cli.services.training import train_model  # TensorFlow: only when training

        trained = train_model(
            pinned,
            sink,
            train_name=found[0][0].dataset,
            val_name=found[1][0].dataset,
            chunk_size=chunk_size,
            hp=hp,
            progress=progress,
            work_dir=scratch,
        )
    result.reproduced = {
        "val_mae": trained.metrics["val_mae"],
        "epochs_run": float(trained.epochs_run),
        "best_epoch": float(trained.best_epoch),
    }
    result.registered = trained.version.version if register else None
    result.duration_s = time.monotonic() - started
    return result


def _find_version(
    version: int, registry: ModelRegistry, records: ModelRecords | None, model_name: str
) -> tuple[ModelVersion, RecordedVersion | None]:
    """The registry's version, else its record in the bucket (another machine's registry published it)."""
    try:
        return registry.get(ModelRef(version=version)), None
    except NotFoundError as e:
        if records is None:
            raise
        published = read_published(records, model_name, version)
        if published is None:
            raise NotFoundError(
                f"{e.message}, and {records.record_location(model_name, version)} does not exist",
                hint=e.hint,
            ) from None
        return published.version, published


def _recorded_params(mv: ModelVersion) -> tuple[HyperParams, int]:
    p = mv.params
    try:
        hp = HyperParams(
            hidden_layers=tuple(int(u) for u in p["hidden_layers"]),
            learning_rate=float(p["learning_rate"]),
            dropout=float(p["dropout"]),
            batch_size=int(p["batch_size"]),
            epochs=int(p["epochs"]),
            patience=int(p["patience"]),
            seed=int(p["seed"]),
            # Versions trained before the cosine schedule record none: theirs was the plateau one.
            schedule=str(p.get("schedule", "plateau")),
        )
        return hp, int(p["chunk_size"])
    except KeyError as e:
        raise DataError(
            f"version {mv.version} does not record its {e.args[0]}: it cannot be rebuilt"
        ) from None
    except (TypeError, ValueError) as e:
        raise DataError(f"version {mv.version} records unreadable parameters: {e}") from None


def _feature_version(registry: ModelRegistry, version: int, dest: Path) -> int | str | None:
    _, artifact = registry.fetch_artifact(ModelRef(version=version), dest)
    try:
        meta = json.loads((artifact / FEATURES_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read the feature contract of version {version}: {e}") from None
    value = meta.get("feature_version")
    return value if isinstance(value, int | str) else None


# Where a split's data is read from: a store under the dataset's name, a local file, or a bucket version.
_Source = tuple[DataStore, str] | Path | tuple[VersionedStore, str, None]


def _locate(
    mv: ModelVersion, split: str, local: FileStore, places: Sequence[DataStore]
) -> tuple[DataFound, _Source]:
    rec = mv.data.get(split) or {}
    dataset, checksum = rec.get("dataset"), rec.get("checksum")
    if not dataset or not checksum:
        raise DataError(
            f"version {mv.version} records no checksum of its {split} data: it cannot be reproduced exactly"
        )
    kind = rec.get("source")

    def held_by(stores: Sequence[DataStore]) -> tuple[DataFound, _Source] | None:
        for store in stores:
            info = store.describe(dataset)
            if info is not None and info.checksum == checksum:
                return DataFound(split, dataset, checksum, store.kind, info.location), (store, dataset)
        return None

    # The recorded store first (BigQuery reads in its own order, which a CSV copy would not
    # keep), then this machine's file, then the other stores under the name, then versions.
    first = held_by([s for s in places if s.kind == kind])
    if first is not None:
        return first
    path = local.path(dataset)
    if path.is_file() and sha256_file(path) == checksum:  # hashed now: a manifest can be stale
        return DataFound(split, dataset, checksum, local.kind, str(path), _order_note(kind)), path
    elsewhere = held_by([s for s in places if s.kind != kind])
    if elsewhere is not None:
        return elsewhere
    for store in places:
        if isinstance(store, VersionedStore):
            info = store.describe_version(checksum)
            if info is not None:
                found = DataFound(
                    split, dataset, checksum, f"{store.kind} version", info.location, _order_note(kind)
                )
                return found, (store, checksum, None)
    where = [f"{local.kind} ({local.path(dataset)})"] + [
        s.version_location(checksum) if isinstance(s, VersionedStore) else s.kind for s in places
    ]
    raise NotFoundError(
        f"the {split} data of version {mv.version} ({dataset}, {checksum}) is held nowhere: "
        f"not in {', '.join(where)}",
        hint="upload it from a machine that has it: taxifare data upload --to gcs --size/--month ...",
    )


def _order_note(kind: str | None) -> str:
    if kind == "bigquery":
        return "the same rows as the table held, but in file order, not BigQuery's: expect a small difference"
    return ""


class _Pinned:
    """A read-only DataStore of exactly the data found: each dataset read from where it was found."""

    kind = "reproduce"

    def __init__(self, found: list[tuple[DataFound, _Source]], scratch: Path, progress: Progress) -> None:
        self._found = {f.dataset: (f, src) for f, src in found}
        self._scratch = scratch
        self._progress = progress

    def describe(self, name: str) -> DatasetInfo | None:
        if name not in self._found:
            return None
        f, _ = self._found[name]
        return DatasetInfo(name, None, None, None, f.location, checksum=f.checksum, source=f.where)

    def list(self) -> builtins.list[DatasetInfo]:
        return [i for i in (self.describe(n) for n in sorted(self._found)) if i is not None]

    def read_chunks(
        self, name: str, chunk_size: int, *, rules: CleaningRules | None = None
    ) -> Iterator[pd.DataFrame]:
        if name not in self._found:
            raise NotFoundError(f"{name} is not part of this reproduction")
        f, src = self._found[name]
        if isinstance(src, tuple) and len(src) == 3:  # a bucket version: fetched once, verified
            versioned, checksum, _ = src
            path = self._scratch / f"{name}.csv"
            if not path.is_file():
                versioned.download_version(checksum, path, progress=self._progress)
            self._found[name] = (f, path)
            src = path
        if isinstance(src, Path):
            return iter_csv_chunks(file_opener(src), chunk_size, name=name)
        store, dataset = src[0], src[1]
        assert isinstance(store, DataStore) and isinstance(dataset, str)
        return store.read_chunks(dataset, chunk_size, rules=rules)

    def put(self, name: str, csv_path: Path, *, source: str) -> DatasetInfo:
        raise UsageError("a reproduction reads only the data it found")

    def delete(self, name: str) -> bool:
        raise UsageError("a reproduction reads only the data it found")


@dataclass
class _Unregistered:
    """A registry that keeps nothing: where a reproduction's model goes unless --register."""

    kind: str = "none"
    records: list[TrainingRecord] = field(default_factory=list)

    def save(self, artifact_dir: Path, record: TrainingRecord) -> ModelVersion:
        self.records.append(record)
        return ModelVersion(
            version=0,
            stage="None",
            created_at=datetime.now(timezone.utc),
            params=record.params,
            metrics=record.metrics,
            data=record.data,
        )

    def get(self, ref: ModelRef) -> ModelVersion:
        raise NotFoundError(f"no {ref}: a reproduction registers nothing")

    def fetch_artifact(self, ref: ModelRef, dest: Path) -> tuple[ModelVersion, Path]:
        raise NotFoundError(f"no {ref}: a reproduction registers nothing")

    def list(self) -> builtins.list[ModelVersion]:
        return []

    def promote(self, version: int, stage: Stage, *, by: str) -> Promotion:
        raise UsageError("a reproduction registers nothing")

    def record_evaluation(self, version: int, evaluation: dict[str, Any]) -> None:
        pass

    def promotions(self) -> builtins.list[dict[str, Any]]:
        return []
