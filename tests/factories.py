"""Small hand-made raw rides for unit tests."""

from __future__ import annotations

import pandas as pd


def ride_frame(n: int = 3, **overrides: object) -> pd.DataFrame:
    """`n` clean Manhattan rides in the raw schema; columns can be overridden."""
    base = {
        "key": [f"2015-01-0{i % 9 + 1} 08:00:00.{i:07d}" for i in range(n)],
        "fare_amount": [10.5 + i for i in range(n)],
        "pickup_datetime": pd.to_datetime([f"2015-01-0{i % 9 + 1} 13:00:00" for i in range(n)], utc=True),
        "pickup_longitude": [-73.985 + 0.001 * i for i in range(n)],
        "pickup_latitude": [40.758 + 0.001 * i for i in range(n)],
        "dropoff_longitude": [-73.965 - 0.001 * i for i in range(n)],
        "dropoff_latitude": [40.776 - 0.001 * i for i in range(n)],
        "passenger_count": [1.0 + i % 3 for i in range(n)],
    }
    base.update(overrides)  # type: ignore[arg-type]
    return pd.DataFrame(base)
