"""LocalRegistry: model versions in a directory, safe for concurrent processes.

Layout under `<root>/<model name>/`:
  versions/<N>/artifact/    the model artifact (see artifact.py)
  versions/<N>/version.json params, metrics, data seen, evaluations
  stages.json               which version holds Staging / Production; archived ones
  promotions.jsonl          every promotion, appended
  .lock                     an flock held while anything is written
A version directory is complete before it gets its number: it is built under a
temporary name and renamed, so a reader never sees half a version.
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxifare_cli.core.vocabulary import LOADABLE_STAGES, STAGES, displaced
from taxifare_cli.errors import STOP, ConfigError, NotFoundError, UsageError
from taxifare_cli.files.atomic import sweep_leftovers, write_json_atomic
from taxifare_cli.files.plots import draw_plots
from taxifare_cli.ports import ModelRef, ModelVersion, Promotion, Stage, TrainingRecord

if TYPE_CHECKING:
    from taxifare_cli.settings import Settings

ARTIFACT = "artifact"
PLOTS = "plots"


class LocalRegistry:
    kind = "local"

    def __init__(self, root: Path, model_name: str = "taxifare") -> None:
        self.dir = root / model_name
        self.versions_dir = self.dir / "versions"

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalRegistry:
        return cls(settings.registry_dir, settings.registry.model_name)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ConfigError(
                f"registry directory {self.dir} is not writable: {e.strerror}",
                hint="set registry.local_path (env LOCAL_REGISTRY_PATH) to a directory you can write",
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _stages(self) -> dict[str, Any]:
        path = self.dir / "stages.json"
        if not path.is_file():
            return {"Staging": None, "Production": None, "archived": []}
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data

    def _stage_of(self, version: int, stages: dict[str, Any]) -> Stage:
        if stages.get("Production") == version:
            return "Production"
        if stages.get("Staging") == version:
            return "Staging"
        if version in stages.get("archived", []):
            return "Archived"
        return "None"

    def _numbers(self) -> list[int]:
        if not self.versions_dir.is_dir():
            return []
        return sorted(int(p.name) for p in self.versions_dir.iterdir() if p.name.isdigit())

    def _read(self, version: int, stages: dict[str, Any]) -> ModelVersion:
        path = self.versions_dir / str(version) / "version.json"
        if not path.is_file():
            raise NotFoundError(f"model version {version} does not exist", hint="see `taxifare model ls`")
        mv = ModelVersion.from_dict(json.loads(path.read_text(encoding="utf-8")))
        mv.stage = self._stage_of(version, stages)
        plots = path.parent / PLOTS
        if plots.is_dir():
            mv.plots = {png.stem: str(png) for png in sorted(plots.glob("*.png"))}
        return mv

    def save(self, artifact_dir: Path, record: TrainingRecord) -> ModelVersion:
        with tempfile.TemporaryDirectory(prefix="taxifare-plots-") as drawn:
            plots = draw_plots(record, Path(drawn))  # outside the lock: drawing takes a second
            return self._save(artifact_dir, record, plots)

    def _save(self, artifact_dir: Path, record: TrainingRecord, plots: builtins.list[Path]) -> ModelVersion:
        with self._locked():
            sweep_leftovers(self.versions_dir, ".new-*")  # a version a killed process was writing
            staging = Path(tempfile.mkdtemp(prefix=f".new-{os.getpid()}-", dir=self.versions_dir))
            try:
                shutil.copytree(artifact_dir, staging / ARTIFACT)
                (staging / PLOTS).mkdir()
                for png in plots:
                    shutil.copy2(png, staging / PLOTS / png.name)
                for extra in record.extra_artifacts:
                    shutil.copy2(extra, staging / extra.name)
                number = (self._numbers() or [0])[-1] + 1
                mv = ModelVersion(
                    version=number,
                    stage="None",
                    created_at=datetime.now(timezone.utc),
                    params=record.params,
                    metrics=record.metrics,
                    data=record.data,
                    package_version=record.package_version,
                    git_commit=record.git_commit,
                    parent_version=record.parent_version,
                )
                payload = mv.as_dict() | {"history": record.history}
                write_json_atomic(staging / "version.json", payload)
                STOP.check()  # the commit point: a stop asked meanwhile leaves no version
                os.rename(staging, self.versions_dir / str(number))
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            mv.plots = {png.stem: str(self.versions_dir / str(number) / PLOTS / png.name) for png in plots}
            return mv

    def _resolve(self, ref: ModelRef, stages: dict[str, Any]) -> int:
        if ref.version is not None:
            return ref.version
        if ref.stage in LOADABLE_STAGES:
            held = stages.get(ref.stage)
            if held is None:
                raise NotFoundError(
                    f"no model is in {ref.stage}",
                    hint="promote one: taxifare model promote --version N --stage " + str(ref.stage),
                )
            return int(held)
        raise UsageError(f"cannot load by stage {ref.stage!r}: use Staging, Production or a version")

    def get(self, ref: ModelRef) -> ModelVersion:
        stages = self._stages()
        return self._read(self._resolve(ref, stages), stages)

    def fetch_artifact(self, ref: ModelRef, dest: Path) -> tuple[ModelVersion, Path]:
        mv = self.get(ref)
        # Artifacts are immutable once written: read them in place, no copy.
        return mv, self.versions_dir / str(mv.version) / ARTIFACT

    def list(self) -> list[ModelVersion]:
        stages = self._stages()
        return [self._read(n, stages) for n in self._numbers()]

    def promote(self, version: int, stage: Stage, *, by: str) -> Promotion:
        if stage not in STAGES:
            raise UsageError(f"unknown stage {stage!r}: choose one of {', '.join(STAGES)}")
        with self._locked():
            stages = self._stages()
            self._read(version, stages)  # raises if it does not exist
            archived: list[int] = list(stages.get("archived", []))
            previous: int | None = None
            for s in ("Staging", "Production"):
                if stages.get(s) == version:
                    stages[s] = None
            if version in archived:
                archived.remove(version)
            if stage in LOADABLE_STAGES:
                previous = displaced(stage, version, stages.get(stage))
                if previous is not None:
                    archived.append(previous)
                stages[stage] = version
            elif stage == "Archived":
                archived.append(version)
            stages["archived"] = sorted(set(archived))
            promotion = Promotion(version, stage, previous, datetime.now(timezone.utc), by)
            write_json_atomic(self.dir / "stages.json", stages)
            with (self.dir / "promotions.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(promotion.as_dict()) + "\n")
            return promotion

    def promotions(self) -> builtins.list[dict[str, Any]]:
        path = self.dir / "promotions.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def record_evaluation(self, version: int, evaluation: dict[str, Any]) -> None:
        with self._locked():
            path = self.versions_dir / str(version) / "version.json"
            if not path.is_file():
                raise NotFoundError(f"model version {version} does not exist")
            payload = json.loads(path.read_text(encoding="utf-8"))
            payload.setdefault("evaluations", []).append(evaluation)
            write_json_atomic(path, payload)
