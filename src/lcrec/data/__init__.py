"""Data layer: readers for common layouts, the LC-Rec preparation protocol, and prepared DatasetDict folders.

Prepared folder (`lcrec prepare --out DIR`): splits `items` (item_id, raw_id, title, description, brand,
categories), `train` / `validation` / `test` (user_id, raw_user_id, history, target), optional `users`
(user_id, preference, intention), plus `stats.json` and, for a source that ships an index (LC-Rec
`D.index.json`), `released_index.json` (lcrec's index format, shared codes resolved).
"""

from .kcore import kcore_mask
from .prepared import (
    load_prepared,
    load_stats,
    prepare_dataset,
    save_prepared,
    to_dataset_dict,
)
from .process import build_dataset, clean_items
from .raw import Drop, RawDataset
from .readers import (
    FORMATS,
    detect_format,
    read_amazon,
    read_lcrec,
    read_movielens_100k,
    read_recbole,
    read_source,
    read_tabular,
    read_unisrec,
)
from .split import leave_one_out
from .stats import format_stats_table, interaction_stats
from .text import clean_text

__all__ = [
    "FORMATS",
    "Drop",
    "RawDataset",
    "build_dataset",
    "clean_items",
    "clean_text",
    "detect_format",
    "format_stats_table",
    "interaction_stats",
    "kcore_mask",
    "leave_one_out",
    "load_prepared",
    "load_stats",
    "prepare_dataset",
    "read_amazon",
    "read_lcrec",
    "read_movielens_100k",
    "read_recbole",
    "read_source",
    "read_tabular",
    "read_unisrec",
    "save_prepared",
    "to_dataset_dict",
]
