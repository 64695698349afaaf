"""File reading helpers shared by the readers: fast Arrow parsing, with a line-by-line pass only to name a bad line."""

from __future__ import annotations

import ast
import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .raw import Drop, OnBad

logger = logging.getLogger(__name__)


def open_binary(path: Path) -> IO[bytes]:
    """Open a file for reading bytes, decompressing `.gz` transparently."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line without the line break) for every line of a file."""
    with open_binary(path) as handle:
        for number, line in enumerate(handle, start=1):
            yield number, line.rstrip(b"\r\n")


def first_non_utf8_line(path: Path) -> int | None:
    """Line number of the first line that is not valid UTF-8, or None."""
    for number, line in numbered_lines(path):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return None


def require_file(path: Path, what: str) -> Path:
    """`path` if it is a file, else a FileNotFoundError that says what was expected there."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    return path


def read_delimited(
    path: Path,
    delimiter: str,
    drops: list[Drop],
    on_bad: OnBad = "error",
    column_names: list[str] | None = None,
    quote: bool = True,
) -> pd.DataFrame:
    """Read a delimited text file into string columns (header row unless `column_names` are given).

    Rows with the wrong number of fields raise an error naming the file and line, or with `on_bad="drop"`
    are skipped and counted; non-UTF-8 text always raises with the line.
    """
    import pyarrow.csv as pacsv

    skipped: list[str] = []

    def invalid_row(row: pacsv.InvalidRow) -> str:
        skipped.append(row.text)
        return "skip" if on_bad == "drop" else "error"

    read_options = pacsv.ReadOptions(column_names=column_names, block_size=1 << 24)
    parse_options = pacsv.ParseOptions(delimiter=delimiter, quote_char='"' if quote else False, invalid_row_handler=invalid_row)
    try:
        table = pacsv.read_csv(path, read_options=read_options, parse_options=parse_options, convert_options=_all_strings(path, delimiter, column_names, quote))
    except pa.ArrowInvalid as error:
        raise ValueError(_explain_csv_error(path, delimiter, column_names, quote, str(error))) from None
    if skipped:
        drops.append(Drop("read", f"malformed row in {path.name}", interactions=len(skipped)))
        logger.warning("%s: skipped %d malformed rows, first: %r", path, len(skipped), skipped[0][:200])
    return table.to_pandas(types_mapper=_string_mapper)


def _string_mapper(arrow_type: pa.DataType) -> object:
    return pd.StringDtype("pyarrow") if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) else None


def _all_strings(path: Path, delimiter: str, column_names: list[str] | None, quote: bool) -> object:
    """Convert options that keep every column a string (ids such as "0012" must not become numbers)."""
    import pyarrow.csv as pacsv

    names = column_names or header_fields(path, delimiter, quote)
    return pacsv.ConvertOptions(column_types={name: pa.string() for name in names}, strings_can_be_null=False, quoted_strings_can_be_null=False)


def header_fields(path: Path, delimiter: str, quote: bool = True) -> list[str]:
    """The header row's field names."""
    import csv

    with open_binary(path) as handle:
        first = handle.readline()
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ValueError(f"{path}:1: the header is not valid UTF-8 text") from None
    if not text.strip():
        raise ValueError(f"{path}:1: empty file or missing header row")
    return next(csv.reader([text], delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE))


def _explain_csv_error(path: Path, delimiter: str, column_names: list[str] | None, quote: bool, message: str) -> str:
    """Turn an Arrow CSV error into 'file:line: problem' by finding the offending line."""
    if "UTF8" in message or "UTF-8" in message:
        line = first_non_utf8_line(path)
        return f"{path}:{line}: not valid UTF-8 text" if line else f"{path}: not valid UTF-8 text"
    import csv

    expected = len(column_names) if column_names else len(header_fields(path, delimiter, quote))
    start = 1 if column_names else 2
    for number, raw in numbered_lines(path):
        if number < start or not raw.strip():
            continue
        text = raw.decode("utf-8", errors="replace")
        fields = next(csv.reader([text], delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE))
        if len(fields) != expected:
            return f"{path}:{number}: expected {expected} fields, found {len(fields)}: {text[:200]!r} (use --on-bad drop to skip such rows)"
    return f"{path}: could not be parsed: {message}"


