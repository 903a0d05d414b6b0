"""Raw ride CSV files: streaming typed reads in chunks, and atomic writes.

Reads go through pyarrow's streaming CSV reader (C++, multi-threaded) with the
types of the raw schema. A file whose values do not all parse (a word in a
number column, an odd timestamp) is read again in a lenient mode that turns
such values into nulls, which cleaning then counts; lines with the wrong number
of fields are skipped and counted. Memory holds one chunk at a time.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from taxifare_cli.core.schema import RAW_COLUMNS, TIMESTAMP_FORMAT
from taxifare_cli.errors import DataError
from taxifare_cli.files.atomic import atomic_path

Opener = Callable[[], IO[bytes]]
_NULLS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]
_QUIET = False  # the unraisable-hook filter of _quiet_undecodable_rows is installed
_BYTES_PER_ROW = 110  # a raw ride line is about 100 bytes; sizes the reader's blocks


def _types(columns: Sequence[str], lenient: bool) -> dict[str, pa.DataType]:
    if lenient:
        return {c: pa.string() for c in columns}
    types: dict[str, pa.DataType] = {}
    for c in columns:
        if c == "key":
            types[c] = pa.string()
        elif c == "pickup_datetime":
            types[c] = pa.timestamp("s")  # stamped in UTC; pyarrow cannot parse " UTC" into a tz type
        else:
            types[c] = pa.float64()
    return types


def _to_frame(batch: pa.RecordBatch | pa.Table, lenient: bool) -> pd.DataFrame:
    df = batch.to_pandas()
    if lenient:
        for c in df.columns:
            if c == "pickup_datetime":
                text = df[c].astype("string").str.replace(" UTC", "", regex=False)
                df[c] = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
            elif c != "key":
                df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    elif "pickup_datetime" in df.columns:
        df["pickup_datetime"] = df["pickup_datetime"].dt.tz_localize("UTC")
    return df


def _header(opener: Opener, name: str) -> list[str]:
    with opener() as f:
        line = f.readline(1 << 16)
    if not line.strip():
        raise DataError(f"{name} is empty: expected a CSV header with {', '.join(RAW_COLUMNS)}")
    # utf-8-sig: a header saved by Excel starts with a byte-order mark.
    return [c.strip().strip('"') for c in line.decode("utf-8-sig", "replace").strip().split(",")]


def iter_csv_chunks(
    opener: Opener,
    chunk_size: int,
    *,
    name: str,
    required: Sequence[str] = RAW_COLUMNS,
) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of at most `chunk_size` typed raw rows.

    `opener` returns a fresh binary stream each call (a file, a blob reader):
    the lenient re-read needs to start again. Columns beyond the schema are
    ignored; a missing required column is a DataError naming it. Each frame
    carries `attrs["malformed_rows"]`, the lines skipped since the last one.
    """
    header = _header(opener, name)
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"{name} lacks column(s) {', '.join(missing)}",
            hint=f"raw ride files have the columns {','.join(RAW_COLUMNS)}",
        )
    columns = [c for c in RAW_COLUMNS if c in header]
    emitted = 0
    try:
        for df in _read(opener, chunk_size, columns, lenient=False):
            emitted += len(df)
            yield df
        return
    except pa.ArrowInvalid as e:
        # pyarrow names a bad byte "UTF8" only in a string column; a bad byte in a line of the wrong
        # length reaches the invalid-row handler undecodable and comes back as "Expected N columns".
        if "UTF8" in str(e) or _first_non_utf8(opener) is not None:
            raise _not_utf8(opener, name) from None
        # else some value did not parse: read again leniently, after what was already given
    skip = emitted
    try:
        for df in _read(opener, chunk_size, columns, lenient=True):
            if skip >= len(df):
                skip -= len(df)
                continue
            if skip:
                df = df.iloc[skip:]
                df.attrs = {"malformed_rows": 0}
                skip = 0
            yield df
    except pa.ArrowInvalid as e:
        raise DataError(f"{name} cannot be read as CSV: {str(e).splitlines()[0][:200]}") from None


def _read(opener: Opener, chunk_size: int, columns: list[str], *, lenient: bool) -> Iterator[pd.DataFrame]:
    malformed = 0

    def on_bad_line(_row: pacsv.InvalidRow) -> str:
        nonlocal malformed
        malformed += 1
        return "skip"

    read_opts = pacsv.ReadOptions(block_size=max(1 << 20, min(chunk_size * _BYTES_PER_ROW, 64 << 20)))
    parse_opts = pacsv.ParseOptions(invalid_row_handler=on_bad_line, newlines_in_values=False)
    conv_opts = pacsv.ConvertOptions(
        column_types=_types(columns, lenient),
        include_columns=columns,
        null_values=_NULLS,  # for the typed columns; the lenient pass coerces its strings itself
        strings_can_be_null=False,  # a ride's key is text as written: "NaN" or "NA" is a key, not a gap
        timestamp_parsers=[TIMESTAMP_FORMAT, pacsv.ISO8601],
    )
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    _quiet_undecodable_rows()
    with opener() as f:
        try:
            reader = pacsv.open_csv(
                f, read_options=read_opts, parse_options=parse_opts, convert_options=conv_opts
            )
        except pa.ArrowInvalid as e:
            if "Empty CSV file" in str(e):
                return
            raise
        for batch in reader:
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= chunk_size:
                table = pa.Table.from_batches(pending)
                head, rest = table.slice(0, chunk_size), table.slice(chunk_size)
                df = _to_frame(head, lenient)
                df.attrs["malformed_rows"], malformed = malformed, 0
                yield df
                pending = rest.to_batches()
                pending_rows = rest.num_rows
    if pending_rows or malformed:
        table = pa.Table.from_batches(pending) if pending else None
        df = _to_frame(table, lenient) if table is not None else pd.DataFrame(columns=columns)
        df.attrs["malformed_rows"] = malformed
        yield df


