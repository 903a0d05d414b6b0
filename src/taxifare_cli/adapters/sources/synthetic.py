"""SyntheticSource: the ride simulator writing the same files the remote serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taxifare_cli.settings import Settings


class SyntheticSource:
    kind = "synthetic"

    def __init__(self, *, seed: int, chunk_size: int, month_rows: int, all_rows: int) -> None:
        self.seed = seed
        self.chunk_size = chunk_size
        self.month_rows = month_rows
        self.all_rows = all_rows

    @classmethod
    def from_settings(cls, settings: Settings) -> SyntheticSource:
        d = settings.data
        return cls(
            seed=d.synthetic_seed,
            chunk_size=d.chunk_size,
            month_rows=d.synthetic_month_rows,
            all_rows=d.synthetic_all_rows,
        )

    def describe(self, name: str) -> str:
        return f"synthetic (seed {self.seed})"

    def fetch(self, name: str, dest: Path, *, progress: Any = None) -> None:
        from taxifare_cli.core.simulator import iter_simulated_dataset
        from taxifare_cli.files.ride_csv import write_csv_atomic

        chunks = iter_simulated_dataset(
            name,
            chunk_size=self.chunk_size,
            seed=self.seed,
            month_rows=self.month_rows,
            all_rows=self.all_rows,
        )
        task = f"simulating {name}"
        if progress is not None:
            progress.start(task)

        def counted() -> Any:
            for chunk in chunks:
                yield chunk
                if progress is not None:
                    progress.advance(task, len(chunk))

        write_csv_atomic(counted(), dest)
        if progress is not None:
            progress.finish(task)
