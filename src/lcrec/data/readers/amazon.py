"""Amazon Review 2018 (ratings CSV or reviews JSON lines + `meta_*.json`) and 2023 (`*.jsonl` + `meta_*.jsonl`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..files import (
    RecordLines,
    drop_non_text,
    parse_json_lines,
    parse_timestamps,
    read_delimited,
    read_json_table,
    require_file,
)
from ..raw import Drop, OnBad, RawDataset
from ..text import join_list_values


@dataclass(frozen=True)
class AmazonLayout:
    """Field names of one Amazon release: review fields and metadata fields."""

    name: str
    review_user: str
    review_item: str
    review_time: str
    time_scale: float  # seconds per timestamp unit
    meta_item: str
    meta_schema: pa.Schema
    extensions: tuple[str, ...]


AMAZON_2018 = AmazonLayout(
    name="amazon2018",
    review_user="reviewerID",
    review_item="asin",
    review_time="unixReviewTime",
    time_scale=1.0,
    meta_item="asin",
    meta_schema=pa.schema(
        [
            ("asin", pa.string()),
            ("title", pa.string()),
            ("description", pa.list_(pa.string())),
            ("brand", pa.string()),
            ("category", pa.list_(pa.string())),
        ]
    ),
    extensions=(".csv", ".csv.gz", ".json", ".json.gz"),
)
AMAZON_2023 = AmazonLayout(
    name="amazon2023",
    review_user="user_id",
    review_item="parent_asin",
    review_time="timestamp",
    time_scale=1e-3,
    meta_item="parent_asin",
    meta_schema=pa.schema(
        [
            ("parent_asin", pa.string()),
            ("title", pa.string()),
            ("description", pa.list_(pa.string())),
            ("features", pa.list_(pa.string())),
            ("store", pa.string()),
            ("categories", pa.list_(pa.string())),
            ("main_category", pa.string()),
        ]
    ),
    extensions=(".jsonl", ".jsonl.gz"),
)
# Fields the line-by-line fallback keeps (it also understands the 2014 layout's `categories` list of lists).
_META_KEYS = (
    "asin",
    "parent_asin",
    "title",
    "description",
    "features",
    "brand",
    "store",
    "category",
    "categories",
    "main_category",
)


def _has_extension(path: Path, extensions: tuple[str, ...]) -> bool:
    return any(path.name.endswith(extension) for extension in extensions)


def find_amazon_files(
    source: Path, layout: AmazonLayout, meta: list[Path] | None = None
) -> tuple[list[Path], list[Path]]:
    """(review or rating files, metadata files) of a folder, or of one review file plus its `meta_` sibling."""
    source = Path(source)
    if source.is_dir():
        files = sorted(path for path in source.iterdir() if path.is_file() and _has_extension(path, layout.extensions))
        reviews = [path for path in files if not path.name.startswith("meta_")]
        found_meta = [path for path in files if path.name.startswith("meta_")]
    else:
        reviews = [require_file(source, f"{layout.name} reviews file")]
        stem = re.sub(r"(_5)?\.(csv|jsonl?)(\.gz)?$", "", source.name)
        found_meta = sorted(
            path for path in source.parent.glob(f"meta_{stem}.*") if _has_extension(path, layout.extensions)
        )
    meta = [Path(path) for path in meta] if meta else found_meta
    if not reviews:
        raise FileNotFoundError(f"{source}: no {layout.name} review files ({', '.join(layout.extensions)})")
    if not meta:
        raise FileNotFoundError(f"{source}: no metadata file (meta_*) found; pass it with --meta")
    return reviews, [require_file(path, "metadata file") for path in meta]


def read_amazon(
    source: Path, layout: AmazonLayout = AMAZON_2018, meta: list[Path] | None = None, on_bad: OnBad = "error"
) -> RawDataset:
    """Read every review/rating file (ratings are implicit interactions) and the item metadata."""
    reviews, meta_files = find_amazon_files(source, layout, meta)
    drops: list[Drop] = []
    interactions = pd.concat([_read_reviews(path, layout, drops, on_bad) for path in reviews], ignore_index=True)
    items = pd.concat([_read_meta(path, layout, drops, on_bad) for path in meta_files], ignore_index=True)
    return RawDataset(interactions, items, drops=drops, source=str(source), format=layout.name)


def _read_reviews(path: Path, layout: AmazonLayout, drops: list[Drop], on_bad: OnBad) -> pd.DataFrame:
    if _has_extension(path, (".csv", ".csv.gz")):
        return _read_ratings_csv(path, drops, on_bad)
    keys = (layout.review_user, layout.review_item, layout.review_time)
    schema = pa.schema(
        [(layout.review_user, pa.string()), (layout.review_item, pa.string()), (layout.review_time, pa.float64())]
    )
    table = read_json_table(path, schema)
    frame = table.to_pandas() if table is not None else parse_json_lines(path, keys, drops, on_bad)
    missing = [key for key in keys if frame[key].isna().all()]
    if len(frame) and missing:
        raise ValueError(f"{path}: no record has the field(s) {missing}; is this a {layout.name} reviews file?")
    lines = RecordLines(path)
    incomplete = frame[list(keys)].isna().any(axis=1).to_numpy()
    if incomplete.any():
        first = int(np.flatnonzero(incomplete)[0])
        if on_bad == "error":
            lacking = [key for key in keys if pd.isna(frame[key].iloc[first])]
            raise ValueError(
                f"{path}:{lines(int(frame.index[first]))}: the record lacks {lacking} (use --on-bad drop to skip such "
                "records)"
            )
        drops.append(Drop("read", f"incomplete record in {path.name}", interactions=int(incomplete.sum())))
        frame = frame[~incomplete]
    timestamps, keep = parse_timestamps(frame[layout.review_time], path, lines, drops, on_bad)
    result = pd.DataFrame(
        {
            "user": frame[layout.review_user].astype(str).to_numpy(),
            "item": frame[layout.review_item].astype(str).to_numpy(),
            "timestamp": timestamps * layout.time_scale,
        }
    )
    return result[keep] if not keep.all() else result


def _read_ratings_csv(path: Path, drops: list[Drop], on_bad: OnBad) -> pd.DataFrame:
    """Amazon 2018 ratings-only CSV: `item,user,rating,timestamp`, no header (a header row is recognised)."""
    frame = read_delimited(path, ",", drops, on_bad, column_names=["item", "user", "rating", "timestamp"])
    if len(frame) and frame["timestamp"].iloc[0].strip().lower() == "timestamp":  # a header row: not a record
        frame = frame.iloc[1:]
    lines = RecordLines(path, ",", header=False, fields=4 if on_bad == "drop" else None)
    timestamps, keep = parse_timestamps(frame["timestamp"], path, lines, drops, on_bad)
    result = pd.DataFrame({"user": frame["user"].array, "item": frame["item"].array, "timestamp": timestamps})
    return result[keep] if not keep.all() else result


def _read_meta(path: Path, layout: AmazonLayout, drops: list[Drop], on_bad: OnBad) -> pd.DataFrame:
    """Item text from a metadata file: columnar parse first, line by line (Python-literal lines too) as fallback."""
    table = read_json_table(path, layout.meta_schema)
    if table is not None:
        frame = pd.DataFrame(
            {
                name: _arrow_text(table[name], ", " if name.startswith("categor") else " ")
                for name in table.column_names
            }
        )
    else:
        frame = parse_json_lines(path, _META_KEYS, drops, on_bad, what="items")
        lines, records = RecordLines(path), frame.index
        frame = drop_non_text(
            frame, _META_KEYS[2:], lambda row: f"{path}:{lines(int(records[row]))}", drops, on_bad, path.name
        )
    if layout is AMAZON_2023:
        item = frame.get("parent_asin")
        description = join_list_values(frame["description"])
        features = join_list_values(frame["features"]) if "features" in frame else ""
        description = description.where(description.str.strip() != "", features)
        brand = join_list_values(frame["store"])
        categories = join_list_values(frame["categories"], ", ")
        categories = categories.where(categories != "", join_list_values(frame["main_category"]))
    else:
        item = frame.get("asin")
        description = join_list_values(frame["description"])
        brand = join_list_values(frame["brand"])
        category = frame["category"] if "category" in frame else pd.Series(None, index=frame.index)
        if "categories" in frame:  # 2014 layout: a list of category paths
            category = category.where(category.notna(), frame["categories"].map(_first_path))
        categories = join_list_values(category, ", ")
    if item is None or item.isna().all():
        raise ValueError(
            f"{path}: no record has the field '{layout.meta_item}'; is this a {layout.name} metadata file?"
        )
    keep = item.notna().to_numpy()
    if not keep.all():
        drops.append(Drop("read", f"metadata without item id in {path.name}", items=int((~keep).sum())))
    items = pd.DataFrame(
        {
            "item": item.astype(str),
            "title": join_list_values(frame["title"]),
            "description": description,
            "brand": brand,
            "categories": categories,
        }
    )
    return items[keep]


def _arrow_text(column: pa.ChunkedArray, separator: str) -> pd.Series:
    """An Arrow string or list<string> column as strings (lists joined in C); missing values stay None."""
    if pa.types.is_list(column.type):
        column = pc.binary_join(column, separator)
    return column.to_pandas(
        types_mapper=lambda arrow_type: pd.StringDtype("pyarrow") if pa.types.is_string(arrow_type) else None
    )


def _first_path(value: object) -> object:
    if isinstance(value, list) and value and isinstance(value[0], list):
        return value[0]
    return value
