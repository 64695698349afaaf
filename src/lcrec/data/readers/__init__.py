"""Readers: each turns one input layout into a `RawDataset`; `read_source` picks one by name or by looking."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..raw import OnBad, RawDataset
from .amazon import AMAZON_2018, AMAZON_2023, read_amazon
from .atomic import read_movielens_100k, read_recbole
from .lcrec_json import read_lcrec
from .tabular import parse_column_mapping, read_tabular
from .unisrec import read_unisrec

FORMATS = ("lcrec", "recbole", "unisrec", "amazon2018", "amazon2023", "csv")
BUILTIN_SOURCES = ("ml-100k",)


def detect_format(source: Path) -> str:
    """Guess the layout of a folder or file from its file names."""
    if source.is_dir():
        names = [path.name for path in source.iterdir()]
        checks = (
            ("lcrec", lambda name: name.endswith(".inter.json")),
            ("unisrec", lambda name: name.endswith(".train.inter")),
            ("recbole", lambda name: name.endswith(".inter")),
            ("amazon2023", lambda name: name.startswith("meta_") and ".jsonl" in name),
            ("amazon2018", lambda name: name.startswith("meta_") and ".json" in name),
        )
        for name, check in checks:
            if any(check(file_name) for file_name in names):
                return name
        raise ValueError(
            f"{source}: cannot tell the dataset layout from its files; pass --format ({', '.join(FORMATS)})"
        )
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such file or folder")
    name = source.name.removesuffix(".gz")
    if name.endswith(".jsonl"):
        return "amazon2023"
    if name.endswith(".json"):
        return "amazon2018"
    if name.endswith(".csv") and any(source.parent.glob(f"meta_{name.removesuffix('.csv').removesuffix('_5')}.json*")):
        return "amazon2018"  # a ratings-only CSV next to its metadata
    if name.endswith((".csv", ".tsv", ".parquet")):
        return "csv"
    raise ValueError(
        f"{source}: cannot tell the dataset layout from the file name; pass --format ({', '.join(FORMATS)})"
    )


def read_source(
    source: str | Path,
    format: str | None = None,
    *,
    name: str | None = None,
    meta: list[Path] | None = None,
    columns: Mapping[str, str] | None = None,
    items: Path | None = None,
    item_columns: Mapping[str, str] | None = None,
    on_bad: OnBad = "error",
) -> RawDataset:
    """Read `source` ("ml-100k" or a path) in `format` (detected when None)."""
    if str(source) in BUILTIN_SOURCES:
        return read_movielens_100k(on_bad)
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder (built-in sources: {', '.join(BUILTIN_SOURCES)})")
    format = format or detect_format(path)
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if format in ("lcrec", "recbole", "unisrec") and not path.is_dir():
        raise ValueError(f"{path}: the {format} layout is a folder of files, not a single file")
    if format == "lcrec":
        return read_lcrec(path, name, on_bad)
    if format == "recbole":
        return read_recbole(path, name, on_bad)
    if format == "unisrec":
        return read_unisrec(path, name, on_bad)
    if format == "amazon2018":
        return read_amazon(path, AMAZON_2018, meta, on_bad)
    if format == "amazon2023":
        return read_amazon(path, AMAZON_2023, meta, on_bad)
    return read_tabular(path, columns, items, item_columns, on_bad)


__all__ = [
    "BUILTIN_SOURCES",
    "FORMATS",
    "detect_format",
    "parse_column_mapping",
    "read_amazon",
    "read_lcrec",
    "read_movielens_100k",
    "read_recbole",
    "read_source",
    "read_tabular",
    "read_unisrec",
]
