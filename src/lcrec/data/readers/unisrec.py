"""UniSRec-style RecBole layout: `D.text`, `D.item2index`, `D.user2index`, `D.{train,valid,test}.inter`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..files import read_delimited, require_file
from ..raw import Drop, OnBad, RawDataset
from .atomic import dataset_name, read_atomic, require_columns

SPLITS = ("test", "valid", "train")  # preference order when picking each user's longest sequence


def read_unisrec(folder: Path, name: str | None = None, on_bad: OnBad = "error") -> RawDataset:
    """Rebuild each user's full chronological sequence: the longest `item_id_list + [item_id]` over all rows.

    Sequence position is the timestamp. Items map back to raw ids via `D.item2index`; text is `D.text`,
    split into title, categories and brand when it has UniSRec's "title. categories. brand." shape.
    """
    folder = Path(folder)
    name = name or dataset_name(folder, ".text")
    drops: list[Drop] = []
    rows = []
    for rank, split in enumerate(SPLITS):
        path = folder / f"{name}.{split}.inter"
        if not path.exists():
            continue
        frame = read_atomic(path, drops, on_bad)
        require_columns(frame, ("user_id", "item_id_list", "item_id"), path)
        frame = frame[["user_id", "item_id_list", "item_id"]].assign(rank=rank)
        rows.append(frame)
    if not rows:
        raise FileNotFoundError(f"{folder}: no {name}.train/valid/test.inter files")
    frame = pd.concat(rows, ignore_index=True)
    sequences = (frame["item_id_list"].str.strip() + " " + frame["item_id"].str.strip()).str.strip()
    frame = frame.assign(sequence=sequences, length=sequences.str.count(" ") + 1)
    frame = frame.sort_values(["length", "rank"], ascending=[False, True], kind="stable")
    longest = frame.drop_duplicates("user_id", keep="first")
    longest = longest.assign(order=pd.to_numeric(longest["user_id"], errors="coerce")).sort_values(
        "order", kind="stable"
    )

    item_names = _index_map(folder / f"{name}.item2index", drops, on_bad)
    user_names = _index_map(folder / f"{name}.user2index", drops, on_bad)
    tokens = longest["sequence"].str.split()
    lengths = tokens.str.len().to_numpy(dtype=np.int64)
    item_codes = tokens.explode().to_numpy().astype(str)
    users = np.repeat(longest["user_id"].to_numpy().astype(str), lengths)
    positions = np.arange(len(item_codes)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    interactions = pd.DataFrame(
        {
            "user": pd.Series(users).map(user_names).fillna(pd.Series(users)).astype(str).to_numpy(),
            "item": pd.Series(item_codes).map(item_names).fillna("#" + pd.Series(item_codes)).astype(str).to_numpy(),
            "timestamp": positions.astype("float64"),
        }
    )
    text_path = require_file(folder / f"{name}.text", "UniSRec item text file")
    texts = read_atomic(text_path, drops, on_bad)
    require_columns(texts, ("item_id", "text"), text_path)
    return RawDataset(interactions, _split_text(texts), drops=drops, source=str(folder), format="unisrec")


def _index_map(path: Path, drops: list[Drop], on_bad: OnBad) -> pd.Series:
    """`raw_id<TAB>index` file -> Series index(str) -> raw id."""
    frame = read_delimited(
        require_file(path, "UniSRec id map"), "\t", drops, on_bad, column_names=["raw", "index"], quote=False
    )
    return pd.Series(frame["raw"].to_numpy(), index=frame["index"].str.strip().to_numpy())


def _split_text(texts: pd.DataFrame) -> pd.DataFrame:
    """ "title. categories. brand." -> three fields; any other shape stays whole in the title."""
    text = texts["text"].fillna("").str.strip()
    parts = text.str.replace(r"\.+$", "", regex=True).str.rsplit(". ", n=2)
    shaped = (parts.str.len() == 3).to_numpy()
    items = pd.DataFrame(
        {"item": texts["item_id"].astype(str), "title": text, "description": "", "brand": "", "categories": ""}
    )
    if shaped.any():
        items.loc[shaped, "title"] = parts[shaped].str[0]
        items.loc[shaped, "categories"] = parts[shaped].str[1]
        items.loc[shaped, "brand"] = parts[shaped].str[2]
    return items
