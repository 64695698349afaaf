"""Prepared dataset folders: `prepare_dataset` (read + protocol + save) and `load_prepared` (validated load)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from lcrec.io_utils import atomic_dir, check_output_dir, read_json

from .process import ITEM_COLUMNS, SEQUENCE_COLUMNS, USER_COLUMNS, build_dataset
from .raw import OnBad, RawDataset
from .readers import BUILTIN_SOURCES, read_source
from .stats import format_stats_table
from .text import MAX_TEXT_LENGTH

logger = logging.getLogger(__name__)

COMMAND = "prepare"
STATS_FILE = "stats.json"
RELEASED_INDEX_FILE = "released_index.json"
# Files every prepared folder holds; folders written before the output marker are recognised by them.
OUTPUT_SIGNATURE = (STATS_FILE, "dataset_dict.json")
SPLITS = ("train", "validation", "test")
LEGACY_SPLIT_NAMES = {"valid": "validation"}
REQUIRED_SPLITS = {"items": ITEM_COLUMNS} | {split: SEQUENCE_COLUMNS for split in SPLITS}


def to_dataset_dict(tables: Mapping[str, pa.Table]) -> datasets.DatasetDict:  # noqa: F821
    """Arrow tables -> a `datasets.DatasetDict` (no copy)."""
    from datasets import Dataset, DatasetDict
    from datasets.table import InMemoryTable

    return DatasetDict({name: Dataset(InMemoryTable(table)) for name, table in tables.items()})


def released_index(raw: RawDataset, items: pa.Table) -> lcrec.indexing.LCRecIndexImport | None:  # noqa: F821
    """The source's released index (LC-Rec `D.index.json`) over the prepared items, re-keyed to their item ids,
    with raw ids recorded and shared code tuples resolved; None when the source has none or it covers no item.

    The one place the data layer reaches into `lcrec.indexing` (imported here, only for such sources): a released
    index is only useful once it obeys the index builder's guarantee that no two items share an index.
    """
    if not raw.index:
        return None
    from lcrec.indexing.item_index import parse_index_tokens
    from lcrec.indexing.released import import_lcrec_index

    raw_ids = items.column("raw_id").to_pylist()
    tokens = {item_id: raw.index[raw_id] for item_id, raw_id in enumerate(raw_ids) if raw_id in raw.index}
    if not tokens:
        return None
    # Codebook sizes come from the whole released index, so that every released code keeps its token.
    rows = []
    for raw_id, value in raw.index.items():
        try:
            rows.append(parse_index_tokens("".join(value)))
        except ValueError as error:
            raise ValueError(f"{raw.source}: released index: item {raw_id!r}: {error}") from None
    if len({len(row) for row in rows}) != 1:
        raise ValueError(f"{raw.source}: released index: items have different numbers of levels")
    sizes = (np.max(rows, axis=0) + 1).tolist()
    return import_lcrec_index(
        tokens,
        codebook_sizes=sizes,
        raw_ids=[raw_ids[item] for item in tokens],
        source=f"{raw.source} (released index)",
    )


def save_prepared(
    dataset: datasets.DatasetDict,  # noqa: F821
    stats: dict,
    output_dir: str | os.PathLike,
    released: lcrec.indexing.ItemIndex | None = None,  # noqa: F821
    overwrite: bool = False,
) -> Path:
    """Write the DatasetDict, `stats.json` (and the released index, lcrec's index format) into `output_dir`.

    The folder is checked first (`lcrec.io_utils.check_output_dir`) and replaced whole, atomically.
    """
    output_dir = check_output_dir(output_dir, COMMAND, overwrite=overwrite, signature=OUTPUT_SIGNATURE)
    with atomic_dir(output_dir, command=COMMAND) as tmp:
        dataset.save_to_disk(str(tmp))
        (tmp / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        if released is not None:
            released.save(tmp / RELEASED_INDEX_FILE)
    return output_dir


def source_paths(source: str | os.PathLike | RawDataset, reader_options: Mapping[str, object]) -> list[Path]:
    """Every file or folder a preparation reads (to keep the output folder away from them)."""
    if isinstance(source, RawDataset) or str(source) in BUILTIN_SOURCES:
        paths: list[Path] = [Path(source.source)] if isinstance(source, RawDataset) and source.source else []
    else:
        paths = [Path(source)]
    for key in ("items", "meta"):
        value = reader_options.get(key)
        paths += [Path(path) for path in (value if isinstance(value, (list, tuple)) else [value]) if path is not None]
    return paths


def prepare_dataset(
    source: str | os.PathLike | RawDataset,
    format: str | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    kcore: int = 5,
    on_bad: OnBad = "error",
    max_text_length: int = MAX_TEXT_LENGTH,
    overwrite: bool = False,
    command: str | None = None,
    **reader_options,
) -> datasets.DatasetDict:  # noqa: F821
    """Read `source` ("ml-100k", a path, or a `RawDataset`), apply the protocol and return the DatasetDict
    (items, train, validation, test, optional users); with `output_dir`, also save it there with `stats.json`
    and, when the source ships an index (LC-Rec `D.index.json`), `released_index.json`.

    `output_dir` is checked before reading (`check_output_dir`: not inside or around the source, a non-empty
    folder needs `overwrite=True` unless an earlier `prepare` wrote it). `command` (the command line) is recorded
    in stats.json. `reader_options`: `name`, `meta`, `columns`, `items`, `item_columns` (see `read_source`).
    """
    if output_dir is not None:
        output_dir = check_output_dir(
            output_dir,
            COMMAND,
            inputs=source_paths(source, reader_options),
            overwrite=overwrite,
            signature=OUTPUT_SIGNATURE,
        )
    raw = source if isinstance(source, RawDataset) else read_source(source, format, on_bad=on_bad, **reader_options)
    tables, stats = build_dataset(raw, kcore=kcore, max_text_length=max_text_length)
    released = released_index(raw, tables["items"])
    if released is not None:
        stats["released_index"] = released.report()
    if command is not None:
        stats["command"] = command
    dataset = to_dataset_dict(tables)
    logger.debug("prepared dataset\n%s", format_stats_table(stats))
    if output_dir is not None:
        save_prepared(
            dataset, stats, output_dir, released.index if released is not None else None, overwrite=overwrite
        )
    return dataset


def load_stats(path: str | os.PathLike) -> dict:
    """The `stats.json` of a prepared dataset folder."""
    stats_path = Path(path) / STATS_FILE
    if not stats_path.is_file():
        what = "a file" if Path(path).is_file() else "not a prepared dataset folder"
        raise FileNotFoundError(f"{path}: {what} (no {STATS_FILE}); create one with `lcrec prepare`")
    return read_json(stats_path, expect=dict)


def load_prepared(path: str | os.PathLike) -> datasets.DatasetDict:  # noqa: F821
    """Load a `lcrec prepare` folder and check its layout: splits, columns, and contiguous item/user ids.

    A folder written before the split was called `validation` (it has `valid`) loads with the split renamed.
    """
    from datasets import DatasetDict

    load_stats(path)
    dataset = DatasetDict.load_from_disk(str(path))
    for old, new in LEGACY_SPLIT_NAMES.items():
        if old in dataset and new not in dataset:
            logger.warning(
                "%s: split %r is read as %r (prepared by an older lcrec; `lcrec prepare` again renames it)",
                path,
                old,
                new,
            )
            dataset = DatasetDict({new if name == old else name: split for name, split in dataset.items()})
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
    for split in SPLITS + (("users",) if "users" in dataset else ()):
        users = dataset[split].data.column("user_id").to_numpy()
        if len(users) != num_users or (num_users and (users[0] != 0 or (users[1:] - users[:-1] != 1).any())):
            raise ValueError(
                f"{path}: split '{split}' must have one row per user, user_id 0..{num_users - 1} in order"
            )
    return dataset
