"""Fares in cents, and which float32 outputs lie too near a half cent to round safely.

The network's fast pass multiplies in float32. Its products change in their last bits
with the number of rows multiplied together and a ride's place among them (OpenBLAS
picks other kernels for other shapes), so the same ride priced alone and in a file can
come out a few float32 ulps apart. Only a fare within those ulps of a half cent can
round to two different cents; `near_half_cent` marks such fares so that they are priced
again by the exact pass (float64 products, whose last bits lie far below float32's),
which gives every path the same cent.

The margin is measured, not proven: over a million simulated rides and two trained
networks the float32 pass was at most 12 ulps (1.5e-5 dollars) from the float64 one,
and pricing rides one by one at most 6 ulps. A worst-case bound (Higham's
gamma_n times the absolute sums through the layers) is about 6e-3 dollars, which would
send every fare to the slow pass. `REPRICE_ULPS` is 128 ulps of a fare of at least
$16, 2.4e-4 dollars or more: sixteen times the largest error seen, and it sends about
5 % of fares to the exact pass.
"""

from __future__ import annotations

import numpy as np

REPRICE_ULPS = 128
# Below this, the margin is that of a $16 fare: a network's error follows the size of its
# activations, not of a small output.
_MARGIN_FLOOR_FARE = np.float32(16.0)


def near_half_cent(fares: np.ndarray) -> np.ndarray:
    """Mask of float32 outputs within the pricing margin of a half cent (x.xx5)."""
    y = np.asarray(fares, dtype=np.float32)
    margin = REPRICE_ULPS * np.spacing(np.maximum(np.abs(y), _MARGIN_FLOOR_FARE)).astype(np.float64)
    cents = y.astype(np.float64) * 100.0
    return np.abs(cents - np.floor(cents) - 0.5) < margin * 100.0


def in_cents(fares: np.ndarray) -> np.ndarray:
    """Fares (any float) rounded to the cent, as float64."""
    return np.round(np.asarray(fares, dtype=np.float64), 2)
