"""The one way this tool writes a file: to a temporary name beside it, then rename.

A reader never sees half a file, and a failure (an exception, a full disk, a
kill) leaves what was there before. Temporary names start with `.` and end in
`.part`, so a sweep can find what a killed process left.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from taxifare_cli.errors import DataError, DiskFullError, UsageError, no_space

PART_SUFFIX = ".part"


def check_input_file(path: Path, what: str = "input file") -> Path:
    """`path` if it is a readable regular file; a DataError that says what it is otherwise."""
    if path.is_dir():
        raise DataError(f"{what} {path} is a directory, not a file")
    if not path.exists():
        raise DataError(f"{what} {path} does not exist")
    if not path.is_file():
        raise DataError(f"{what} {path} is not a regular file")
    return path


def check_output_file(path: Path, *, inputs: tuple[Path, ...] = ()) -> Path:
    """`path` if writing it atomically is safe: a new file or a regular file, never one of `inputs`.

    A device (/dev/full, /dev/null) or a FIFO would be replaced by a regular file at
    the rename, and a directory cannot be; the input would be lost under its output.
    """
    if path.is_dir():
        raise UsageError(f"--output {path} is a directory: name the file to write")
    if path.exists() and not path.is_file():
        raise UsageError(f"--output {path} is not a regular file (a device or a pipe): write to a file")
    for source in inputs:
        if path.exists() and source.exists() and path.samefile(source):
            raise UsageError(f"--output {path} is the input file: write the fares to another file")
    return path


def temp_path_beside(path: Path) -> Path:
    """A new empty file in `path`'s directory (so the rename stays on one disk).

    Its name carries this process's id, so that `sweep_leftovers` can tell what a
    killed process left from what a running one is writing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=PART_SUFFIX, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's, alive
    return True


# The names this package gives temporary things, each with the id of the process that made it.
# Only these shapes count: anything else in the folder (a cloud job's `taxifare-20261201-...`
# work folder, say) has digits that are not a process id, and is never swept.
_LEFTOVER_NAMES = (
    re.compile(r"^\..+\.(\d+)\.[^.]+\.part$"),  # .train_1k.csv.<pid>.<random>.part
    re.compile(r"^taxifare-[a-z]+-(\d+)-[^-]+$"),  # taxifare-<kind>-<pid>-<random> (scratch_dir)
    re.compile(r"^\.new-(\d+)-[^-]+$"),  # .new-<pid>-<random> (a registry version being written)
)


def _owner(name: str) -> int | None:
    """The process id in a leftover's name, or None when the name is not one of ours."""
    for shape in _LEFTOVER_NAMES:
        match = shape.match(name)
        if match:
            return int(match.group(1))
    return None


def sweep_leftovers(directory: Path, pattern: str = f".*{PART_SUFFIX}") -> list[Path]:
    """Remove what dead processes left in `directory` (temporary files or folders); what was removed."""
    removed = []
    try:
        candidates = list(directory.glob(pattern))
    except OSError:
        return []
    for path in candidates:
        pid = _owner(path.name)
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue  # not ours to fight over
        removed.append(path)
    return removed


@contextmanager
def scratch_dir(kind: str) -> Iterator[Path]:
    """A temporary working folder (`taxifare-<kind>-<pid>-...`), removed after; a killed one is swept."""
    sweep_leftovers(Path(tempfile.gettempdir()), "taxifare-*")
    with tempfile.TemporaryDirectory(prefix=f"taxifare-{kind}-{os.getpid()}-") as tmp:
        yield Path(tmp)


def disk_full(path: Path, error: OSError | None = None) -> DiskFullError:
    """The one message for a full disk: which file was not written, and that nothing is half-written."""
    # A staging file (`.train_1k.csv.<pid>.<random>.part`) is named as the file it was to become.
    staged = re.fullmatch(rf"\.(.+)\.\d+\.[^.]+{re.escape(PART_SUFFIX)}", path.name)
    name = staged.group(1) if staged else path.name
    err = DiskFullError(
        f"no space left on the disk of {path.parent}: {name} was not written (nothing half-written)",
        hint="free some space, or point the setting for this path at another disk",
    )
    err.__cause__ = error
    return err


def ensure_free_space(directory: Path, needed_bytes: int, what: str) -> None:
    """DiskFullError now, before the work, when `directory`'s disk has less than `needed_bytes` free.

    A check, not a promise (another process may fill the disk meanwhile): the writes stay
    atomic, so a disk that fills later still leaves nothing half-written.
    """
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # cannot tell: the write itself will say
    if free < needed_bytes:
        raise DiskFullError(
            f"not enough space for {what} in {directory}: {_mb(free)} free, {_mb(needed_bytes)} needed",
            hint="free some space, or point the setting for this path at another disk",
        )


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `path`, on any failure it is removed.

    A full disk (ENOSPC, EDQUOT) anywhere in between becomes one DiskFullError naming `path`.
    """
    try:
        tmp = temp_path_beside(path)
    except OSError as e:
        if no_space(e):
            raise disk_full(path, e) from e
        raise
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        full = no_space(e)  # also a DiskFullError from a nested atomic write: name the outer target
        if full is not None:
            raise disk_full(path, full) from e
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
