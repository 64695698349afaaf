"""`lcrec prepare`: raw logs (MovieLens-100K, LC-Rec, RecBole, UniSRec, Amazon 2018/2023, CSV) -> a DatasetDict.

Reads a dataset, cleans item text, drops repeated pairs and items without text, applies the iterative k-core
filter, splits leave-one-out (train / validation / test), and saves a DatasetDict with stats.json. Prints the
statistics table.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from . import command_line, command_parser, library_default

HELP = "turn interaction logs and item texts into a leave-one-out DatasetDict"
# The same as lcrec.data.FORMATS (tests/test_data_cli.py checks), written here so `lcrec --help` needs no pandas.
FORMATS = ("lcrec", "recbole", "unisrec", "amazon2018", "amazon2023", "csv")


@dataclass
class PrepareArguments:
    """Where the raw data is, how it is read, and where the prepared folder goes."""

    source: str = field(metadata={"help": "'ml-100k' (bundled MovieLens-100K) or a folder/file"})
    out: str = field(metadata={"help": "output folder (replaced atomically; see --overwrite)"})
    format: Literal[FORMATS] | None = field(
        default=None, metadata={"help": "input layout (None: detected from the file names)"}
    )
    kcore: int = field(default=5, metadata={"help": "iterative k-core on users and items (0 turns it off)"})
    name: str | None = field(
        default=None, metadata={"help": "dataset name D when a folder holds several (D.inter.json, D.inter, ...)"}
    )
    meta: list[str] | None = field(
        default=None, metadata={"help": "Amazon metadata files (meta_*.json[l][.gz]), one or more"}
    )
    columns: str | None = field(
        default=None,
        metadata={"help": "csv: interaction column mapping, e.g. user=uid,item=movie_id,timestamp=ts[,title=name]"},
    )
    items: str | None = field(default=None, metadata={"help": "csv: item file (CSV/TSV/Parquet) with item texts"})
    item_columns: str | None = field(
        default=None, metadata={"help": "csv: item file column mapping, e.g. item=id,title=name,description=plot"}
    )
    on_bad: Literal["error", "drop"] = field(
        default="error",
        metadata={"help": "malformed rows and bad timestamps: stop with an error, or drop them and count the drops"},
    )
    max_text_length: int = field(
        default_factory=library_default("lcrec.data.text", "MAX_TEXT_LENGTH"),
        metadata={"help": "a text field longer than this many characters becomes empty"},
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a non-empty --out folder that `lcrec prepare` did not write"}
    )

    def __post_init__(self) -> None:
        if self.kcore < 0:
            raise ValueError(f"kcore must be >= 0, got {self.kcore}")
        if self.max_text_length < 1:
            raise ValueError(f"max_text_length must be >= 1, got {self.max_text_length}")


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    return command_parser(subparsers, "prepare", HELP, __doc__, (PrepareArguments,), prog=prog)


def run(arguments: PrepareArguments) -> int:
    from ..data import format_stats_table, load_stats, prepare_dataset
    from ..data.readers.tabular import INTERACTION_FIELDS, ITEM_FIELDS, TEXT_FIELDS, parse_column_mapping

    started = time.perf_counter()
    prepare_dataset(
        arguments.source,
        arguments.format,
        output_dir=arguments.out,
        kcore=arguments.kcore,
        on_bad=arguments.on_bad,
        overwrite=arguments.overwrite,
        max_text_length=arguments.max_text_length,
        command=command_line(),
        name=arguments.name,
        meta=None if arguments.meta is None else [Path(path) for path in arguments.meta],
        columns=parse_column_mapping(arguments.columns, INTERACTION_FIELDS + TEXT_FIELDS),
        items=None if arguments.items is None else Path(arguments.items),
        item_columns=parse_column_mapping(arguments.item_columns, ITEM_FIELDS),
    )
    print(format_stats_table(load_stats(arguments.out)))
    seconds = time.perf_counter() - started
    print(f"\nread and processed in {seconds:.1f} s; saved to {arguments.out} (load it with lcrec.data.load_prepared)")
    return 0