def _quiet_undecodable_rows() -> None:
    """Keep pyarrow's "Exception ignored" report of an invalid row it cannot decode off stderr.

    pyarrow decodes a bad row's text before calling `on_bad_line`; when that fails it prints
    the UnicodeDecodeError as unraisable and fails the read, which `iter_csv_chunks` then
    reports as one line naming the line that is not UTF-8. Installed once, for every thread.
    """
    global _QUIET
    if _QUIET:
        return
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        ours = getattr(unraisable.object, "__qualname__", "").endswith("on_bad_line")
        if not (ours and isinstance(unraisable.exc_value, UnicodeDecodeError)):
            previous(unraisable)

    sys.unraisablehook, _QUIET = hook, True


def _first_non_utf8(opener: Opener) -> tuple[int, int] | None:
    """(line number, byte in the line), both from 1, of the first byte that is not UTF-8; None if all are."""
    with opener() as f:
        for number, line in enumerate(f, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                return number, e.start + 1
    return None


def _not_utf8(opener: Opener, name: str) -> DataError:
    """The error for a file that is not UTF-8 text, naming the first line that is not."""
    hint = "re-encode the file, e.g. iconv -f latin1 -t utf-8"
    where = _first_non_utf8(opener)
    if where is None:
        return DataError(f"{name} is not UTF-8 text", hint=hint)
    return DataError(f"{name} line {where[0]} is not UTF-8 text (byte {where[1]} of the line)", hint=hint)


def file_opener(path: Path) -> Opener:
    return lambda: path.open("rb")


def bytes_opener(data: bytes) -> Opener:
    return lambda: io.BytesIO(data)


def frame_to_table(df: pd.DataFrame) -> pa.Table:
    """A raw rides frame as an Arrow table laid out like the public files."""
    cols = [c for c in RAW_COLUMNS if c in df.columns]
    frame = df[cols]
    if "pickup_datetime" in cols and isinstance(frame["pickup_datetime"].dtype, pd.DatetimeTZDtype):
        frame = frame.assign(pickup_datetime=frame["pickup_datetime"].dt.tz_convert(None))  # naive UTC
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if "pickup_datetime" in cols:
        i = table.schema.get_field_index("pickup_datetime")
        ts = table.column(i)
        if pa.types.is_timestamp(ts.type):
            # Whole seconds, wall-clock in UTC, as the public files have them.
            ts = pc.cast(ts, pa.timestamp("s"), safe=False)
            table = table.set_column(i, "pickup_datetime", pc.strftime(ts, format=TIMESTAMP_FORMAT))
    if "passenger_count" in cols:
        i = table.schema.get_field_index("passenger_count")
        col = table.column(i)
        if pa.types.is_floating(col.type):
            table = table.set_column(i, "passenger_count", pc.cast(col, pa.int64(), safe=False))
    return table


def write_csv_atomic(frames: Iterable[pd.DataFrame], path: Path) -> tuple[int, str]:
    """Write frames as one CSV via a temporary name, then rename; (rows, sha256)."""
    rows = 0
    with atomic_path(path) as tmp:
        with tmp.open("wb") as f:
            writer: pacsv.CSVWriter | None = None
            schema: pa.Schema | None = None
            for df in frames:
                table = frame_to_table(df)
                if writer is None or schema is None:
                    schema = table.schema
                    # pyarrow quotes header names; the public files do not.
                    f.write((",".join(schema.names) + "\n").encode())
                    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
                    writer = pacsv.CSVWriter(f, schema, write_options=options)
                writer.write_table(table.cast(schema))
                rows += table.num_rows
            if writer is not None:
                writer.close()
            f.flush()
            os.fsync(f.fileno())
        digest = sha256_file(tmp)
    return rows, digest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def count_rows(path: Path) -> int:
    """Data lines of a CSV file (newlines minus the header)."""
    n = 0
    last = b"\n"
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        n += 1  # a last line without its newline
    return max(n - 1, 0)


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: np.array([], dtype="float64") for c in RAW_COLUMNS})


def write_fares(f: IO[bytes], keys: pd.Series | np.ndarray, fares: np.ndarray, column: str) -> None:
    """Append `key,<column>` rows to the binary file `f`, fares rounded to the cent, empty for NaN.

    pyarrow's CSV writer: five times faster than DataFrame.to_csv on a million rows. Keys
    are written as they are, unless one holds a comma, a quote or a line break: then every
    key is quoted (RFC 4180), as a reader expects.
    """
    key_array = pa.array(keys, from_pandas=True)
    if isinstance(key_array, pa.ChunkedArray):
        key_array = key_array.combine_chunks()
    if not pa.types.is_string(key_array.type) and not pa.types.is_large_string(key_array.type):
        key_array = key_array.cast(pa.string())
    table = pa.table({"key": key_array, column: pa.array(np.round(fares, 2), from_pandas=True)})
    data = key_array.buffers()[2]  # every key's bytes, end to end
    raw = data.to_pybytes() if data is not None else b""
    quote = any(c in raw for c in (b",", b'"', b"\n", b"\r"))
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed" if quote else "none")
    with pacsv.CSVWriter(f, table.schema, write_options=options) as writer:
        writer.write_table(table)
