"""The in-memory form every reader returns: interactions, items, optional user texts, and counted drops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

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
        return {"stage": self.stage, "reason": self.reason, "interactions": self.interactions, "items": self.items, "users": self.users}


@dataclass
class RawDataset:
    """What a reader returns, before cleaning, filtering and splitting.

    - `interactions`: columns `user` (str), `item` (str) and optionally `timestamp` (float64); row order is
      the file order, which breaks ties between equal timestamps (and is the only order when there are none).
    - `items`: `item` (str) plus the text columns `title`, `description`, `brand`, `categories` (str, "" when missing).
    - `users`: optional per-user texts: `user` (str), `preference` (str), `intention` (str).
    - `index`: optional released semantic index, raw item id -> list of index tokens (LC-Rec `D.index.json`).
    - `drops`: losses the reader already counted (malformed lines it skipped, ...).
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    index: dict[str, list[str]] | None = None
    drops: list[Drop] = field(default_factory=list)
    source: str = ""
    format: str = ""

    def __post_init__(self) -> None:
        for column in ("user", "item"):
            if column not in self.interactions.columns:
                raise ValueError(f"{self.source}: interactions have no '{column}' column")
        if "item" not in self.items.columns:
            raise ValueError(f"{self.source}: items have no 'item' column")
        for column in TEXT_FIELDS:
            if column not in self.items.columns:
                self.items[column] = ""
        self.items = self.items[["item", *TEXT_FIELDS]]
