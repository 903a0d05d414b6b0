"""LocalRegistry: model versions in a directory, safe for concurrent processes.

Layout under `<root>/<model name>/`:
  versions/<N>/artifact/    the model artifact (see artifact.py)
  versions/<N>/version.json params, metrics, data seen, evaluations
  stages.json               which version holds Staging / Production; archived ones
  promotions.jsonl          every promotion, appended
  .lock                     an flock held while anything is written
A version directory is complete before it gets its number: it is built under a
temporary name and renamed, so a reader never sees half a version. `version.json`
records the sha256 of every artifact file (integrity.py); a version whose files no
longer match is refused when loaded. A damaged version (unreadable version.json,
an empty folder) is listed as such by `list` and refused by everything else, naming
the file; the other versions stay usable.
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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxifare_cli.adapters.registry.integrity import CHECKSUMS, digest_files, verify_artifact
from taxifare_cli.core.vocabulary import LOADABLE_STAGES, STAGES, displaced
from taxifare_cli.errors import STOP, ConfigError, DataError, NotFoundError, UsageError
from taxifare_cli.files.atomic import ensure_free_space, sweep_leftovers, write_json_atomic
from taxifare_cli.files.plots import draw_plots
from taxifare_cli.ports import ModelRef, ModelVersion, Promotion, Stage, TrainingRecord

if TYPE_CHECKING:
    from taxifare_cli.settings import Settings

ARTIFACT = "artifact"
PLOTS = "plots"
SPACE_MARGIN = 10_000_000  # bytes kept free beyond a version's own size when saving one


@dataclass
class BrokenVersion(ModelVersion):
    """A version folder that cannot be read; `list` shows it so one bad version hides no other."""

    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | {"problem": self.problem}


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
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise self._bad_stages(path, f"is not valid JSON ({e})") from e
        if not isinstance(data, dict) or not _valid_stages(data):
            raise self._bad_stages(
                path, 'is not {"Staging": N|null, "Production": N|null, "archived": [N, ...]}'
            )
        return data

    def _bad_stages(self, path: Path, what: str) -> DataError:
        replayed = replay_promotions(self.promotions())
        held = ", ".join(f"{s} version {v}" for s, v in replayed.items() if s != "archived" and v is not None)
        said = f"; promotions.jsonl ends with {held}" if held else ""
        return DataError(
            f"the registry's stage file {path} {what}",
            hint=f"move it aside (every version is then in no stage) and promote again with "
            f"`taxifare model promote`{said}",
        )

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

    def _record(self, version: int) -> dict[str, Any]:
        """The parsed version.json of `version`: NotFoundError if no such version, DataError if damaged."""
        folder = self.versions_dir / str(version)
        path = folder / "version.json"
        if not folder.is_dir():
            raise NotFoundError(f"model version {version} does not exist", hint="see `taxifare model ls`")
        hint = "the version is damaged: move its folder aside, or restore it from a backup"
        if not path.is_file():
            raise DataError(f"model version {version} is incomplete: {path} is missing", hint=hint)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
            ModelVersion.from_dict(payload)  # the fields a version must have
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"model version {version}: {path} is unreadable ({_why(e)})", hint=hint) from e
        return payload

    def _read(self, version: int, stages: dict[str, Any]) -> ModelVersion:
        path = self.versions_dir / str(version) / "version.json"
        mv = ModelVersion.from_dict(self._record(version))
        mv.stage = self._stage_of(version, stages)
        plots = path.parent / PLOTS
        if plots.is_dir():
            mv.plots = {png.stem: str(png) for png in sorted(plots.glob("*.png"))}
        return mv

    def save(self, artifact_dir: Path, record: TrainingRecord) -> ModelVersion:
        with tempfile.TemporaryDirectory(prefix="taxifare-plots-") as drawn:
            plots = draw_plots(record, Path(drawn))  # outside the lock: drawing takes a second
            size = sum(p.stat().st_size for p in [*artifact_dir.rglob("*"), *plots] if p.is_file())
            ensure_free_space(self.versions_dir, size + SPACE_MARGIN, "a new model version")
            return self._save(artifact_dir, record, plots)

    def check_space(self, needed_bytes: int) -> None:
        """DiskFullError before training when the registry's disk could not take a new version."""
        ensure_free_space(self.versions_dir, needed_bytes + SPACE_MARGIN, "a new model version")

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
                # What the artifact is, byte for byte: checked before every load (integrity.py).
                checksums = digest_files(staging / ARTIFACT)
                payload = mv.as_dict() | {"history": record.history, CHECKSUMS: checksums}
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
        stages = self._stages()
        number = self._resolve(ref, stages)
        recorded = self._record(number).get(CHECKSUMS)
        mv = self._read(number, stages)
        # Artifacts are immutable once written: read them in place, no copy, once verified.
        artifact = self.versions_dir / str(number) / ARTIFACT
        verify_artifact(
            artifact, recorded if isinstance(recorded, dict) else None, what=f"model version {number}"
        )
        return mv, artifact

    def list(self) -> list[ModelVersion]:
        stages = self._stages()
        versions: list[ModelVersion] = []
        for n in self._numbers():
            try:
                versions.append(self._read(n, stages))
            except DataError as e:  # listed, flagged; the others still show
                when = datetime.fromtimestamp((self.versions_dir / str(n)).stat().st_mtime, timezone.utc)
                versions.append(BrokenVersion(n, self._stage_of(n, stages), when, problem=e.message))
        return versions

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
            _append_line(self.dir / "promotions.jsonl", json.dumps(promotion.as_dict()))
            return promotion

    def promotions(self) -> builtins.list[dict[str, Any]]:
        path = self.dir / "promotions.jsonl"
        if not path.is_file():
            return []
        entries = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill mid-append, or damaged: the others still count
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def record_evaluation(self, version: int, evaluation: dict[str, Any]) -> None:
        with self._locked():
            path = self.versions_dir / str(version) / "version.json"
            payload = self._record(version)
            payload.setdefault("evaluations", []).append(evaluation)
            write_json_atomic(path, payload)


def _append_line(path: Path, line: str) -> None:
    """`line` on a line of its own: after a line a kill cut short, on the next one, so both are not lost."""
    with path.open("ab") as f:
        cut = False
        if f.tell() > 0:
            with path.open("rb") as r:
                r.seek(-1, os.SEEK_END)
                cut = r.read(1) != b"\n"
        f.write((b"\n" if cut else b"") + line.encode("utf-8") + b"\n")


def _valid_stages(data: dict[str, Any]) -> bool:
    held_ok = all(data.get(s) is None or type(data.get(s)) is int for s in LOADABLE_STAGES)
    archived = data.get("archived", [])
    return held_ok and isinstance(archived, list) and all(type(v) is int for v in archived)


def replay_promotions(log: builtins.list[dict[str, Any]]) -> dict[str, Any]:
    """Which version each stage holds after the promotions in `log`, in order (to rebuild stages.json)."""
    stages: dict[str, Any] = {"Staging": None, "Production": None}
    for p in log:
        version, stage = p.get("version"), p.get("stage")
        for s in ("Staging", "Production"):
            if stages[s] == version:
                stages[s] = None
        if stage in stages:
            stages[stage] = version
    return stages


def _why(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"no {e.args[0]!r} field"
    return str(e).split("\n")[0]
