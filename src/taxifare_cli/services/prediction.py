"""predict_rides / predict_file: fares for raw rides, one or a file streamed in chunks.

One ride from the command line (`predict_ride_fields`) is priced without pandas
(`core.few_rides`): importing it would take longer than the rest of the process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taxifare_cli.artifact import FareModel
from taxifare_cli.core.few_rides import NEW_YORK_HINT, RideBatch, parse_pickup
from taxifare_cli.core.schema import RIDE_FIELDS
from taxifare_cli.errors import STOP, DataError, UsageError
from taxifare_cli.files.atomic import atomic_open, check_input_file, check_output_file, scratch_dir
from taxifare_cli.files.read_ahead import map_in_order, read_ahead
from taxifare_cli.ports import SILENT, ModelRef, ModelRegistry, ModelVersion, Progress

if TYPE_CHECKING:
    import pandas as pd

    from taxifare_cli.core.cleaning import CleaningReport
    from taxifare_cli.core.pricing import PreparedRides

PRED_COLUMN = "fare_prediction"
# Chunks checked and turned into features at once, beside the reading thread and this one
# (the network and writing). Per million rides: reading 0.3-0.4 s, checking and features
# 0.55-0.65 s, network and writing 0.65 s of CPU. Two preparing threads priced a million
# rides in 0.95-1.02 s in process against 1.28-1.46 s with one on an idle 2-core machine
# (2026-12-03); on cores already busy with other work, one did as well.
PREPARE_WORKERS = 2


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


def ride_values(pairs: list[str]) -> dict[str, str]:
    """`["pickup_datetime=2015-01-15 08:30:00 UTC", "pickup_longitude=-73.98", ...]` -> field: text."""
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
    return values


def _numbers(values: dict[str, str]) -> dict[str, float]:
    numbers = {}
    for f in RIDE_FIELDS:
        if f == "pickup_datetime":
            continue
        try:
            numbers[f] = float(values[f])
        except ValueError:
            raise DataError(f"a ride field is not a number: {f}={values[f]!r}") from None
    return numbers


def _not_a_time(text: str) -> DataError:
    return DataError(
        f"pickup_datetime {text!r} is not a time", hint="use the raw format, e.g. 2015-01-15 08:30:00 UTC"
    )


def parse_ride(pairs: list[str]) -> pd.DataFrame:
    """`--ride FIELD=VALUE` pairs -> one raw ride as a DataFrame (for `predict_rides`)."""
    import pandas as pd

    values = ride_values(pairs)
    row: dict[str, Any] = {f: [v] for f, v in _numbers(values).items()}
    when = pd.to_datetime([values["pickup_datetime"].replace(" UTC", "")], errors="coerce", utc=True)
    if when.isna().any():
        raise _not_a_time(values["pickup_datetime"])
    row["pickup_datetime"] = when
    return pd.DataFrame(row)


def _pickup(text: str) -> datetime:
    """The time of a ride typed on the command line; pandas reads what ISO 8601 does not cover."""
    when = parse_pickup(text)
    if when is not None:
        return when
    import pandas as pd  # the rare other spelling ("01/15/2015 08:30"): as parse_ride reads it

    parsed = pd.to_datetime([text.replace(" UTC", "")], errors="coerce", utc=True)
    if parsed.isna().any():
        raise _not_a_time(text)
    return parsed[0].tz_convert(None).to_pydatetime()


def predict_ride_fields(registry: ModelRegistry, ref: ModelRef, pairs: list[str]) -> RidePrediction:
    """The fare of one ride given as `--ride FIELD=VALUE` pairs, priced without pandas."""
    values = ride_values(pairs)
    ride: dict[str, Any] = {**_numbers(values), "pickup_datetime": _pickup(values["pickup_datetime"])}
    with scratch_dir("predict") as tmp:
        version, model = load_model(registry, ref, Path(tmp))
        priced = model.price_few(RideBatch.from_records([ride]))
    reason = priced.reasons[0]
    if reason is not None:
        raise DataError(f"cannot price this ride: {reason}", hint=NEW_YORK_HINT)
    return RidePrediction(version, [round(float(f), 2) for f in priced.fares])


def load_model(registry: ModelRegistry, ref: ModelRef, tmp: Path) -> tuple[ModelVersion, FareModel]:
    version, artifact = registry.fetch_artifact(ref, tmp)
    return version, FareModel.load(artifact)


def predict_rides(registry: ModelRegistry, ref: ModelRef, rides: pd.DataFrame) -> RidePrediction:
    """Fares for rides given in full; any ride the model cannot price is an error."""
    from taxifare_cli.core.pricing import UnpriceableRides

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

    Three stages: a thread reads the next chunks, two more check them and compute their
    features (pyarrow, pandas and numpy release the GIL for most of it), while this thread
    runs the network and writes the fares of the one before.
    """
    import pandas as pd

    from taxifare_cli.core.cleaning import CleaningReport
    from taxifare_cli.files.ride_csv import file_opener, iter_csv_chunks, write_fares

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
            out_f = stack.enter_context(atomic_open(output_path, "wb"))
            out_f.write(f"key,{PRED_COLUMN}\n".encode())
        chunks = iter_csv_chunks(
            file_opener(input_path), chunk_size, name=str(input_path), required=RIDE_FIELDS
        )
        task = f"predicting {input_path.name}"
        progress.start(task)
        for chunk, prepared in _prepared(chunks):
            malformed = int(chunk.attrs.get("malformed_rows", 0))
            priced = prepared.priced(model.predict_features)
            report.add(priced.report)
            if malformed:
                report.rows_in += malformed
                report.dropped["malformed line"] += malformed
            keys = chunk["key"] if "key" in chunk.columns else pd.Series(range(rows, rows + len(chunk)))
            if out_f is not None:
                write_fares(out_f, keys, priced.fares, PRED_COLUMN)
            else:
                collected.append(
                    pd.DataFrame({"key": keys.to_numpy(), PRED_COLUMN: np.round(priced.fares, 2)})
                )
            rows += len(chunk)
            progress.advance(task, len(chunk))
        progress.finish(task)
    result = FilePrediction(version, output_path, rows, report.rows_out, report)
    predictions = pd.concat(collected, ignore_index=True) if collected else None
    return result, predictions


def _prepared(chunks: Iterator[pd.DataFrame]) -> Iterator[tuple[pd.DataFrame, PreparedRides]]:
    """Each chunk with its rides checked and turned into features: read on one thread,
    prepared on `PREPARE_WORKERS` more, in file order."""
    from taxifare_cli.core.pricing import prepare_rides

    def prepare(chunk: pd.DataFrame) -> tuple[pd.DataFrame, PreparedRides]:
        return chunk, prepare_rides(chunk, invalid="nan")

    return map_in_order(
        prepare,
        read_ahead(chunks),
        workers=PREPARE_WORKERS,
        name="taxifare-predict",
        initializer=STOP.defer_signals_to_main,
    )
