"""`lcrec prepare`: raw logs (MovieLens-100K, LC-Rec, RecBole, UniSRec, Amazon 2018/2023, CSV) -> a leave-one-out DatasetDict."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

# Same as lcrec.data.FORMATS (a test checks), kept here so that `lcrec --help` does not import pandas.
FORMATS = ("lcrec", "recbole", "unisrec", "amazon2018", "amazon2023", "csv")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="turn interaction logs and item texts into a leave-one-out DatasetDict",
        description="Read a dataset, clean item text, drop repeated pairs and items without text, apply the iterative "
        "k-core filter, split leave-one-out, and save a DatasetDict with stats.json. Prints the statistics table.",
    )
    parser.add_argument("--source", required=True, help="'ml-100k' (bundled MovieLens-100K) or a folder/file")
    parser.add_argument("--format", choices=FORMATS, help="input layout (detected from the file names when omitted)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (replaced atomically)")
    parser.add_argument("--kcore", type=int, default=5, help="iterative k-core on users and items (default 5; 0 turns it off)")
    parser.add_argument("--name", help="dataset name D when a folder holds several (D.inter.json, D.inter, D.text, ...)")
    parser.add_argument("--meta", type=Path, action="append", help="Amazon metadata file (meta_*.json[l][.gz]); repeatable")
    parser.add_argument("--columns", help="csv: interaction column mapping, e.g. user=uid,item=movie_id,timestamp=ts[,title=name]")
    parser.add_argument("--items", type=Path, help="csv: item file (CSV/TSV/Parquet) with item texts")
    parser.add_argument("--item-columns", help="csv: item file column mapping, e.g. item=id,title=name,description=plot")
    parser.add_argument("--on-bad", choices=("error", "drop"), default="error", help="malformed rows and bad timestamps: stop with an error (default) or skip and count them")
    parser.add_argument("--max-text-length", type=int, default=2000, help="a text field longer than this becomes empty (default 2000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from lcrec.data import build_dataset, format_stats_table, read_source, save_prepared, to_dataset_dict
    from lcrec.data.process import released_index_for
    from lcrec.data.readers import parse_column_mapping
    from lcrec.data.readers.tabular import INTERACTION_FIELDS, ITEM_FIELDS, TEXT_FIELDS

    start = time.perf_counter()
    with tqdm(total=3, desc="prepare", unit="stage", disable=None) as progress:
        progress.set_postfix_str("reading")
        raw = read_source(
            args.source,
            args.format,
            name=args.name,
            meta=args.meta,
            columns=parse_column_mapping(args.columns, INTERACTION_FIELDS + TEXT_FIELDS),
            items=args.items,
            item_columns=parse_column_mapping(args.item_columns, ITEM_FIELDS),
            on_bad=args.on_bad,
        )
        progress.update()
        progress.set_postfix_str("cleaning, filtering, splitting")
        tables, stats = build_dataset(raw, kcore=args.kcore, max_text_length=args.max_text_length)
        stats["total_seconds"] = round(time.perf_counter() - start, 3)
        progress.update()
        progress.set_postfix_str("saving")
        save_prepared(to_dataset_dict(tables), stats, args.out, released_index_for(raw, tables["items"]) if raw.index else None)
        progress.update()
    print(format_stats_table(stats))
    print(f"\nread and processed in {stats['total_seconds']:.1f} s; saved to {args.out} (load it with lcrec.data.load_prepared)")
    return 0
