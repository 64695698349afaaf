"""File reading helpers shared by the readers: fast Arrow parsing, with a line-by-line pass only to name a bad line."""

from __future__ import annotations

import ast
import gzip
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .raw import Drop, OnBad
from .text import non_text_cells

logger = logging.getLogger(__name__)


def open_binary(path: Path) -> IO[bytes]:
    """Open a file for reading bytes, decompressing `.gz` transparently."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


UTF8_BOM = b"\xef\xbb\xbf"


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line without the line break) for every line of a file (a UTF-8 BOM is dropped)."""
    with open_binary(path) as handle:
        for number, line in enumerate(handle, start=1):
            yield number, (line.removeprefix(UTF8_BOM) if number == 1 else line).rstrip(b"\r\n")


def first_non_utf8_line(path: Path) -> int | None:
    """Line number of the first line that is not valid UTF-8, or None."""
    for number, line in numbered_lines(path):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return number
    return None


def require_file(path: Path, what: str) -> Path:
    """`path` if it is a file, else an error that says what was expected there (and when a folder is in its place)."""
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, expected the {what}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")
    return path


class RecordLines:
    """The physical line where each data record of a text file starts, found only when an error needs it.

    Records are counted as the fast Arrow readers count them: blank lines are skipped, a header row is not a
    record, a quoted CSV field may span lines, and (`fields`, when rows of another width were skipped) rows of
    another width are left out. Frames keep the record number as their index, so a message can say `file:line`.
    """

    def __init__(
        self,
        path: Path,
        delimiter: str | None = None,
        quote: bool = True,
        header: bool = True,
        fields: int | None = None,
    ):
        self.path, self.delimiter, self.quote, self.header, self.fields = path, delimiter, quote, header, fields
        self._starts: list[int] | None = None

    def __call__(self, record: int) -> int:
        if self._starts is None:
            self._starts = self._csv_starts() if self.delimiter is not None else self._line_starts()
        if not 0 <= record < len(self._starts):
            raise IndexError(f"{self.path}: no record {record} (the file has {len(self._starts)})")
        return self._starts[record]

    def _line_starts(self) -> list[int]:
        return [number for number, raw in numbered_lines(self.path) if raw.strip()]

    def _csv_starts(self) -> list[int]:
        starts = [
            start
            for start, row in csv_records(self.path, self.delimiter, self.quote)
            if self.fields is None or len(row) == self.fields
        ]
        return starts[1:] if self.header else starts


