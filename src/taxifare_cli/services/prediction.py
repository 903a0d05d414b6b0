"""predict_rides / predict_file: fares for raw rides, one or a file streamed in chunks."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from taxifare_cli.adapters.storage.csv_chunks import file_opener, iter_csv_chunks
from taxifare_cli.artifact import FareModel
from taxifare_cli.core.cleaning import CleaningReport, clean_chunk
from taxifare_cli.core.schema import RIDE_FIELDS, TIMESTAMP_FORMAT
from taxifare_cli.errors import DataError
from taxifare_cli.ports import ModelRef, ModelRegistry, ModelVersion
from taxifare_cli.services.progress import SILENT, Progress

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
            raise DataError(f"--ride {pair!r} is not FIELD=VALUE with FIELD one of {', '.join(RIDE_FIELDS)}")
        values[key] = value.strip()
    values.setdefault("passenger_count", "1")
    missing = [f for f in RIDE_FIELDS if f not in values]
    if missing:
        raise DataError(f"the ride lacks {', '.join(missing)}", hint="give each with --ride FIELD=VALUE")
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
    clean, report = clean_chunk(rides, require_fare=False, dedupe=False)
    if report.rows_dropped:
        reason = next(iter(report.dropped))
        raise DataError(
            f"cannot price this ride: {reason}",
            hint="both ends must lie in New York (latitude 40.5-40.9, longitude -74.3 to -73.7) "
            "with 1 to 7 passengers",
        )
    with tempfile.TemporaryDirectory(prefix="taxifare-predict-") as tmp:
        version, model = load_model(registry, ref, Path(tmp))
        fares = model.predict(clean)
    return RidePrediction(version, [round(float(f), 2) for f in fares])


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
    if not input_path.is_file():
        raise DataError(f"input file {input_path} does not exist")
    collected: list[pd.DataFrame] = []
    report = CleaningReport()
    rows = predicted = 0
    tmp_out: Path | None = None
    with tempfile.TemporaryDirectory(prefix="taxifare-predict-") as tmp:
        version, model = load_model(registry, ref, Path(tmp))
        out_f = None
        if output_path is not None:
            output_path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                prefix=f".{output_path.name}.", suffix=".part", dir=output_path.parent
            )
            tmp_out = Path(name)
            out_f = os.fdopen(fd, "w", encoding="utf-8", newline="")
        try:
            chunks = iter_csv_chunks(
                file_opener(input_path), chunk_size, name=str(input_path), required=RIDE_FIELDS
            )
            task = f"predicting {input_path.name}"
            progress.start(task)
            header = True
            for chunk in chunks:
                clean, rep = clean_chunk(chunk, require_fare=False, dedupe=False)
                report.add(rep)
                preds = np.full(len(chunk), np.nan)
                if not clean.empty:
                    preds[chunk.index.get_indexer(clean.index)] = model.predict(clean)
                keys = chunk["key"] if "key" in chunk.columns else pd.Series(range(rows, rows + len(chunk)))
                frame = pd.DataFrame({"key": keys.to_numpy(), PRED_COLUMN: np.round(preds, 2)})
                rows += len(chunk)
                predicted += len(clean)
                progress.advance(task, len(chunk))
                if out_f is not None:
                    frame.to_csv(out_f, index=False, header=header)
                    header = False
                else:
                    collected.append(frame)
            progress.finish(task)
            if out_f is not None:
                out_f.close()
                out_f = None
                assert tmp_out is not None and output_path is not None
                os.replace(tmp_out, output_path)
        finally:
            if out_f is not None:
                out_f.close()
            if tmp_out is not None:
                tmp_out.unlink(missing_ok=True)
    result = FilePrediction(version, output_path, rows, predicted, report)
    predictions = pd.concat(collected, ignore_index=True) if collected else None
    return result, predictions
