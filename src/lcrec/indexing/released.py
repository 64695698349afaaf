"""Released LC-Rec indices (`D.index.json`, {item: ["<a_1>", "<b_2>", ...]}) as collision-free `ItemIndex`es.

Released indices let several items share one code tuple; only one of them could ever be recommended. Importing
gives them distinct codes the way the index builder's guarantee does (`assignment.make_unique`): in each group the
first item (in file order) keeps its codes and the others move to the nearest free code under the same prefix. With
no item vectors at hand, "nearest" is the lowest free code, which keeps the import deterministic.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..io_utils import read_json
from .assignment import colliding_groups, make_unique
from .item_index import ItemIndex, level_token, parse_index_tokens

logger = logging.getLogger(__name__)


@dataclass
class LCRecIndexImport:
    """The imported index and what the import changed: one record per moved item."""

    index: ItemIndex
    shared_groups: int = 0
    moved: list[dict] = field(default_factory=list)

    def report(self) -> dict:
        """A JSON-ready summary (stats.json of a prepared dataset, logs)."""
        return {"items": self.index.num_items, "shared_code_tuples": self.shared_groups, "moved_items": self.moved}


def import_lcrec_index(
    tokens_by_item: Mapping[str | int, Sequence[str]],
    codebook_sizes: Sequence[int] | None = None,
    raw_ids: Sequence[str] | None = None,
    source: str = "D.index.json",
) -> LCRecIndexImport:
    """Parse {item id: index tokens}, resolve shared code tuples, and return the index with the moves made.

    `codebook_sizes` default to the largest code seen + 1 per level; `raw_ids` (aligned with the mapping's items)
    are recorded in the index. Errors name `source` and the item.
    """
    if not tokens_by_item:
        raise ValueError(f"{source}: the index is empty")
    item_ids, rows = [], []
    for key, tokens in tokens_by_item.items():
        if isinstance(key, bool) or not re.fullmatch(r"-?\d+", str(key)):
            raise ValueError(f"{source}: item id {key!r} is not an integer")
        if not isinstance(tokens, (list, tuple)) or not tokens or not all(isinstance(token, str) for token in tokens):
            raise ValueError(
                f"{source}: item {key}: expected a list of index tokens such as ['<a_1>', '<b_2>'], got {tokens!r}"
            )
        try:
            rows.append(parse_index_tokens("".join(tokens)))
        except ValueError as error:
            raise ValueError(f"{source}: item {key}: {error}") from None
        item_ids.append(int(key))
    lengths = sorted({len(row) for row in rows})
    if len(lengths) != 1:
        raise ValueError(f"{source}: items have different numbers of levels: {lengths}")
    codes = np.asarray(rows, dtype=np.int64)
    sizes = [int(size) for size in codebook_sizes] if codebook_sizes is not None else (codes.max(axis=0) + 1).tolist()
    if len(sizes) != codes.shape[1]:
        raise ValueError(f"{source}: the index has {codes.shape[1]} levels but {len(sizes)} codebook sizes were given")
    outside = np.argwhere(codes >= np.asarray(sizes))
    if len(outside):
        row, level = outside[0]
        raise ValueError(
            f"{source}: item {item_ids[row]}: code {codes[row, level]} at level {level} is outside [0, {sizes[level]})"
        )
    groups = colliding_groups(codes)
    moved: list[dict] = []
    if groups:
        levels = codes.shape[1]
        # Zero vectors: every free code is equally near, so the lowest free one is taken (deterministic).
        residuals = np.zeros((len(codes), levels, 1), dtype=np.float32)
        books = [np.zeros((size, 1), dtype=np.float32) for size in sizes]
        resolved, _ = make_unique(codes, residuals, books, item_ids=item_ids)
        for row in np.flatnonzero((resolved != codes).any(axis=1)):
            record = {"item": item_ids[row]} | ({"raw_id": str(raw_ids[row])} if raw_ids is not None else {})
            moved.append(record | {"from": _tokens(codes[row]), "to": _tokens(resolved[row])})
        logger.warning(
            "%s: %d code tuples were shared by %d items; %d items moved to free codes, e.g. item %s %s -> %s",
            source,
            len(groups),
            sum(len(group) for group in groups),
            len(moved),
            moved[0]["item"],
            moved[0]["from"],
            moved[0]["to"],
        )
        codes = resolved
    return LCRecIndexImport(ItemIndex(item_ids, codes, sizes, raw_ids), len(groups), moved)


def _tokens(row: np.ndarray) -> str:
    return "".join(level_token(level, int(code)) for level, code in enumerate(row))


def load_lcrec_index(
    path: str | os.PathLike, codebook_sizes: Sequence[int] | None = None, known_items: Iterable[int] | None = None
) -> ItemIndex:
    """Import LC-Rec's `D.index.json` ({item: ["<a_1>", ...]}) as a collision-free `ItemIndex`.

    Codebook sizes default to the largest code seen + 1 per level. Malformed tokens and (with `known_items`) ids
    outside the catalogue raise an error naming them. Shared code tuples are resolved and logged (see
    `import_lcrec_index`, which also returns the moves).
    """
    data = read_json(path, expect=dict)
    if known_items is not None:
        known = {int(item) for item in known_items}
        unknown = sorted(int(key) for key in data if re.fullmatch(r"-?\d+", key) and int(key) not in known)
        if unknown:
            raise ValueError(f"{path}: {len(unknown)} items are not in the catalogue, e.g. {unknown[:10]}")
    return import_lcrec_index(data, codebook_sizes=codebook_sizes, source=str(path)).index
