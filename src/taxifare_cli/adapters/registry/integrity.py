"""Checksums of a version's artifact files: recorded at save, verified before a load.

A registry records `{relative path: sha256}` of every file of the artifact when the
version is saved, and checks them before it hands the artifact to anyone: a file
changed by hand (three feature names edited), truncated by a full disk or a bad
copy, or added afterwards is refused with a DataError (exit 4) naming the file.

A version saved before checksums were recorded has none: its files are checked
for shape only (JSON that parses, zip archives whose members are whole), so an
old registry still loads and a damaged old version still fails with one line.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from taxifare_cli.errors import DataError

CHECKSUMS = "checksums"  # the key in a version's record
_BLOCK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def digest_files(directory: Path) -> dict[str, str]:
    """sha256 of every file under `directory`, by POSIX path relative to it."""
    return {
        p.relative_to(directory).as_posix(): sha256_of(p) for p in sorted(directory.rglob("*")) if p.is_file()
    }


def verify_files(directory: Path, recorded: dict[str, str], *, what: str) -> None:
    """DataError naming the first file of `directory` not as `recorded` (missing, changed, added)."""
    hint = "restore the version from a backup, or train a new one; taxifare will not load it as it is"
    for name, expected in sorted(recorded.items()):
        path = directory / name
        if not path.is_file():
            raise DataError(f"{what}: {path} is missing", hint=hint)
        if sha256_of(path) != expected:
            raise DataError(
                f"{what}: {path} does not match the checksum recorded when it was saved "
                "(changed or damaged since)",
                hint=hint,
            )
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.relative_to(directory).as_posix() not in recorded:
            raise DataError(f"{what}: {path} was added after the version was saved", hint=hint)


def check_shape(directory: Path, *, what: str) -> None:
    """For a version with no checksums: each JSON file parses to an object, each zip archive is whole."""
    hint = "the file is damaged: restore the version from a backup, or train a new one"
    for path in sorted(directory.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".json":
            try:
                parsed = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise DataError(f"{what}: {path} is not valid JSON ({e})", hint=hint) from e
            if not isinstance(parsed, dict):
                raise DataError(f"{what}: {path} is not a JSON object", hint=hint)
        elif path.suffix in (".keras", ".npz"):  # both are zip archives
            try:
                with zipfile.ZipFile(path) as archive:
                    bad = archive.testzip()
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise DataError(f"{what}: {path} is truncated or not a zip archive ({e})", hint=hint) from e
            if bad is not None:
                raise DataError(f"{what}: {path} is damaged (member {bad} fails its CRC)", hint=hint)


def verify_artifact(directory: Path, recorded: dict[str, str] | None, *, what: str) -> None:
    """Checksums when recorded (the only proof the files are the saved ones), else the shape check."""
    if not directory.is_dir():
        raise DataError(f"{what}: {directory} is missing", hint="the version is incomplete: train a new one")
    if recorded:
        verify_files(directory, recorded, what=what)
    else:
        check_shape(directory, what=what)
