"""RecBole atomic files (`D.inter`, `D.item`): tab-separated, typed headers such as `item_id:token`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..files import RecordLines, parse_timestamps, read_delimited, require_file
from ..raw import Drop, OnBad, RawDataset
from ..text import join_list_values

# Our text field -> RecBole column names that hold it, in order of preference.
ITEM_TEXT_COLUMNS = {
    "title": ("title", "movie_title", "item_name", "name"),
    "description": ("description", "desc", "text", "overview"),
    "brand": ("brand", "store", "manufacturer"),
    "categories": ("categories", "category", "genre", "genres", "class"),
}
YEAR_COLUMNS = ("release_year", "year")


def read_atomic(path: Path, drops: list[Drop], on_bad: OnBad = "error") -> pd.DataFrame:
    """Read one atomic file; column names lose their `:type` suffix."""
    frame = read_delimited(require_file(path, "RecBole atomic file"), "\t", drops, on_bad, quote=False)
    frame.columns = [str(name).split(":", 1)[0].strip() for name in frame.columns]
    return frame


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    """Raise a clear error naming the file and the missing columns."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")


def dataset_name(folder: Path, suffix: str) -> str:
    """The `D` of the single `D<suffix>` file in `folder` (error when there are none or several)."""
    names = sorted(path.name[: -len(suffix)] for path in folder.glob(f"*{suffix}"))
    if len(names) != 1:
        found = "no" if not names else f"several ({', '.join(names)})"
        raise FileNotFoundError(f"{folder}: expected one '*{suffix}' file, found {found}; pass --name to choose")
    return names[0]


def atomic_items(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Map an `.item` file's columns to our text fields.

    When there is no description, one is composed from the categories and year (e.g. MovieLens:
    "Animation, Children's, Comedy film from 1995."); a year column is appended to the title.
    """
    require_columns(frame, ("item_id",), path)
    items = pd.DataFrame({"item": frame["item_id"].astype(str)})
    for field, candidates in ITEM_TEXT_COLUMNS.items():
        column = next((name for name in candidates if name in frame.columns), None)
        items[field] = join_list_values(frame[column]) if column else ""
    year_column = next((name for name in YEAR_COLUMNS if name in frame.columns), None)
    year = frame[year_column].astype(str).str.strip() if year_column else pd.Series("", index=frame.index)
    year = year.where(year.str.fullmatch(r"\d{4}"), "")
    has_year = year != ""
    items.loc[has_year, "title"] = items.loc[has_year, "title"].str.strip() + " (" + year[has_year] + ")"
    if not any(name in frame.columns for name in ITEM_TEXT_COLUMNS["description"]):
        genres = items["categories"].str.strip().str.split().str.join(", ").fillna("")
        kind = (genres + " film").where(genres != "", "Film")
        items["description"] = (kind + " from " + year).where(has_year, kind.where(genres != "", ""))
        items["categories"] = genres
    return items


def read_recbole(folder: Path, name: str | None = None, on_bad: OnBad = "error") -> RawDataset:
    """Read `D.inter` (user_id, item_id, optional timestamp) and `D.item` from a RecBole dataset folder."""
    folder = Path(folder)
    name = name or dataset_name(folder, ".inter")
    drops: list[Drop] = []
    inter_path, item_path = folder / f"{name}.inter", folder / f"{name}.item"
    inter = read_atomic(inter_path, drops, on_bad)
    require_columns(inter, ("user_id", "item_id"), inter_path)
    interactions = pd.DataFrame({"user": inter["user_id"], "item": inter["item_id"]})
    if "timestamp" in inter.columns:
        lines = RecordLines(inter_path, "\t", quote=False, fields=len(inter.columns) if on_bad == "drop" else None)
        timestamps, keep = parse_timestamps(inter["timestamp"], inter_path, lines, drops, on_bad)
        interactions["timestamp"] = timestamps
        interactions = interactions[keep] if not keep.all() else interactions
    items = atomic_items(read_atomic(require_file(item_path, "RecBole item file"), drops, on_bad), item_path)
    return RawDataset(interactions.reset_index(drop=True), items, drops=drops, source=str(folder), format="recbole")


def read_movielens_100k(on_bad: OnBad = "error") -> RawDataset:
    """MovieLens-100K from the recbole wheel (see `lcrec.assets.movielens_100k_dir`)."""
    from lcrec.assets import movielens_100k_dir

    raw = read_recbole(movielens_100k_dir(), "ml-100k", on_bad)
    raw.source = "ml-100k"
    return raw
