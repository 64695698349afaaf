"""The in-memory form every reader returns: interactions, items, optional user texts, and counted drops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

OnBad = Literal["error", "drop"]

TEXT_FIELDS = ("title", "description", "brand", "categories")


@dataclass
class Drop:
    """One counted loss: how many interactions, items and users a reason removed at a stage."""

    stage: str
    reason: str
    interactions: int = 0
    items: int = 0
    users: int = 0

    def to_dict(self) -> dict:
        return {
            "stage": self.stage,
            "reason": self.reason,
            "interactions": self.interactions,
            "items": self.items,
            "users": self.users,
        }


@dataclass
class RawDataset:
    """What a reader returns, before cleaning, filtering and splitting.

    - `interactions`: columns `user` (str), `item` (str) and optionally `timestamp` (float64); row order is
      the file order, which breaks ties between equal timestamps (and is the only order when there are none).
    - `items`: `item` (str) plus the text columns `title`, `description`, `brand`, `categories` (str, "" when missing).
    - `users`: optional per-user texts: `user` (str), `preference` (str), `intention` (str).
    - `index`: optional released semantic index, raw item id -> list of index tokens (LC-Rec `D.index.json`).
    - `drops`: losses the reader already counted (malformed lines it skipped, ...).
    - `item_text`: False for a source that ships no item texts (an LC-Rec release with only `D.inter.json` and
      `D.index.json`): `items` then lists the interacted items with empty texts and the protocol keeps items by
      their released index instead of their text.

    Ids are compared after stripping surrounding spaces, on both sides alike (" 12" in the interactions is item
    "12" of the item file); interactions whose user or item id is empty are dropped and counted.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    index: dict[str, list[str]] | None = None
    drops: list[Drop] = field(default_factory=list)
    source: str = ""
    format: str = ""
    item_text: bool = True

    def __post_init__(self) -> None:
        for column in ("user", "item"):
            if column not in self.interactions.columns:
                raise ValueError(f"{self.source}: interactions have no '{column}' column")
        if "item" not in self.items.columns:
            raise ValueError(f"{self.source}: items have no 'item' column")
        self.interactions = self.interactions.assign(
            user=strip_ids(self.interactions["user"]), item=strip_ids(self.interactions["item"])
        )
        empty = ((self.interactions["user"] == "") | (self.interactions["item"] == "")).to_numpy()
        if empty.any():
            self.drops.append(Drop("read", "empty user or item id", interactions=int(empty.sum())))
            self.interactions = self.interactions[~empty].reset_index(drop=True)
        self.items = self.items.assign(item=strip_ids(self.items["item"]))
        for column in TEXT_FIELDS:
            if column not in self.items.columns:
                self.items[column] = ""
        self.items = self.items[["item", *TEXT_FIELDS]]
        if self.users is not None and "user" in self.users.columns:
            self.users = self.users.assign(user=strip_ids(self.users["user"]))
        if self.index is not None:
            self.index = {str(key).strip(): value for key, value in self.index.items()}


def strip_ids(values: pd.Series) -> pd.Series:
    """Ids as strings without surrounding whitespace (vectorised; missing ids become "")."""
    array = values.array
    if hasattr(array, "__arrow_array__"):
        arrow = array.__arrow_array__()
    else:
        cells = values.to_numpy(dtype=object)
        try:
            arrow = pa.array(cells, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: one string per cell
            arrow = pa.array([None if pd.isna(cell) else str(cell) for cell in cells], pa.string())
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    if not pa.types.is_string(arrow.type) and not pa.types.is_large_string(arrow.type):
        arrow = pc.cast(arrow, pa.string())
    stripped = pc.fill_null(pc.utf8_trim_whitespace(arrow), "")
    return pd.Series(stripped.to_pandas().array, index=values.index)
