"""`ItemIndex`: the catalogue's semantic IDs, item id <-> code tuple <-> index tokens."""

from __future__ import annotations

import json
import os
import re
import string
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..io_utils import write_json

INDEX_FORMAT = "lcrec-item-index"
INDEX_FILENAME = "index.json"
INDEX_VERSION = 1
LEVEL_LETTERS = string.ascii_lowercase
_TOKEN_RE = re.compile(r"<([a-z])_(\d+)>")


def level_token(level: int, code: int) -> str:
    """The token for `code` at `level` (0-based): level 0 code 12 -> `<a_12>`."""
    return f"<{LEVEL_LETTERS[level]}_{code}>"


def all_index_tokens(codebook_sizes: Sequence[int]) -> list[str]:
    """Every level x code token, level by level; a tokenizer adds all of them so new items never need a resize."""
    return [level_token(level, code) for level, size in enumerate(codebook_sizes) for code in range(size)]


def parse_index_tokens(text: str) -> tuple[int, ...]:
    """`"<a_1><b_2><c_3>"` -> (1, 2, 3); raises ValueError on anything that is not a well-formed index."""
    text = text.strip()
    parts = _TOKEN_RE.findall(text)
    if not parts or "".join(f"<{letter}_{code}>" for letter, code in parts) != text:
        raise ValueError(f"not a well-formed item index: {text!r}")
    for position, (letter, _) in enumerate(parts):
        if letter != LEVEL_LETTERS[position]:
            raise ValueError(f"index {text!r}: token {position + 1} should be level {LEVEL_LETTERS[position]!r}, got {letter!r}")
    return tuple(int(code) for _, code in parts)


