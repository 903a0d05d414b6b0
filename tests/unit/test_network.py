"""DenseNetwork: the numpy forward pass that prices rides without TensorFlow."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from taxifare_cli.core.network import KERAS_EPSILON, DenseNetwork, NetworkFormatError


def small() -> DenseNetwork:
    # (x - [1, 2]) / [2, 3] -> relu(. @ W0 + b0) -> . @ W1 + b1
    return DenseNetwork.create(
        mean=np.array([1.0, 2.0]),
        variance=np.array([4.0, 9.0]),
        layers=[
            (np.array([[1.0, -1.0], [2.0, 0.0]]), np.array([0.5, 0.0])),
            (np.array([[2.0], [3.0]]), np.array([1.0])),
        ],
    )


def reference(net: DenseNetwork, x: np.ndarray) -> np.ndarray:
    """The same pass in float64, written out plainly."""
    h = (x.astype(np.float64) - net.mean) / np.maximum(np.sqrt(net.variance.astype(np.float64)), net.epsilon)
    for (w, b), act in zip(net.layers, net.activations, strict=True):
        h = h @ w.astype(np.float64) + b
        if act == "relu":
            h = np.maximum(h, 0.0)
    return h


def random_network(rng: np.random.Generator, widths: tuple[int, ...] = (6, 16, 8, 1)) -> DenseNetwork:
    layers = [(rng.normal(0, 0.5, (a, b)), rng.normal(0, 0.1, b)) for a, b in pairwise(widths)]
    return DenseNetwork.create(rng.normal(0, 3, widths[0]), rng.uniform(0.5, 4, widths[0]), layers)


def test_forward_matches_a_hand_computed_case() -> None:
    net = small()
    assert net.activations == ("relu", "linear")  # ReLU on hidden layers, the fare layer linear
    x = np.array([[3.0, 5.0], [1.0, 2.0], [-1.0, 2.0]], dtype=np.float32)
    # row 0: normalised [1, 1] -> [3.5, -1] -> relu [3.5, 0] -> 2*3.5 + 1 = 8
    # row 1: normalised [0, 0] -> [0.5, 0] -> 2*0.5 + 1 = 2
    # row 2: normalised [-1, 0] -> [-0.5, 1] -> relu [0, 1] -> 3 + 1 = 4
    out = net.forward(x)
    assert out.dtype == np.float32 and out.shape == (3, 1)
    np.testing.assert_array_equal(out.ravel(), [8.0, 2.0, 4.0])


def test_a_zero_variance_divides_by_epsilon_as_keras_does() -> None:
    net = DenseNetwork.create(np.zeros(1), np.zeros(1), [(np.ones((1, 1)), np.zeros(1))])
    out = net.forward(np.array([[1e-7]], dtype=np.float32))
    assert out[0, 0] == pytest.approx(1.0, rel=1e-6)
    assert net.scale()[0] == np.float32(KERAS_EPSILON)


def test_both_passes_agree_with_float64_and_the_exact_one_does_not_depend_on_the_batch() -> None:
    rng = np.random.default_rng(1)
    net = random_network(rng)
    x = rng.normal(0, 3, (1000, 6)).astype(np.float32)
    expected = reference(net, x)
    fast, exact = net.forward(x), net.forward_exact(x)
    assert fast.dtype == exact.dtype == np.float32
    np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(exact, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(net.forward(x, batch_size=7), fast, rtol=1e-5, atol=1e-5)
    # float64 products: batched by 7 or by 2048, the same bits.
    np.testing.assert_array_equal(net.forward_exact(x, batch_size=7), exact)
    assert net.forward(x[:0]).shape == net.forward_exact(x[:0]).shape == (0, 1)
    with pytest.raises(ValueError, match="rows of 6 features"):
        net.forward(x[:, :5])


def test_npz_round_trip_keeps_every_number(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    net = random_network(rng)
    path = net.to_npz(tmp_path / "weights.npz")
    back = DenseNetwork.from_npz(path)
    np.testing.assert_array_equal(back.mean, net.mean)
    np.testing.assert_array_equal(back.variance, net.variance)
    assert back.activations == net.activations and back.epsilon == net.epsilon
    for (w0, b0), (w1, b1) in zip(net.layers, back.layers, strict=True):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)
    x = rng.normal(0, 3, (50, 6)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    with np.load(path, allow_pickle=False) as data:  # plain arrays only: loading runs no code
        assert {"mean", "variance", "kernel_0", "bias_2", "activations"} <= set(data.files)


def test_the_network_is_frozen() -> None:
    net = small()
    with pytest.raises(ValueError, match="read-only"):
        net.mean[0] = 5.0
    with pytest.raises(AttributeError):
        net.epsilon = 1.0  # type: ignore[misc]


def test_bad_shapes_and_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NetworkFormatError, match="do not follow a width of 2"):
        DenseNetwork.create(np.zeros(2), np.ones(2), [(np.ones((3, 1)), np.zeros(1))])
    with pytest.raises(NetworkFormatError, match="activation 'tanh'"):
        DenseNetwork.create(np.zeros(2), np.ones(2), [(np.ones((2, 1)), np.zeros(1))], ["tanh"])
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(NetworkFormatError, match="not a readable weights file"):
        DenseNetwork.from_npz(junk)
    partial = tmp_path / "partial.npz"
    np.savez(partial, mean=np.zeros(2))
    with pytest.raises(NetworkFormatError, match="not a taxifare weights file"):
        DenseNetwork.from_npz(partial)


# -- from Keras (imports TensorFlow) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def keras() -> Any:
    return pytest.importorskip("keras")


def test_from_keras_reads_normalisation_and_dense_layers_and_skips_dropout(keras: Any) -> None:
    from taxifare_cli.artifact import from_keras
    from taxifare_cli.core.model import HyperParams, build_model

    rng = np.random.default_rng(3)
    x = rng.normal(5, 2, (300, 4)).astype(np.float32)
    model = build_model(
        4,
        HyperParams(hidden_layers=(8, 4), dropout=0.2, seed=1),
        mean=x.mean(axis=0),
        variance=x.var(axis=0),
        target_mean=10.0,
    )
    net = from_keras(model)
    assert [w.shape for w, _ in net.layers] == [(4, 8), (8, 4), (4, 1)]
    assert net.activations == ("relu", "relu", "linear")
    np.testing.assert_array_equal(net.mean, x.mean(axis=0).astype(np.float32))
    np.testing.assert_allclose(net.forward(x), np.asarray(model(x, training=False)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["batchnorm", "tanh", "no_normalization", "shared_layer"])
def test_from_keras_refuses_what_numpy_would_not_compute_alike(keras: Any, kind: str) -> None:
    from taxifare_cli.artifact import from_keras

    inputs = keras.Input(shape=(3,))
    norm = keras.layers.Normalization(mean=[0.0, 1.0, 2.0], variance=[1.0, 1.0, 1.0])
    if kind == "batchnorm":
        h = keras.layers.BatchNormalization()(norm(inputs))
        match = "BatchNormalization layer"
    elif kind == "tanh":
        h = keras.layers.Dense(4, activation="tanh")(norm(inputs))
        match = "activation 'tanh'"
    elif kind == "no_normalization":
        h = keras.layers.Dense(4, activation="relu")(inputs)
        match = "no Normalization layer"
    else:  # one Dense applied twice: the layer list shows it once
        dense = keras.layers.Dense(3, activation="relu", kernel_initializer="ones")
        h = dense(dense(norm(inputs)))
        match = "does not compute"
    model = keras.Model(inputs, keras.layers.Dense(1)(h))
    with pytest.raises(ValueError, match=match):
        from_keras(model)
