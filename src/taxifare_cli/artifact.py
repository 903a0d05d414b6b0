"""The model artifact: the network and the feature contract, saved together.

An artifact is a directory holding `model.keras` (the Keras network, normalisation
included, for fine-tuning), `weights.npz` (the same network's numbers for the numpy
forward pass, `core.network`) and `features.json` (feature version and names).
Prediction needs only raw ride fields: cleaning checks and feature computation come
from this package, the fitted numbers from the directory.

Loading reads `features.json` and `weights.npz` only: pricing never imports
TensorFlow, and a few rides (`price_few`) are priced without pandas either. The
Keras network is loaded on demand (`keras_network()`), for training on from a
parent. An artifact saved before `weights.npz` existed still loads: its weights
are read from `model.keras`, importing Keras then. The MLflow pyfunc wraps this
same class.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taxifare_cli.core import feature_math as F
from taxifare_cli.core.cents import near_half_cent
from taxifare_cli.core.few_rides import FewPriced, RideBatch, price_few
from taxifare_cli.core.network import DenseNetwork
from taxifare_cli.errors import DataError

if TYPE_CHECKING:
    import keras
    import pandas as pd

    from taxifare_cli.core.pricing import InvalidRides, PricedRides

MODEL_FILE = "model.keras"
WEIGHTS_FILE = "weights.npz"
FEATURES_FILE = "features.json"
SMALL_BATCH = 16  # rows priced without touching BLAS' threads: too few for BLAS to split them
# Keras layers that are the identity at inference, and those that carry no computation.
_INFERENCE_IDENTITY = ("Dropout", "InputLayer")


@dataclass
class FareModel:
    network: DenseNetwork
    meta: dict[str, Any]
    _keras: keras.Model | None = field(default=None, repr=False, compare=False)
    _directory: Path | None = field(default=None, repr=False, compare=False)

    @classmethod
    def new(cls, network: keras.Model, **meta: Any) -> FareModel:
        """A model from a Keras network (kept to be saved as `model.keras`)."""
        return cls(
            from_keras(network),
            {"feature_version": F.FEATURE_VERSION, "feature_names": list(F.FEATURE_NAMES), **meta},
            _keras=network,
        )

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        self.keras_network().save(directory / MODEL_FILE)
        self.network.to_npz(directory / WEIGHTS_FILE)
        (directory / FEATURES_FILE).write_text(json.dumps(self.meta, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: Path) -> FareModel:
        """The artifact in `directory`, ready to price; Keras is imported only for an old one."""
        model_path, weights_path = directory / MODEL_FILE, directory / WEIGHTS_FILE
        meta_path = directory / FEATURES_FILE
        if not meta_path.is_file() or not (weights_path.is_file() or model_path.is_file()):
            raise DataError(
                f"{directory} is not a taxifare model artifact (no {FEATURES_FILE}, "
                f"or neither {WEIGHTS_FILE} nor {MODEL_FILE})"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("feature_version") != F.FEATURE_VERSION:
            raise DataError(
                f"model artifact uses features v{meta.get('feature_version')}, this taxifare computes "
                f"v{F.FEATURE_VERSION}",
                hint="use the taxifare version that trained it, or retrain",
            )
        if weights_path.is_file():
            network = DenseNetwork.from_npz(weights_path)
            if network.n_features != F.N_FEATURES or network.n_outputs != 1:
                raise DataError(
                    f"{weights_path} maps {network.n_features} features to {network.n_outputs} outputs; "
                    f"expected {F.N_FEATURES} to 1"
                )
            return cls(network, meta, _directory=directory)
        # Saved before weights.npz: the numbers are in model.keras alone.
        keras_model = _load_keras(model_path)
        return cls(from_keras(keras_model), meta, _keras=keras_model, _directory=directory)

    def keras_network(self) -> keras.Model:
        """The Keras network (to train on from it), loaded from `model.keras` on first use.

        Only training needs it; it imports TensorFlow. The artifact directory the model was
        loaded from must still exist then.
        """
        if self._keras is None:
            if self._directory is None:
                raise DataError("this FareModel has no Keras network (it was built from weights alone)")
            model_path = self._directory / MODEL_FILE
            if not model_path.is_file():
                raise DataError(f"{model_path} is gone: cannot load the Keras network to train on")
            self._keras = _load_keras(model_path)
        return self._keras

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """One fare (float32) per feature row: the float32 pass, and the exact one near a half cent.

        Whatever the batch, a fare rounds to the same cent (`core.cents`).
        """
        if len(x) == 0:
            return np.empty(0, dtype=np.float32)
        blas = contextlib.nullcontext() if len(x) <= SMALL_BATCH else _one_blas_thread()
        with blas:
            fares = self.network.forward(x).ravel()
            near = near_half_cent(fares)
            if near.any():
                fares[near] = self.network.forward_exact(np.asarray(x)[near]).ravel()
        return fares

    def predict(self, rides: pd.DataFrame) -> np.ndarray:
        """Fares for rides already cleaned (see `core.cleaning`); one float per row."""
        from taxifare_cli.core.features import compute_features

        return self.predict_features(compute_features(rides))

    def price(self, rides: pd.DataFrame, *, invalid: InvalidRides = "error") -> PricedRides:
        """Fares for raw rides through the one pricing path (`core.pricing`)."""
        from taxifare_cli.core.pricing import price_rides

        return price_rides(self.predict_features, rides, invalid=invalid)

    def price_few(self, rides: RideBatch) -> FewPriced:
        """Fares for a few rides without pandas (`core.few_rides`): the same as `price` gives."""
        return price_few(self.predict_features, rides)


@functools.cache
def _blas_controller() -> Any | None:
    try:  # optional: threadpoolctl comes with scikit-learn, not with taxifare
        return importlib.import_module("threadpoolctl").ThreadpoolController()
    except ImportError:
        return None


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """OpenBLAS on one thread while a big batch goes through the network.

    These matrices are narrow (tens of features, at most hundreds of units): a second
    BLAS thread gains ~20 % on an idle machine, but when the cores are shared its
    threads wait on each other and the pass runs 3 to 7 times slower (1,000 rides: 10 ms
    instead of 1.4 ms at a load of 3 on 2 cores). Setting the limit costs ~15 us once the
    controller exists. Without threadpoolctl installed, BLAS keeps its own setting
    (OPENBLAS_NUM_THREADS).
    """
    controller = _blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def _load_keras(path: Path) -> keras.Model:
    import keras

    return keras.models.load_model(path, compile=False)


def from_keras(model: keras.Model) -> DenseNetwork:
    """The numbers of a Normalization -> Dense... network, for the numpy forward pass.

    Dropout (the identity at inference) is skipped. Any other layer, several inputs or
    outputs, a Normalization that is not first or not over the last axis, or a Dense
    activation other than ReLU or linear is refused with a ValueError: the numpy pass
    would not compute what the model computes.
    """
    import keras

    name = getattr(model, "name", type(model).__name__)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"model {name!r} has several inputs or outputs; only a single chain can be priced")
    if len(model.inputs[0].shape) != 2:
        raise ValueError(
            f"model {name!r} takes inputs of shape {model.inputs[0].shape}, not rows of features"
        )
    mean: np.ndarray | None = None
    variance: np.ndarray | None = None
    epsilon = float(keras.config.epsilon())
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    activations: list[str] = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in _INFERENCE_IDENTITY and layer.compute_dtype != "float32":
            raise ValueError(
                f"model {name!r}: layer {layer.name!r} computes in {layer.compute_dtype}, not float32"
            )
        if isinstance(layer, keras.layers.Normalization):
            if layers or mean is not None:
                raise ValueError(f"model {name!r}: Normalization layer {layer.name!r} is not the first layer")
            if getattr(layer, "invert", False):
                raise ValueError(f"model {name!r}: Normalization layer {layer.name!r} is inverted")
            axis = layer.axis if isinstance(layer.axis, tuple | list) else (layer.axis,)
            if tuple(axis) not in ((-1,), (1,)):
                raise ValueError(f"model {name!r}: Normalization over axis {layer.axis} is not supported")
            mean = np.asarray(keras.ops.convert_to_numpy(layer.mean), dtype=np.float32).ravel()
            variance = np.asarray(keras.ops.convert_to_numpy(layer.variance), dtype=np.float32).ravel()
        elif isinstance(layer, keras.layers.Dense):
            activation = keras.activations.serialize(layer.activation)
            act = activation if isinstance(activation, str) else activation.get("config", {}).get("name")
            if act not in ("relu", "linear"):
                raise ValueError(
                    f"model {name!r}: Dense layer {layer.name!r} has activation {act!r}; "
                    "only relu and linear are supported"
                )
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            if layer.use_bias:
                bias = keras.ops.convert_to_numpy(layer.bias)
            else:
                bias = np.zeros(kernel.shape[1], dtype=np.float32)
            layers.append((np.asarray(kernel), np.asarray(bias)))
            activations.append(act)
        elif kind in _INFERENCE_IDENTITY:
            continue
        else:
            raise ValueError(
                f"model {name!r} has a {kind} layer ({layer.name!r}); the numpy forward pass knows only "
                "Normalization, Dense (relu or linear) and Dropout"
            )
    if mean is None or variance is None:
        raise ValueError(f"model {name!r} has no Normalization layer")
    if not layers:
        raise ValueError(f"model {name!r} has no Dense layer")
    network = DenseNetwork.create(mean, variance, layers, activations, epsilon=epsilon)
    _check_same_outputs(model, network)
    return network


def _check_same_outputs(model: keras.Model, network: DenseNetwork, rows: int = 64) -> None:
    """Both passes on a few plausible rows: catches what the layer list cannot show (a layer used twice)."""
    rng = np.random.default_rng(0)
    std = np.sqrt(network.variance)
    x = (network.mean + std * rng.standard_normal((rows, network.n_features))).astype(np.float32)
    expected = np.asarray(model(x, training=False), dtype=np.float32).reshape(rows, -1)
    got = network.forward(x)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-4, atol=1e-4):
        raise ValueError(
            f"model {getattr(model, 'name', '?')!r} does not compute Normalization -> Dense... as its layers "
            "list them (a layer used twice, or a custom call?); it cannot be priced without Keras"
        )
