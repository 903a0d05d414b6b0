"""The model artifact: the Keras network and the feature contract, saved together.

An artifact is a directory holding `model.keras` (normalisation included) and
`features.json` (feature version and names). Prediction needs only raw ride
fields: cleaning checks and feature computation come from this package, the
fitted numbers from the directory. The MLflow pyfunc wraps this same class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taxifare_cli.core import features as F
from taxifare_cli.core.pricing import InvalidRides, PricedRides, price_rides
from taxifare_cli.errors import DataError

if TYPE_CHECKING:
    import keras
    import pandas as pd

MODEL_FILE = "model.keras"
FEATURES_FILE = "features.json"
PREDICT_BATCH = 8192


@dataclass
class FareModel:
    network: keras.Model
    meta: dict[str, Any]

    @classmethod
    def new(cls, network: keras.Model, **meta: Any) -> FareModel:
        return cls(
            network,
            {"feature_version": F.FEATURE_VERSION, "feature_names": list(F.FEATURE_NAMES), **meta},
        )

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        self.network.save(directory / MODEL_FILE)
        (directory / FEATURES_FILE).write_text(json.dumps(self.meta, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: Path) -> FareModel:
        import keras

        model_path, meta_path = directory / MODEL_FILE, directory / FEATURES_FILE
        if not model_path.is_file() or not meta_path.is_file():
            raise DataError(
                f"{directory} is not a taxifare model artifact (no {MODEL_FILE} or {FEATURES_FILE})"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("feature_version") != F.FEATURE_VERSION:
            raise DataError(
                f"model artifact uses features v{meta.get('feature_version')}, this taxifare computes "
                f"v{F.FEATURE_VERSION}",
                hint="use the taxifare version that trained it, or retrain",
            )
        return cls(keras.models.load_model(model_path, compile=False), meta)

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.empty(0, dtype=np.float32)
        # Calling the model on batches avoids keras' predict() set-up cost per chunk.
        out = [
            np.asarray(self.network(x[i : i + PREDICT_BATCH], training=False)).ravel()
            for i in range(0, len(x), PREDICT_BATCH)
        ]
        return np.concatenate(out)

    def predict(self, rides: pd.DataFrame) -> np.ndarray:
        """Fares for rides already cleaned (see `core.cleaning`); one float per row."""
        return self.predict_features(F.compute_features(rides))

    def price(self, rides: pd.DataFrame, *, invalid: InvalidRides = "error") -> PricedRides:
        """Fares for raw rides through the one pricing path (`core.pricing`)."""
        return price_rides(self.predict_features, rides, invalid=invalid)
