"""The one way this tool writes a file: to a temporary name beside it, then rename.

A reader never sees half a file, and a failure (an exception, a full disk, a
kill) leaves what was there before. Temporary names start with `.` and end in
`.part`, so a sweep can find what a killed process left.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

PART_SUFFIX = ".part"


def temp_path_beside(path: Path) -> Path:
    """A new empty file in `path`'s directory (so the rename stays on one disk)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PART_SUFFIX, dir=path.parent)
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `path`, on any failure it is removed."""
    tmp = temp_path_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; flushed, synced and renamed onto `path` on success."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, tmp.open(mode, **kwargs) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def write_json_atomic(path: Path, payload: Any) -> None:
    """JSON (indented, sorted keys) through a temporary file, then rename."""
    with atomic_open(path) as f:
        json.dump(payload, f, indent=2, sort_keys=True, default=str)
