"""Benchmarks of taxifare, each beside its reference: `python -m benchmarks` (`nox -s bench`).

1. start-up            `taxifare --help` vs a bare `import typer`
2. preprocessing       raw CSV -> features vs the original project's way and a bare pyarrow read
3. memory              peak RSS of `model train` at growing row counts
4. pipeline            epoch rows/s streamed from disk vs arrays in memory
5. prediction          `model predict --input` rows/s vs Keras predict on features
6. quality             val MAE vs a line on distance and the original network
"""