def read_json_table(path: Path, schema: pa.Schema) -> pa.Table | None:
    """Fast columnar parse of a JSON-lines file keeping only `schema`'s fields; None when Arrow cannot parse it
    (malformed lines or inconsistent types), so that the caller can fall back to `parse_json_lines`."""
    import pyarrow.json as pajson

    parse_options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pajson.read_json(path, read_options=pajson.ReadOptions(block_size=1 << 24), parse_options=parse_options)
        table.validate(full=True)  # the JSON reader does not check UTF-8 in strings; full validation does
        return table
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
        logger.info("%s: columnar JSON parse failed (%s); parsing line by line", path, error)
        return None


def parse_json_lines(path: Path, keys: tuple[str, ...], drops: list[Drop], on_bad: OnBad = "error", what: str = "interactions") -> pd.DataFrame:
    """Parse a JSON-lines file line by line, keeping `keys` (missing -> None).

    Lines that are Python literals rather than JSON (as in some Amazon metadata dumps) are read with
    `ast.literal_eval`. Other bad lines raise 'file:line: ...' or, with `on_bad="drop"`, are counted.
    """
    columns: dict[str, list] = {key: [] for key in keys}
    bad: list[int] = []
    literal_lines = 0
    for number, raw in numbered_lines(path):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path}:{number}: not valid UTF-8 text") from None
        record = _parse_record(text)
        if record is None:
            literal = _parse_literal(text)
            if literal is None:
                if on_bad == "error":
                    raise ValueError(f"{path}:{number}: not a JSON object: {text[:200]!r} (use --on-bad drop to skip such lines)")
                bad.append(number)
                continue
            record = literal
            literal_lines += 1
        for key in keys:
            columns[key].append(record.get(key))
    if literal_lines:
        logger.info("%s: %d lines were Python literals, not JSON; read them as such", path, literal_lines)
    if bad:
        count = {"interactions": len(bad)} if what == "interactions" else {"items": len(bad)}
        drops.append(Drop("read", f"malformed line in {path.name}", **count))
        logger.warning("%s: skipped %d malformed lines (first at line %d)", path, len(bad), bad[0])
    return pd.DataFrame(columns)


def _parse_record(text: str) -> dict | None:
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _parse_literal(text: str) -> dict | None:
    try:
        record = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def parse_timestamps(values: pd.Series, path: Path, first_line: int, drops: list[Drop], on_bad: OnBad = "error") -> tuple[np.ndarray, np.ndarray]:
    """Numbers (or ISO dates) -> float64 seconds; returns (timestamps, keep mask).

    A row's line is `first_line + position`. Bad values raise 'file:line: ...' or are counted drops.
    """
    try:  # fast path: every value is a number
        arrow = pa.array(values.array) if hasattr(values.array, "__arrow_array__") else pa.array(values.to_numpy(dtype=object))
        numbers = pc.cast(arrow, pa.float64()).to_numpy(zero_copy_only=False)
        if not np.isnan(numbers).any():
            return numbers, np.ones(len(numbers), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    text = values.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    bad = numbers.isna().to_numpy(copy=True)
    if bad.any():
        dates = pd.to_datetime(text[bad], errors="coerce", utc=True, format="ISO8601")
        parsed = dates.notna().to_numpy()
        seconds = (dates[parsed].astype("int64") / 1e9).to_numpy() if parsed.any() else np.empty(0)
        numbers = numbers.astype("float64").to_numpy(copy=True)
        positions = np.flatnonzero(bad)
        numbers[positions[parsed]] = seconds
        bad[positions[parsed]] = False
    numbers = np.asarray(numbers, dtype="float64")
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        if on_bad == "error":
            raise ValueError(
                f"{path}:{first_line + first}: timestamp {str(values.iloc[first])!r} is not a number or an ISO date "
                f"({int(bad.sum())} such rows; use --on-bad drop to skip them)"
            )
        drops.append(Drop("read", "bad timestamp", interactions=int(bad.sum())))
    return numbers, ~bad
