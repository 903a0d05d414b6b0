"""predict_rides / predict_file: fares for raw rides, one or a file streamed in chunks."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from taxifare_cli.artifact import FareModel
from taxifare_cli.core.cleaning import CleaningReport
from taxifare_cli.core.pricing import NEW_YORK_HINT, UnpriceableRides
from taxifare_cli.core.schema import RIDE_FIELDS, TIMESTAMP_FORMAT
from taxifare_cli.errors import DataError, UsageError
from taxifare_cli.files.atomic import atomic_open, check_input_file, check_output_file, scratch_dir
from taxifare_cli.files.ride_csv import file_opener, iter_csv_chunks
from taxifare_cli.ports import SILENT, ModelRef, ModelRegistry, ModelVersion, Progress

PRED_COLUMN = "fare_prediction"


@dataclass
class RidePrediction:
    version: ModelVersion
    fares: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version.version, "stage": self.version.stage, "fares": self.fares}


@dataclass
class FilePrediction:
    version: ModelVersion
    output: Path | None
    rows: int
    predicted: int
    report: CleaningReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version.version,
            "output": str(self.output) if self.output else None,
            "rows": self.rows,
            "predicted": self.predicted,
            "skipped": self.report.as_dict()["dropped"],
        }


def parse_ride(pairs: list[str]) -> pd.DataFrame:
    """`["pickup_datetime=2015-01-15 08:30:00 UTC", "pickup_longitude=-73.98", ...]` -> one raw ride."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in RIDE_FIELDS:
            raise UsageError(f"--ride {pair!r} is not FIELD=VALUE with FIELD one of {', '.join(RIDE_FIELDS)}")
        values[key] = value.strip()
    values.setdefault("passenger_count", "1")
    missing = [f for f in RIDE_FIELDS if f not in values]
    if missing:
        raise UsageError(f"the ride lacks {', '.join(missing)}", hint="give each with --ride FIELD=VALUE")
    try:
        row: dict[str, Any] = {f: [float(values[f])] for f in RIDE_FIELDS if f != "pickup_datetime"}
    except ValueError as e:
        raise DataError(f"a ride field is not a number: {e}") from None
    when = pd.to_datetime([values["pickup_datetime"].replace(" UTC", "")], errors="coerce", utc=True)
    if when.isna().any():
        raise DataError(
            f"pickup_datetime {values['pickup_datetime']!r} is not a time",
            hint=f"use the raw format, e.g. {pd.Timestamp('2015-01-15 08:30').strftime(TIMESTAMP_FORMAT)}",
        )
    row["pickup_datetime"] = when
    return pd.DataFrame(row)


def load_model(registry: ModelRegistry, ref: ModelRef, tmp: Path) -> tuple[ModelVersion, FareModel]:
    version, artifact = registry.fetch_artifact(ref, tmp)
    return version, FareModel.load(artifact)


def predict_rides(registry: ModelRegistry, ref: ModelRef, rides: pd.DataFrame) -> RidePrediction:
    """Fares for rides given in full; any ride the model cannot price is an error."""
    with scratch_dir("predict") as tmp:
        version, model = load_model(registry, ref, Path(tmp))
        try:
            priced = model.price(rides)
        except UnpriceableRides as e:
            reason = next(iter(e.report.dropped))
            raise DataError(f"cannot price this ride: {reason}", hint=NEW_YORK_HINT) from None
    return RidePrediction(version, [round(float(f), 2) for f in priced.fares])


def predict_file(
    registry: ModelRegistry,
    ref: ModelRef,
    input_path: Path,
    output_path: Path | None,
    *,
    chunk_size: int,
    progress: Progress = SILENT,
) -> tuple[FilePrediction, pd.DataFrame | None]:
    """Stream `input_path` through the model; write key + prediction to `output_path` atomically.

    Rows the model cannot price keep their key with an empty prediction, and are
    counted by reason. Without an output path, the predictions are returned.
    """
    check_input_file(input_path)
    if output_path is not None:
        check_output_file(output_path, inputs=(input_path,))
    collected: list[pd.DataFrame] = []
    report = CleaningReport()
    rows = 0
    with scratch_dir("predict") as tmp, ExitStack() as stack:
        version, model = load_model(registry, ref, Path(tmp))
        out_f = None
        if output_path is not None:
            out_f = stack.enter_context(atomic_open(output_path, "w", newline=""))
        chunks = iter_csv_chunks(
            file_opener(input_path), chunk_size, name=str(input_path), required=RIDE_FIELDS
        )
        task = f"predicting {input_path.name}"
        progress.start(task)
        header = True
        for chunk in chunks:
            malformed = int(chunk.attrs.get("malformed_rows", 0))
            priced = model.price(chunk, invalid="nan")
            report.add(priced.report)
            if malformed:
                report.rows_in += malformed
                report.dropped["malformed line"] += malformed
            keys = chunk["key"] if "key" in chunk.columns else pd.Series(range(rows, rows + len(chunk)))
            frame = pd.DataFrame({"key": keys.to_numpy(), PRED_COLUMN: np.round(priced.fares, 2)})
            if out_f is not None:
                frame.to_csv(out_f, index=False, header=header)
                header = False
            else:
                collected.append(frame)
            rows += len(chunk)
            progress.advance(task, len(chunk))
        progress.finish(task)
        if out_f is not None and header:  # no rides at all: still a CSV a reader can open
            out_f.write(f"key,{PRED_COLUMN}\n")
    result = FilePrediction(version, output_path, rows, report.rows_out, report)
    predictions = pd.concat(collected, ignore_index=True) if collected else None
    return result, predictions
