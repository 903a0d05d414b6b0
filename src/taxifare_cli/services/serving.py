"""serve_model: the model a web service prices with, following a stage as it moves.

A `ServedModel` holds one loaded version. `refresh()` asks the registry which
version holds the stage now and, when it changed, loads the new one beside the
old and swaps the reference in one assignment: a request that took the old
model finishes on it, the next one gets the new. Loading prices through the
numpy network (no TensorFlow), so a swap is quick and the request path stays light.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

from taxifare_cli.artifact import FareModel
from taxifare_cli.files.atomic import sweep_leftovers
from taxifare_cli.ports import ModelRef, ModelRegistry, ModelVersion


@dataclass(frozen=True)
class Loaded:
    """One version, ready to price: what a request holds for its whole life."""

    version: ModelVersion
    model: FareModel
    loaded_at: float
    copy: Path  # our copy of the artifact (the weights are in memory: removable once swapped out)


class ServedModel:
    """The model behind a service: a fixed version, or whichever version holds a stage."""

    def __init__(self, registry: ModelRegistry, ref: ModelRef, *, refresh_s: float = 5.0) -> None:
        self.registry = registry
        self.ref = ref
        self.refresh_s = refresh_s
        sweep_leftovers(Path(tempfile.gettempdir()), "taxifare-*")
        self._dir = Path(tempfile.mkdtemp(prefix=f"taxifare-serve-{os.getpid()}-"))
        self._lock = threading.Lock()  # one refresh at a time; requests never wait on it
        self._checked = 0.0
        self.current: Loaded = self._load()
        self.last_error: str | None = None

    def _load(self) -> Loaded:
        dest = Path(tempfile.mkdtemp(dir=self._dir))
        version, artifact = self.registry.fetch_artifact(self.ref, dest)
        return Loaded(version, FareModel.load(artifact), time.time(), dest)

    def refresh(self, *, force: bool = False) -> bool:
        """Swap in the version that holds the stage now, if another; True if it changed.

        The record of the version served (stage, evaluations) is refreshed either way.

        Asks the registry at most every `refresh_s` seconds (unless `force`); a
        failure keeps the current model and is kept in `last_error`.
        """
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_s:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # another thread is refreshing
        try:
            self._checked = now
            holder = self.registry.get(self.ref)  # a pinned version too: its stage and evaluations move
            if holder.version == self.current.version.version:
                if holder != self.current.version:
                    self.current = replace(self.current, version=holder)
                self.last_error = None
                return False
            old = self.current
            self.current = self._load()
            self.last_error = None
            shutil.rmtree(old.copy, ignore_errors=True)
            return True
        except Exception as e:  # the service keeps pricing with what it has
            self.last_error = f"{type(e).__name__}: {e}"
            return False
        finally:
            self._lock.release()

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
