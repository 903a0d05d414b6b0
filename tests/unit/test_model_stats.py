import numpy as np

from taxifare_cli.core.model import MetricAccumulator, RunningStats


def test_running_stats_over_chunks_match_whole_array() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, size=(10_000, 4)).astype(np.float32)
    x[:, 3] = 7.0  # a constant column must not be divided by zero
    y = rng.uniform(3, 60, size=10_000)
    stats = RunningStats(4)
    for i in range(0, 10_000, 1_337):
        stats.update(x[i : i + 1_337], y[i : i + 1_337])
    assert np.allclose(stats.mean, x.mean(axis=0, dtype=np.float64), atol=1e-6)
    assert np.allclose(stats.variance()[:3], x[:, :3].var(axis=0, dtype=np.float64), rtol=1e-5)
    assert stats.variance(0.25)[3] == 0.25  # a constant column is scaled by the floor, not by zero
    assert np.isclose(stats.target_mean, y.mean())


def test_metric_accumulator_matches_direct_computation() -> None:
    rng = np.random.default_rng(1)
    y, p = rng.uniform(0, 50, 999), rng.uniform(0, 50, 999)
    acc = MetricAccumulator()
    for i in range(0, 999, 100):
        acc.update(y[i : i + 100], p[i : i + 100])
    r = acc.result()
    assert np.isclose(r["mae"], np.abs(y - p).mean())
    assert np.isclose(r["rmse"], np.sqrt(((y - p) ** 2).mean()))
    assert r["rows"] == 999