def csv_records(path: Path, delimiter: str, quote: bool = True) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields) for every non-blank record of a delimited file, header included."""
    import csv
    import io

    with open_binary(path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="replace", newline="")
        reader = csv.reader(text, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE)
        previous = 0
        for row in reader:
            start, previous = previous + 1, reader.line_num
            if row:
                yield start, row


def drop_non_text(
    frame: pd.DataFrame,
    fields: tuple[str, ...] | list[str],
    where: Callable[[int], str],
    drops: list[Drop],
    on_bad: OnBad,
    file_name: str,
) -> pd.DataFrame:
    """Refuse (or, with on_bad="drop", drop and count) item rows whose text fields hold objects or booleans.

    `where(position)` names the row in messages (e.g. "meta.jsonl:7" or "D.item.json: item '3'").
    """
    masks = non_text_cells(frame, fields)
    if not masks:
        return frame
    if on_bad == "error":
        position, field = min((int(np.flatnonzero(mask)[0]), field) for field, mask in masks.items())
        value = frame[field].iloc[position]
        raise ValueError(
            f"{where(position)}: field {field!r} must be text (a string or a list of strings), got "
            f"{type(value).__name__} "
            f"{str(value)[:80]!r} (use --on-bad drop to skip such items)"
        )
    bad = np.logical_or.reduce(list(masks.values()))
    drops.append(Drop("read", f"item with a non-text field in {file_name}", items=int(bad.sum())))
    return frame[~bad]


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
    parse_options = pacsv.ParseOptions(
        delimiter=delimiter,
        quote_char='"' if quote else False,
        newlines_in_values=quote,
        invalid_row_handler=invalid_row,
    )
    try:
        table = pacsv.read_csv(
            path,
            read_options=read_options,
            parse_options=parse_options,
            convert_options=_all_strings(path, delimiter, column_names, quote),
        )
    except pa.ArrowInvalid as error:
        raise ValueError(_explain_csv_error(path, delimiter, column_names, quote, str(error))) from None
    if skipped:
        drops.append(Drop("read", f"malformed row in {path.name}", interactions=len(skipped)))
        logger.warning("%s: skipped %d malformed rows, first: %r", path, len(skipped), skipped[0][:200])
    return table.to_pandas(types_mapper=_string_mapper)


def _string_mapper(arrow_type: pa.DataType) -> object:
    return (
        pd.StringDtype("pyarrow") if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) else None
    )


def _all_strings(path: Path, delimiter: str, column_names: list[str] | None, quote: bool) -> object:
    """Convert options that keep every column a string (ids such as "0012" must not become numbers)."""
    import pyarrow.csv as pacsv

    names = column_names or header_fields(path, delimiter, quote)
    return pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
    )


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
    """Turn an Arrow CSV error into 'file:line: problem' by finding the offending record (quoted fields may span
    lines)."""
    if "UTF8" in message or "UTF-8" in message:
        line = first_non_utf8_line(path)
        return f"{path}:{line}: not valid UTF-8 text" if line else f"{path}: not valid UTF-8 text"
    expected = len(column_names) if column_names else len(header_fields(path, delimiter, quote))
    records = csv_records(path, delimiter, quote)
    if column_names is None:
        next(records, None)  # the header
    for start, fields in records:
        if len(fields) != expected:
            shown = delimiter.join(fields)[:200]
            return (
                f"{path}:{start}: expected {expected} fields, found {len(fields)}: {shown!r} "
                "(use --on-bad drop to skip such rows)"
            )
    return f"{path}: could not be parsed: {message}"


def read_json_table(path: Path, schema: pa.Schema) -> pa.Table | None:
    """Fast columnar parse of a JSON-lines file keeping only `schema`'s fields; None when Arrow cannot parse it
    (malformed lines or inconsistent types), so that the caller can fall back to `parse_json_lines`."""
    import pyarrow.json as pajson

    parse_options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pajson.read_json(
            path, read_options=pajson.ReadOptions(block_size=1 << 24), parse_options=parse_options
        )
        table.validate(full=True)  # the JSON reader does not check UTF-8 in strings; full validation does
        return table
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
        logger.info("%s: columnar JSON parse failed (%s); parsing line by line", path, error)
        return None


def parse_json_lines(
    path: Path, keys: tuple[str, ...], drops: list[Drop], on_bad: OnBad = "error", what: str = "interactions"
) -> pd.DataFrame:
    """Parse a JSON-lines file line by line, keeping `keys` (missing -> None).

    Lines that are Python literals rather than JSON (as in some Amazon metadata dumps) are read with
    `ast.literal_eval`. Other bad lines raise 'file:line: ...' or, with `on_bad="drop"`, are counted. The frame's
    index is the record number (non-blank lines), as `RecordLines` counts them.
    """
    columns: dict[str, list] = {key: [] for key in keys}
    records: list[int] = []
    bad: list[int] = []
    literal_lines = 0
    record_number = -1
    for number, raw in numbered_lines(path):
        if not raw.strip():
            continue
        record_number += 1
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path}:{number}: not valid UTF-8 text") from None
        record = _parse_record(text)
        if record is None:
            literal = _parse_literal(text)
            if literal is None:
                if on_bad == "error":
                    raise ValueError(
                        f"{path}:{number}: not a JSON object: {text[:200]!r} (use --on-bad drop to skip such lines)"
                    )
                bad.append(number)
                continue
            record = literal
            literal_lines += 1
        for key in keys:
            columns[key].append(record.get(key))
        records.append(record_number)
    if literal_lines:
        logger.info("%s: %d lines were Python literals, not JSON; read them as such", path, literal_lines)
    if bad:
        count = {"interactions": len(bad)} if what == "interactions" else {"items": len(bad)}
        drops.append(Drop("read", f"malformed line in {path.name}", **count))
        logger.warning("%s: skipped %d malformed lines (first at line %d)", path, len(bad), bad[0])
    return pd.DataFrame(columns, index=pd.Index(records, dtype="int64"))


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


# Plausible magnitudes of epoch timestamps per unit (years ~1973 to ~5000): a file mixing them mixes units.
TIME_UNITS = (("seconds", 1e8, 1e11), ("milliseconds", 1e11, 1e14), ("microseconds", 1e14, 1e17))


def parse_timestamps(
    values: pd.Series, path: Path, lines: Callable[[int], int], drops: list[Drop], on_bad: OnBad = "error"
) -> tuple[np.ndarray, np.ndarray]:
    """Numbers (or ISO dates) -> float64; returns (timestamps, keep mask).

    `values.index` holds record numbers and `lines` turns one into its file line, for messages. Values that are
    not finite numbers or ISO dates (NaN, inf, 1e400, "noon"), and values in a minority time unit when the file mixes
    epoch seconds, milliseconds and microseconds, raise 'file:line: ...' or are counted drops.
    """
    numbers = None
    try:  # fast path: every value is a number
        arrow = (
            pa.array(values.array)
            if hasattr(values.array, "__arrow_array__")
            else pa.array(values.to_numpy(dtype=object))
        )
        numbers = pc.cast(arrow, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    if numbers is None or not np.isfinite(numbers).all():
        text = values.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce").astype("float64").to_numpy(copy=True)
        unparsed = np.isnan(numbers)
        if unparsed.any():
            dates = pd.to_datetime(text[unparsed], errors="coerce", utc=True, format="ISO8601")
            parsed = dates.notna().to_numpy()
            positions = np.flatnonzero(unparsed)
            numbers[positions[parsed]] = (
                (dates[parsed].astype("int64") / 1e9).to_numpy() if parsed.any() else np.empty(0)
            )
    numbers = np.asarray(numbers, dtype="float64")
    bad = ~np.isfinite(numbers)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        if on_bad == "error":
            raise ValueError(
                f"{path}:{lines(int(values.index[first]))}: timestamp {str(values.iloc[first])!r} is not a finite "
                "number or an ISO date "
                f"({int(bad.sum())} such rows; use --on-bad drop to skip them)"
            )
        drops.append(Drop("read", "bad timestamp", interactions=int(bad.sum())))
    mixed = _minority_unit(numbers, ~bad)
    if mixed is not None:
        rows, unit, majority, example = mixed
        first = int(np.flatnonzero(rows)[0])
        if on_bad == "error":
            raise ValueError(
                f"{path}:{lines(int(values.index[first]))}: timestamp {str(values.iloc[first])!r} looks like epoch "
                f"{unit} but most "
                f"timestamps are {majority} (e.g. line {lines(int(values.index[example]))}); {int(rows.sum())} rows "
                "mix units: "
                "convert the file to one unit (or use --on-bad drop to skip them)"
            )
        drops.append(Drop("read", f"timestamp in {unit} among {majority}", interactions=int(rows.sum())))
        bad |= rows
    return numbers, ~bad


def _minority_unit(numbers: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, str, str, int] | None:
    """(rows in minority units, their unit, the majority unit, a majority row) when several epoch units occur."""
    magnitude = np.abs(numbers)
    classes = [(valid & (magnitude >= low) & (magnitude < high), name) for name, low, high in TIME_UNITS]
    present = [(rows, name) for rows, name in classes if rows.any()]
    if len(present) < 2:
        return None
    majority_rows, majority = max(present, key=lambda entry: (int(entry[0].sum()), -int(np.argmax(entry[0]))))
    minority = np.zeros(len(numbers), dtype=bool)
    for rows, _ in present:
        if rows is not majority_rows:
            minority |= rows
    unit = next(name for rows, name in present if rows[np.flatnonzero(minority)[0]])
    return minority, unit, majority, int(np.flatnonzero(majority_rows)[0])
