"""Prepared dataset folders: `prepare_dataset` (read + protocol + save) and `load_prepared` (validated load)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from lcrec.io_utils import atomic_dir

from .process import ITEM_COLUMNS, SEQUENCE_COLUMNS, USER_COLUMNS, build_dataset, released_index_for
from .raw import OnBad, RawDataset
from .readers import read_source
from .stats import format_stats_table
from .text import MAX_TEXT_LENGTH

logger = logging.getLogger(__name__)

STATS_FILE = "stats.json"
RELEASED_INDEX_FILE = "released_index.json"
REQUIRED_SPLITS = {"items": ITEM_COLUMNS, "train": SEQUENCE_COLUMNS, "valid": SEQUENCE_COLUMNS, "test": SEQUENCE_COLUMNS}


def to_dataset_dict(tables: Mapping[str, pa.Table]) -> "datasets.DatasetDict":  # noqa: F821
    """Arrow tables -> a `datasets.DatasetDict` (no copy)."""
    from datasets import Dataset, DatasetDict
    from datasets.table import InMemoryTable

    return DatasetDict({name: Dataset(InMemoryTable(table)) for name, table in tables.items()})


def save_prepared(dataset: "datasets.DatasetDict", stats: dict, output_dir: str | os.PathLike, released_index: dict | None = None) -> Path:  # noqa: F821
    """Write the DatasetDict, `stats.json` (and the re-keyed released index) atomically into `output_dir`."""
    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        dataset.save_to_disk(str(tmp))
        (tmp / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        if released_index:
            (tmp / RELEASED_INDEX_FILE).write_text(json.dumps(released_index) + "\n", encoding="utf-8")
    return output_dir


def prepare_dataset(
    source: str | os.PathLike | RawDataset,
    format: str | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    kcore: int = 5,
    on_bad: OnBad = "error",
    max_text_length: int = MAX_TEXT_LENGTH,
    **reader_options,
) -> "datasets.DatasetDict":  # noqa: F821
    """Read `source` ("ml-100k", a path, or a `RawDataset`), apply the protocol and return the DatasetDict
    (items, train, valid, test, optional users); with `output_dir`, also save it there with `stats.json`.

    `reader_options`: `name`, `meta`, `columns`, `items`, `item_columns` (see `lcrec.data.readers.read_source`).
    """
    raw = source if isinstance(source, RawDataset) else read_source(source, format, on_bad=on_bad, **reader_options)
    tables, stats = build_dataset(raw, kcore=kcore, max_text_length=max_text_length)
    dataset = to_dataset_dict(tables)
    logger.info("prepared dataset\n%s", format_stats_table(stats))
    if output_dir is not None:
        save_prepared(dataset, stats, output_dir, released_index_for(raw, tables["items"]) if raw.index else None)
    return dataset


def load_stats(path: str | os.PathLike) -> dict:
    """The `stats.json` of a prepared dataset folder."""
    stats_path = Path(path) / STATS_FILE
    if not stats_path.is_file():
        raise FileNotFoundError(f"{path}: not a prepared dataset folder (no {STATS_FILE}); create one with `lcrec prepare`")
    return json.loads(stats_path.read_text(encoding="utf-8"))


def load_prepared(path: str | os.PathLike) -> "datasets.DatasetDict":  # noqa: F821
    """Load a `lcrec prepare` folder and check its layout: splits, columns, and contiguous item/user ids."""
    from datasets import DatasetDict

    load_stats(path)
    dataset = DatasetDict.load_from_disk(str(path))
    required = dict(REQUIRED_SPLITS) | ({"users": USER_COLUMNS} if "users" in dataset else {})
    for split, columns in required.items():
        if split not in dataset:
            raise ValueError(f"{path}: prepared dataset has no '{split}' split (found {sorted(dataset)})")
        missing = [column for column in columns if column not in dataset[split].column_names]
        if missing:
            raise ValueError(f"{path}: split '{split}' lacks column(s) {missing}")
    num_items, num_users = dataset["items"].num_rows, dataset["test"].num_rows
    if not np.array_equal(dataset["items"].data.column("item_id").to_numpy(), np.arange(num_items)):
        raise ValueError(f"{path}: items.item_id must be 0..{num_items - 1} in order")
    for split in ("train", "valid", "test") + (("users",) if "users" in dataset else ()):
        users = dataset[split].data.column("user_id").to_numpy()
        if len(users) != num_users or (num_users and (users[0] != 0 or (users[1:] - users[:-1] != 1).any())):
            raise ValueError(f"{path}: split '{split}' must have one row per user, user_id 0..{num_users - 1} in order")
    return dataset
