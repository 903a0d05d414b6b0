"""A model version's record outside its registry: published once to the bucket, read back to reproduce it.

The record is what `reproduce_model` needs and nothing else: the version's
parameters (seed and chunk size included), metrics, the data it saw (names,
checksums, stores), its feature version, package version, commit and parent.
No artifact, no stage (it changes), no tracking-run links or plots (they point
into one registry). A team that shares only a bucket can then rebuild a
version whose registry is on another machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from taxifare_cli.core.features import FEATURE_VERSION
from taxifare_cli.errors import DataError
from taxifare_cli.ports import ModelRecords, ModelVersion

FORMAT = "taxifare-model-record/1"


@dataclass
class Publication:
    """What publishing one version's record did: written, unchanged, kept (another's), failed."""

    version: int
    location: str
    action: str
    warning: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"location": self.location, "action": self.action, "warning": self.warning or None}


@dataclass
class RecordedVersion:
    """A version as its published record describes it."""

    version: ModelVersion
    feature_version: int | str | None
    location: str


def record_of(model: str, mv: ModelVersion, feature_version: int | str | None) -> dict[str, Any]:
    """The published document of `mv` (see the module's docstring for what is left out, and why)."""
    return {
        "format": FORMAT,
        "model": model,
        "version": mv.version,
        "created_at": mv.created_at.isoformat(),
        "params": mv.params,
        "metrics": mv.metrics,
        "data": mv.data,
        "feature_version": feature_version,
        "package_version": mv.package_version,
        "git_commit": mv.git_commit,
        "parent_version": mv.parent_version,
    }


def _canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, indent=2, default=str)


def publish_version(
    records: ModelRecords,
    model: str,
    mv: ModelVersion,
    *,
    feature_version: int | str | None = FEATURE_VERSION,
) -> Publication:
    """Write `mv`'s record once; never raises: a registered version stays registered, with a warning.

    The same record already there writes nothing; a different one (another
    registry that handed out the same number) is kept and warned about.
    """
    n = mv.version
    location = f"the record of version {n}"
    try:
        location = records.record_location(model, n)
        doc = record_of(model, mv, feature_version)
        text = _canonical(doc)
        if records.create_record(model, n, text.encode("utf-8") + b"\n"):
            return Publication(n, location, "written")
        held = records.read_record(model, n)
        if held is not None and _canonical(json.loads(held)) == text:
            return Publication(n, location, "unchanged")
        return Publication(
            n,
            location,
            "kept",
            f"{location} holds another version {n}: another registry published that number first; "
            "it was kept (a team sharing a bucket should share a registry too)",
        )
    except Exception as e:  # a copy for the team: whatever breaks, the training stands
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        return Publication(
            n, location, "failed", f"version {n} is registered but not published to {location}: {why}"
        )


def read_published(records: ModelRecords, model: str, version: int) -> RecordedVersion | None:
    """Version `version` of `model` as published, or None if the bucket holds no record of it.

    Raises DataError when the record is there but cannot be read.
    """
    location = records.record_location(model, version)
    raw = records.read_record(model, version)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, not {FORMAT!r}")
        if int(doc["version"]) != version or doc.get("model") != model:
            raise ValueError(f"it describes {doc.get('model')} version {doc.get('version')}")
        mv = ModelVersion(
            version=version,
            stage="None",
            created_at=datetime.fromisoformat(doc["created_at"]),
            params=dict(doc.get("params") or {}),
            metrics=dict(doc.get("metrics") or {}),
            data=dict(doc.get("data") or {}),
            package_version=doc.get("package_version"),
            git_commit=doc.get("git_commit"),
            parent_version=doc.get("parent_version"),
        )
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise DataError(
            f"{location} is not a readable model record: {e}",
            hint="publish it again from the machine whose registry holds the version",
        ) from None
    fv = doc.get("feature_version")
    return RecordedVersion(mv, fv if isinstance(fv, int | str) else None, location)
