"""core.cents: which float32 fares are re-priced by the exact pass, and rounding to the cent."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from taxifare_cli.core.cents import REPRICE_ULPS, in_cents, near_half_cent


def test_fares_near_a_half_cent_are_marked_and_the_others_are_not() -> None:
    fares = np.array([12.345, 12.3449995, 12.3450005, 12.34, 12.349, 7.005, 99.995, 2.5], dtype=np.float32)
    assert near_half_cent(fares).tolist() == [True, True, True, False, False, True, True, False]


def test_the_margin_is_the_stated_number_of_ulps_with_a_floor_at_sixteen_dollars() -> None:
    for fare in (5.125, 16.125, 40.125, 80.125):  # exact half cents in float32
        half = np.float32(fare)
        ulp = np.spacing(np.maximum(half, np.float32(16.0)))
        inside = np.float32(half + (REPRICE_ULPS - 2) * ulp)
        outside = np.float32(half + (REPRICE_ULPS + 2) * ulp)
        assert near_half_cent(np.array([inside, half - (inside - half)])).all(), fare
        assert not near_half_cent(np.array([outside, half - (outside - half)])).any(), fare


def test_missing_fares_stay_missing_and_are_not_marked() -> None:
    fares = np.array([np.nan, 10.0], dtype=np.float32)
    assert near_half_cent(fares).tolist() == [False, False]
    out = in_cents(fares)
    assert np.isnan(out[0]) and out[1] == 10.0 and out.dtype == np.float64


def test_rounding_to_the_cent_gives_the_decimal_a_reader_expects() -> None:
    fares = np.array([12.3449, 12.3451, 7.0, 56.004], dtype=np.float32)
    assert in_cents(fares).tolist() == [12.34, 12.35, 7.0, 56.0]


def test_a_fare_gets_the_same_cent_batched_alone_or_by_the_exact_pass() -> None:
    from taxifare_cli.artifact import FareModel
    from taxifare_cli.core.network import DenseNetwork

    rng = np.random.default_rng(7)
    widths = (12, 64, 32, 1)
    layers = [(rng.normal(0, 0.4, (a, b)), rng.normal(0, 0.1, b)) for a, b in pairwise(widths)]
    layers[-1] = (layers[-1][0], np.array([14.0]))  # outputs around a fare of $14
    net = DenseNetwork.create(rng.normal(0, 1, 12), rng.uniform(0.5, 2, 12), layers)
    model = FareModel(net, {})
    x = rng.normal(0, 1, (20_000, 12)).astype(np.float32)

    exact = in_cents(net.forward_exact(x).ravel())
    batched = model.predict_features(x)
    exact_bits = net.forward_exact(x).ravel()
    took_exact = batched == exact_bits
    assert 0.01 < near_half_cent(net.forward(x).ravel()).mean() < 0.2  # some fares near, most not
    # A fare returned near a half cent came from the exact pass (the fast one is never kept there).
    near = near_half_cent(batched)
    assert near.any() and took_exact[near].all()
    np.testing.assert_array_equal(in_cents(batched), exact)
    alone = np.array([model.predict_features(x[i : i + 1])[0] for i in range(2_000)])
    np.testing.assert_array_equal(in_cents(alone), exact[:2_000])
    by_seven = np.concatenate([model.predict_features(x[i : i + 7]) for i in range(0, 2_002, 7)])[:2_000]
    np.testing.assert_array_equal(in_cents(by_seven), exact[:2_000])
