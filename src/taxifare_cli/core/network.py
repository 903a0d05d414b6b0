"""The fare network's inference in plain numpy: what the Keras model computes, without Keras.

Pricing rides must not import TensorFlow (seconds of start-up for one ride). A
`DenseNetwork` holds the Normalization statistics and the Dense kernels and biases
of a trained model (`artifact.from_keras` extracts them) and runs the forward pass
as Keras 3 does at inference:

    x -> (x - mean) / max(sqrt(variance), epsilon) -> [x @ W + b -> ReLU]... -> x @ W + b

(Dropout is the identity at inference.) The normalisation rounds exactly as
TensorFlow's. Two passes: `forward` multiplies in float32, as Keras does, and is
the fast one; `forward_exact` multiplies in float64 and rounds the output to float32
once. Float32 products change in their last bits with the number of rows multiplied
together and a row's place among them; float64 ones do too, but far below float32's
rounding, so `forward_exact` gives a row the same output however it is batched.
Pricing uses the fast pass and sends the few outputs near a half cent through the
exact one (`core.cents`). The weights are saved as `weights.npz` beside the Keras
model (no pickle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Activation = Literal["relu", "linear"]
ACTIVATIONS: tuple[str, ...] = ("relu", "linear")
NPZ_FORMAT = 1
# Keras' default fuzz factor (keras.config.epsilon()), the floor of the normalising std.
KERAS_EPSILON = 1e-7
# Rows per forward step: large enough to amortise numpy's per-call cost, small enough
# that the hidden activations stay in cache.
FORWARD_BATCH = 2048


class NetworkFormatError(ValueError):
    """A weights file or a layer list that is not a DenseNetwork."""


def _frozen(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float32, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class DenseNetwork:
    """Normalisation, then Dense layers with their activations (numbers kept in float32)."""

    mean: np.ndarray  # (n_features,)
    variance: np.ndarray  # (n_features,)
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (W (n_in, n_out), b (n_out,)) in order
    activations: tuple[Activation, ...]  # one per layer
    epsilon: float = KERAS_EPSILON
    # The layers in float64, for `forward_exact`.
    _wide: tuple[tuple[np.ndarray, np.ndarray], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        wide = tuple((w.astype(np.float64), b.astype(np.float64)) for w, b in self.layers)
        object.__setattr__(self, "_wide", wide)

    @classmethod
    def create(
        cls,
        mean: np.ndarray,
        variance: np.ndarray,
        layers: list[tuple[np.ndarray, np.ndarray]] | tuple[tuple[np.ndarray, np.ndarray], ...],
        activations: list[str] | tuple[str, ...] | None = None,
        *,
        epsilon: float = KERAS_EPSILON,
    ) -> DenseNetwork:
        """Checked and frozen float32 copies; activations default to ReLU on all but the last layer."""
        mean_a = _frozen(np.ravel(mean))
        var_a = _frozen(np.ravel(variance))
        if mean_a.shape != var_a.shape or mean_a.size == 0:
            raise NetworkFormatError(
                f"mean and variance must be non-empty and alike, not {mean_a.shape} and {var_a.shape}"
            )
        if not layers:
            raise NetworkFormatError("a network needs at least one Dense layer")
        if activations is None:
            activations = ["relu"] * (len(layers) - 1) + ["linear"]
        if len(activations) != len(layers):
            raise NetworkFormatError(f"{len(layers)} layers but {len(activations)} activations")
        frozen: list[tuple[np.ndarray, np.ndarray]] = []
        width = mean_a.size
        for i, ((w, b), act) in enumerate(zip(layers, activations, strict=True)):
            w_a, b_a = _frozen(w), _frozen(np.ravel(b))
            if w_a.ndim != 2 or w_a.shape[0] != width or b_a.shape != (w_a.shape[1],):
                raise NetworkFormatError(
                    f"layer {i}: kernel {w_a.shape} and bias {b_a.shape} do not follow a width of {width}"
                )
            if act not in ACTIVATIONS:
                raise NetworkFormatError(f"layer {i}: activation {act!r} is not one of {ACTIVATIONS}")
            frozen.append((w_a, b_a))
            width = w_a.shape[1]
        return cls(mean_a, var_a, tuple(frozen), tuple(activations), float(epsilon))  # type: ignore[arg-type]

    @property
    def n_features(self) -> int:
        return int(self.mean.size)

    @property
    def n_outputs(self) -> int:
        return int(self.layers[-1][0].shape[1])

    def scale(self) -> np.ndarray:
        """max(sqrt(variance), epsilon) in float32, as Keras' Normalization divides by."""
        return np.maximum(np.sqrt(self.variance), np.float32(self.epsilon))

    def forward(self, x: np.ndarray, *, batch_size: int = FORWARD_BATCH) -> np.ndarray:
        """Outputs (rows x n_outputs, float32) for feature rows (rows x n_features), in float32."""
        return self._pass(x, batch_size, self.layers)

    def forward_exact(self, x: np.ndarray, *, batch_size: int = FORWARD_BATCH) -> np.ndarray:
        """As `forward`, the products in float64: the same bits for a row however it is batched."""
        return self._pass(x, batch_size, self._wide)

    def _pass(
        self, x: np.ndarray, batch_size: int, layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    ) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got an array of shape {x.shape}")
        out = np.empty((len(x), self.n_outputs), dtype=np.float32)
        scale = self.scale()
        for start in range(0, len(x), batch_size):
            z = x[start : start + batch_size] - self.mean
            np.divide(z, scale, out=z)
            h = z.astype(layers[0][0].dtype, copy=False)  # the products in the weights' precision
            for (w, b), act in zip(layers, self.activations, strict=True):
                h = h @ w
                h += b
                if act == "relu":
                    np.maximum(h, 0.0, out=h)
            out[start : start + len(h)] = h
        return out

    # -- weights.npz ---------------------------------------------------------------------------

    def to_npz(self, path: Path) -> Path:
        arrays: dict[str, np.ndarray] = {
            "format": np.array(NPZ_FORMAT),
            "mean": self.mean,
            "variance": self.variance,
            "epsilon": np.array(self.epsilon, dtype=np.float64),
            "activations": np.array(self.activations, dtype=np.str_),
        }
        for i, (w, b) in enumerate(self.layers):
            arrays[f"kernel_{i}"], arrays[f"bias_{i}"] = w, b
        with path.open("wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
        return path

    @classmethod
    def from_npz(cls, path: Path) -> DenseNetwork:
        try:
            with np.load(path, allow_pickle=False) as data:
                fmt = int(data["format"])
                if fmt != NPZ_FORMAT:
                    raise NetworkFormatError(
                        f"{path} is weights format {fmt}; this taxifare reads {NPZ_FORMAT}"
                    )
                activations = [str(a) for a in data["activations"]]
                layers = [(data[f"kernel_{i}"], data[f"bias_{i}"]) for i in range(len(activations))]
                return cls.create(
                    data["mean"], data["variance"], layers, activations, epsilon=float(data["epsilon"])
                )
        except KeyError as e:
            raise NetworkFormatError(f"{path} lacks {e}: not a taxifare weights file") from None
        except (OSError, ValueError) as e:
            if isinstance(e, NetworkFormatError):
                raise
            raise NetworkFormatError(f"{path} is not a readable weights file: {e}") from None
