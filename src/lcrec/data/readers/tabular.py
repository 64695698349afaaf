"""Generic CSV / TSV / Parquet interactions (and optional items file) with a column mapping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import (
    RecordLines,
    drop_non_text,
    parse_timestamps,
    read_delimited,
    require_file,
)
from ..raw import TEXT_FIELDS, Drop, OnBad, RawDataset
from ..text import join_list_values

INTERACTION_FIELDS = ("user", "item", "timestamp")
ITEM_FIELDS = ("item", *TEXT_FIELDS)


def parse_column_mapping(text: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """ "user=uid,item=movie" -> {"user": "uid", "item": "movie"}; unknown field names, a field given twice and a
    column given to two fields are errors."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        field, sep, column = part.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not column:
            raise ValueError(f"column mapping {part!r}: expected FIELD=COLUMN")
        if field not in allowed:
            raise ValueError(f"column mapping {part!r}: unknown field {field!r}; fields are {', '.join(allowed)}")
        if field in mapping:
            raise ValueError(
                f"column mapping {text!r}: field {field!r} is given twice ({mapping[field]!r} and {column!r})"
            )
        shared = next((other for other, chosen in mapping.items() if chosen == column), None)
        if shared is not None:
            raise ValueError(f"column mapping {text!r}: column {column!r} is given to both {shared!r} and {field!r}")
        mapping[field] = column
    return mapping


def read_frame(
    path: Path, drops: list[Drop], on_bad: OnBad = "error", delimiter: str | None = None
) -> tuple[pd.DataFrame, Callable[[int], int]]:
    """A CSV/TSV (optionally .gz, header row) or Parquet file as a DataFrame, and the line (row) of each record."""
    path = require_file(Path(path), "table file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pandas(), lambda record: record + 1
        except Exception as error:  # pyarrow raises several types for a damaged file
            raise ValueError(f"{path}: not a readable Parquet file ({error})") from None
    name = path.name.removesuffix(".gz")
    delimiter = delimiter or ("\t" if name.endswith((".tsv", ".inter", ".txt")) else ",")
    frame = read_delimited(path, delimiter, drops, on_bad)
    return frame, RecordLines(path, delimiter, fields=len(frame.columns) if on_bad == "drop" else None)


def _resolve(
    frame: pd.DataFrame, mapping: Mapping[str, str], fields: tuple[str, ...], required: tuple[str, ...], path: Path
) -> dict[str, str]:
    """Our field -> the file's column: explicit mapping first, else a column of the same name."""
    resolved = {field: mapping.get(field, field) for field in fields if field in mapping or field in frame.columns}
    missing_columns = [f"{field}={column}" for field, column in resolved.items() if column not in frame.columns]
    if missing_columns:
        raise ValueError(f"{path}: mapped column(s) not found: {missing_columns}; columns are {list(frame.columns)}")
    missing = [field for field in required if field not in resolved]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) for {missing}; columns are {list(frame.columns)} (map them with --columns "
            "FIELD=COLUMN)"
        )
    return resolved


def read_tabular(
    path: Path,
    columns: Mapping[str, str] | None = None,
    items_path: Path | None = None,
    item_columns: Mapping[str, str] | None = None,
    on_bad: OnBad = "error",
    delimiter: str | None = None,
) -> RawDataset:
    """Interactions from `path` (user, item, optional timestamp); item texts from `items_path`, or from text
    columns of the interactions file itself (the first row of each item)."""
    path = Path(path)
    drops: list[Drop] = []
    frame, lines = read_frame(path, drops, on_bad, delimiter)
    resolved = _resolve(frame, columns or {}, INTERACTION_FIELDS + TEXT_FIELDS, ("user", "item"), path)
    ids = frame[[resolved["user"], resolved["item"]]]
    incomplete = (ids.isna() | (ids.astype(str).apply(lambda column: column.str.strip()) == "")).any(axis=1).to_numpy()
    if incomplete.any():
        first = int(incomplete.argmax())
        if on_bad == "error":
            raise ValueError(
                f"{path}:{lines(int(frame.index[first]))}: empty user or item id (use --on-bad drop to skip such rows)"
            )
        drops.append(Drop("read", f"empty user or item id in {path.name}", interactions=int(incomplete.sum())))
        frame = frame[~incomplete]
    interactions = pd.DataFrame(
        {"user": frame[resolved["user"]].astype(str), "item": frame[resolved["item"]].astype(str)}
    )
    keep = np.ones(len(frame), dtype=bool)
    if "timestamp" in resolved:
        interactions["timestamp"], keep = parse_timestamps(
            frame[resolved["timestamp"]].astype(str), path, lines, drops, on_bad
        )
    text_fields = [field for field in TEXT_FIELDS if field in resolved]
    if items_path is not None:
        items_path = Path(items_path)
        item_frame, _ = read_frame(items_path, drops, on_bad, delimiter)
        item_resolved = _resolve(item_frame, item_columns or {}, ITEM_FIELDS, ("item",), items_path)
        items = pd.DataFrame({field: item_frame[column] for field, column in item_resolved.items()})
    elif text_fields:
        items = pd.DataFrame(
            {"item": interactions["item"]} | {field: frame[resolved[field]] for field in text_fields}
        )[keep].drop_duplicates("item")
    else:
        raise ValueError(
            f"{path}: no item text: pass --items FILE, or map text columns (title=..., description=...) with --columns"
        )
    text_file = items_path or path
    items = drop_non_text(
        items,
        TEXT_FIELDS,
        lambda row: f"{text_file}: item {str(items['item'].iloc[row])!r}",
        drops,
        on_bad,
        text_file.name,
    )
    items = items.assign(
        item=items["item"].astype(str),
        **{field: join_list_values(items[field]) for field in TEXT_FIELDS if field in items},
    )
    return RawDataset(
        interactions[keep].reset_index(drop=True),
        items.reset_index(drop=True),
        drops=drops,
        source=str(path),
        format="csv",
    )