class ItemIndex:
    """Maps each item id to a tuple of codes, one per level, and to the matching index tokens.

    Codes are stored as an (num_items, levels) int array aligned with `item_ids`. Nothing here forbids
    two items sharing a code tuple (imported indices may have collisions); `collisions()` reports them and
    the index builder guarantees there are none.
    """

    def __init__(self, item_ids: Sequence[int], codes: np.ndarray | Sequence[Sequence[int]], codebook_sizes: Sequence[int]):
        codes = np.asarray(codes, dtype=np.int64)
        item_ids = [int(item) for item in item_ids]
        if codes.ndim != 2 or codes.shape[0] != len(item_ids):
            raise ValueError(f"codes must have shape (num_items={len(item_ids)}, levels), got {codes.shape}")
        if codes.shape[1] != len(codebook_sizes):
            raise ValueError(f"codes have {codes.shape[1]} levels but codebook_sizes has {len(codebook_sizes)}")
        if len(codebook_sizes) > len(LEVEL_LETTERS):
            raise ValueError(f"at most {len(LEVEL_LETTERS)} levels are supported")
        if len(set(item_ids)) != len(item_ids):
            raise ValueError("item_ids contain duplicates")
        sizes = np.asarray(codebook_sizes, dtype=np.int64)
        bad = np.argwhere((codes < 0) | (codes >= sizes))
        if len(bad):
            row, level = bad[0]
            raise ValueError(f"item {item_ids[row]}: code {codes[row, level]} at level {level} is outside [0, {sizes[level]})")
        self.item_ids: list[int] = item_ids
        self.codes: np.ndarray = codes
        self.codebook_sizes: list[int] = [int(size) for size in codebook_sizes]
        self._row = {item: row for row, item in enumerate(item_ids)}
        self._by_codes: dict[tuple[int, ...], int] = {}
        for item, row in zip(item_ids, codes.tolist()):
            self._by_codes.setdefault(tuple(row), item)

    @property
    def levels(self) -> int:
        return len(self.codebook_sizes)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return self.num_items

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    def codes_of(self, item_id: int) -> tuple[int, ...]:
        """The code tuple of `item_id`."""
        return tuple(int(code) for code in self.codes[self._row_of(item_id)])

    def token_list(self, item_id: int) -> list[str]:
        """`["<a_1>", "<b_2>", ...]` for `item_id`."""
        return [level_token(level, code) for level, code in enumerate(self.codes_of(item_id))]

    def tokens(self, item_id: int) -> str:
        """`"<a_1><b_2><c_3><d_4>"` for `item_id`."""
        return "".join(self.token_list(item_id))

    def item_for_codes(self, codes: Sequence[int]) -> int | None:
        """The item with this code tuple (the first one where an imported index has collisions), or None."""
        return self._by_codes.get(tuple(int(code) for code in codes))

    def item_for_tokens(self, text: str) -> int:
        """Parse index tokens back to the item id; raises KeyError when no item has that index."""
        codes = parse_index_tokens(text)
        item = self.item_for_codes(codes) if len(codes) == self.levels else None
        if item is None:
            raise KeyError(f"no item has the index {text!r}")
        return item

    def all_tokens(self) -> list[str]:
        """Every level x code token of this index's codebooks."""
        return all_index_tokens(self.codebook_sizes)

    def collisions(self) -> list[list[int]]:
        """Groups (of two or more item ids) that share one code tuple."""
        groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for item, row in zip(self.item_ids, self.codes.tolist()):
            groups[tuple(row)].append(item)
        return [members for members in groups.values() if len(members) > 1]

    def with_items(self, item_ids: Sequence[int], codes: np.ndarray) -> "ItemIndex":
        """A new index with extra items appended; existing items keep their codes."""
        return ItemIndex(self.item_ids + [int(i) for i in item_ids], np.concatenate([self.codes, np.asarray(codes, dtype=np.int64).reshape(-1, self.levels)]), self.codebook_sizes)

    def to_dict(self) -> dict:
        return {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "levels": self.levels,
            "codebook_sizes": self.codebook_sizes,
            "items": {str(item): row for item, row in zip(self.item_ids, self.codes.tolist())},
        }

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "index") -> "ItemIndex":
        if data.get("format") != INDEX_FORMAT:
            raise ValueError(f"{source}: not an lcrec item index (format={data.get('format')!r}); use ItemIndex.from_lcrec_json for LC-Rec's D.index.json")
        items = data["items"]
        item_ids = []
        for key in items:
            try:
                item_ids.append(int(key))
            except ValueError:
                raise ValueError(f"{source}: item id {key!r} is not an integer") from None
        codes = [items[key] for key in items]
        if any(len(row) != data["levels"] for row in codes):
            bad = next(key for key in items if len(items[key]) != data["levels"])
            raise ValueError(f"{source}: item {bad} has {len(items[bad])} codes, expected {data['levels']}")
        return cls(item_ids, np.asarray(codes, dtype=np.int64).reshape(len(item_ids), data["levels"]), data["codebook_sizes"])

    def save(self, path: str | os.PathLike) -> None:
        """Write our JSON layout atomically (`index.json`)."""
        write_json(path, self.to_dict(), indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ItemIndex":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: malformed JSON at line {error.lineno}: {error.msg}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> "ItemIndex":
        """Load an index folder (`lcrec index --out`, holding index.json) or an index.json file."""
        path = Path(path)
        path = path / INDEX_FILENAME if path.is_dir() else path
        if not path.exists():
            raise FileNotFoundError(f"no item index at {path} (run `lcrec index` first)")
        return cls.load(path)

    def to_lcrec_json(self, path: str | os.PathLike) -> None:
        """Export LC-Rec's released layout: {item: ["<a_x>", "<b_y>", ...]}."""
        write_json(path, {str(item): self.token_list(item) for item in self.item_ids}, indent=None)

    @classmethod
    def from_lcrec_json(cls, path: str | os.PathLike, codebook_sizes: Sequence[int] | None = None, known_items: Iterable[int] | None = None) -> "ItemIndex":
        """Import LC-Rec's `D.index.json`. Codebook sizes default to the largest code seen + 1 per level.

        Malformed tokens and (when `known_items` is given) unknown item ids raise an error naming them.
        Collisions are kept as they are: see `collisions()`.
        """
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: malformed JSON at line {error.lineno}: {error.msg}") from None
        if not isinstance(data, dict) or not data:
            raise ValueError(f"{path}: expected a non-empty object {{item: [tokens]}}")
        item_ids, rows = [], []
        for key, tokens in data.items():
            try:
                item = int(key)
            except ValueError:
                raise ValueError(f"{path}: item id {key!r} is not an integer") from None
            if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
                raise ValueError(f"{path}: item {key}: expected a list of token strings, got {tokens!r}")
            try:
                rows.append(parse_index_tokens("".join(tokens)))
            except ValueError as error:
                raise ValueError(f"{path}: item {key}: {error}") from None
            item_ids.append(item)
        lengths = {len(row) for row in rows}
        if len(lengths) != 1:
            raise ValueError(f"{path}: items have different numbers of levels: {sorted(lengths)}")
        if known_items is not None:
            unknown = sorted(set(item_ids) - set(known_items))
            if unknown:
                raise ValueError(f"{path}: {len(unknown)} items are not in the catalogue, e.g. {unknown[:10]}")
        codes = np.asarray(rows, dtype=np.int64)
        sizes = list(codebook_sizes) if codebook_sizes is not None else (codes.max(axis=0) + 1).tolist()
        return cls(item_ids, codes, sizes)

    def __repr__(self) -> str:
        return f"ItemIndex(num_items={self.num_items}, codebook_sizes={self.codebook_sizes})"

    def _row_of(self, item_id: int) -> int:
        try:
            return self._row[int(item_id)]
        except (KeyError, ValueError, TypeError):
            raise KeyError(f"item {item_id!r} is not in the index") from None
