"""What the service tests share besides fixtures: the tiny network, the ride source, the trained run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.fakes import FakeRegistry, FakeSource, FakeStore, RecordingProgress

from taxifare_cli.core.model import HyperParams
from taxifare_cli.services.training import TrainResult

# A network small enough to train in a few seconds; two epochs are enough to check the plumbing.
TINY = HyperParams(hidden_layers=(16,), epochs=2, patience=1, batch_size=256, seed=3)
RIDES = 2_000  # rows of each of train_1k and val_1k in the shared store
SOURCE = FakeSource(rows=RIDES, seed=1)


@dataclass
class Trained:
    """The session's one training run on train_1k/val_1k: look, don't touch."""

    result: TrainResult
    store: FakeStore
    registry: FakeRegistry
    progress: RecordingProgress

    @property
    def artifact(self) -> Path:
        return self.registry.artifact_dir(self.result.version.version)
