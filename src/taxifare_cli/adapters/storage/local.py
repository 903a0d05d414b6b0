"""LocalStore: raw CSV files in a directory, with a small manifest per file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taxifare_cli.core.schema import parse_dataset_name
from taxifare_cli.errors import ConfigError, NotFoundError
from taxifare_cli.files.atomic import atomic_path, sweep_leftovers, temp_path_beside, write_json_atomic
from taxifare_cli.files.ride_csv import (
    count_rows,
    file_opener,
    iter_csv_chunks,
    sha256_file,
)
from taxifare_cli.ports import DatasetInfo

if TYPE_CHECKING:
    import pandas as pd

    from taxifare_cli.core.cleaning import CleaningRules
    from taxifare_cli.settings import Settings


def _fetch_flag(name: str) -> str:
    part = parse_dataset_name(name)
    return f"--month {part.part}" if part.is_month else f"--size {part.part}"


class LocalStore:
    """`<dir>/<name>.csv`, described by `<dir>/.manifest/<name>.json`."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStore:
        return cls(settings.data_dir)

    def path(self, name: str) -> Path:
        return self.root / f"{parse_dataset_name(name)}.csv"

    def _manifest(self, name: str) -> Path:
        return self.root / ".manifest" / f"{name}.json"

    def ensure_writable(self) -> None:
        """Create the directory or raise a ConfigError that says how to fix it."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe."):
                pass
        except OSError as e:
            raise ConfigError(
                f"data directory {self.root} is not writable: {e.strerror}",
                hint="set data.local_path (env LOCAL_DATA_PATH) to a directory you can write",
            ) from e
        sweep_leftovers(self.root)  # what a killed fetch left behind

    def describe(self, name: str) -> DatasetInfo | None:
        path = self.path(name)
        if not path.is_file():
            return None
        stat = path.stat()
        meta: dict[str, Any] = {}
        manifest = self._manifest(path.stem)
        if manifest.is_file():
            try:
                meta = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                meta = {}
        if meta.get("bytes") != stat.st_size:  # changed behind our back: describe what is there
            meta = {"rows": count_rows(path), "checksum": sha256_file(path), "source": "local"}
        return DatasetInfo(
            name=path.stem,
            rows=meta.get("rows"),
            bytes=stat.st_size,
            updated=datetime.fromtimestamp(stat.st_mtime, timezone.utc),
            location=str(path),
            checksum=meta.get("checksum"),
            source=meta.get("source"),
        )

    def list(self) -> list[DatasetInfo]:
        if not self.root.is_dir():
            return []
        infos = []
        for path in sorted(self.root.glob("*.csv")):
            try:
                parse_dataset_name(path.stem)
            except ValueError:
                continue  # not one of ours
            info = self.describe(path.stem)
            if info is not None:
                infos.append(info)
        return infos

    def read_chunks(
        self, name: str, chunk_size: int, *, rules: CleaningRules | None = None
    ) -> Iterator[pd.DataFrame]:
        path = self.path(name)
        if not path.is_file():
            raise NotFoundError(
                f"{path.stem} is not in {self.root}",
                hint=f"fetch it first: taxifare data fetch {_fetch_flag(path.stem)}",
            )
        return iter_csv_chunks(file_opener(path), chunk_size, name=path.stem)

    def put(self, name: str, csv_path: Path, *, source: str) -> DatasetInfo:
        """Move (same disk) or copy `csv_path` into place; a no-op if identical."""
        target = self.path(name)
        self.ensure_writable()
        checksum = sha256_file(csv_path)
        current = self.describe(name)
        if current is not None and current.checksum == checksum:
            if csv_path.parent.resolve() == self.root.resolve() and csv_path != target:
                csv_path.unlink(missing_ok=True)  # our own staging file: not needed
            return current
        rows = count_rows(csv_path)
        if csv_path.parent.resolve() == self.root.resolve():
            os.replace(csv_path, target)
        else:
            with atomic_path(target) as tmp:
                shutil.copyfile(csv_path, tmp)
        size = target.stat().st_size
        write_json_atomic(
            self._manifest(target.stem),
            {
                "rows": rows,
                "bytes": size,
                "checksum": checksum,
                "source": source,
                "updated": datetime.now(timezone.utc).isoformat(),
            },
        )
        info = self.describe(name)
        assert info is not None
        return info

    def delete(self, name: str) -> bool:
        path = self.path(name)
        existed = path.is_file()
        path.unlink(missing_ok=True)
        self._manifest(path.stem).unlink(missing_ok=True)
        return existed

    def staging_path(self, name: str) -> Path:
        """A temporary file beside the target, so the final rename stays on one disk."""
        self.ensure_writable()
        return temp_path_beside(self.path(name))
