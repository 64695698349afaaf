"""`ItemIndex`: the catalogue's semantic IDs, item id <-> code tuple <-> index tokens."""

from __future__ import annotations

import hashlib
import os
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..io_utils import read_json, write_json

INDEX_FORMAT = "lcrec-item-index"
INDEX_FILENAME = "index.json"
# Version 2 adds `fingerprint` and the optional `raw_ids`; version 1 files still load.
INDEX_VERSION = 2
FINGERPRINT_PREFIX = "sha256:"
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
    for position, (letter, code) in enumerate(parts):
        if letter != LEVEL_LETTERS[position]:
            raise ValueError(
                f"index {text!r}: token {position + 1} should be level {LEVEL_LETTERS[position]!r}, got {letter!r}"
            )
        if code != str(int(code)):
            raise ValueError(
                f"index {text!r}: code {code!r} has a leading zero (tokens are written <a_7>, not <a_07>)"
            )
    return tuple(int(code) for _, code in parts)


def _integer_code(value: object, where: str) -> int:
    """A JSON code must be a plain integer: 55.7 or true would otherwise be truncated to another item's code."""
    if type(value) is not int:
        raise ValueError(f"{where}: code {value!r} is not an integer")
    return value


class ItemIndex:
    """Maps each item id to a tuple of codes, one per level, and to the matching index tokens.

    Codes are stored as an (num_items, levels) int array aligned with `item_ids`. Construction refuses what would
    make items unreachable or misnamed: non-integer codes, codes outside their codebook, repeated item ids and two
    items sharing a code tuple (a released index with shared codes is resolved by `load_lcrec_index`). `raw_ids`
    (optional) are the items' ids in the source data: they record which dataset the index was built for.
    `fingerprint` identifies the exact mapping (codebook sizes, item ids, codes).
    """

    def __init__(
        self,
        item_ids: Sequence[int],
        codes: np.ndarray | Sequence[Sequence[int]],
        codebook_sizes: Sequence[int],
        raw_ids: Sequence[str] | None = None,
    ):
        codes = np.asarray(codes)
        if codes.size and codes.dtype.kind not in "iu":
            raise ValueError(f"codes must be integers, got an array of {codes.dtype}")
        codes = codes.astype(np.int64)
        if any(isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)) for item in item_ids):
            bad = next(
                item
                for item in item_ids
                if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer))
            )
            raise ValueError(f"item id {bad!r} is not an integer")
        item_ids = [int(item) for item in item_ids]
        if codes.ndim != 2 or codes.shape[0] != len(item_ids):
            raise ValueError(f"codes must have shape (num_items={len(item_ids)}, levels), got {codes.shape}")
        if codes.shape[1] != len(codebook_sizes):
            raise ValueError(f"codes have {codes.shape[1]} levels but codebook_sizes has {len(codebook_sizes)}")
        if len(codebook_sizes) > len(LEVEL_LETTERS):
            raise ValueError(f"at most {len(LEVEL_LETTERS)} levels are supported")
        if any(isinstance(size, bool) or int(size) != size or size < 1 for size in codebook_sizes):
            raise ValueError(f"codebook sizes must be positive integers, got {list(codebook_sizes)}")
        if len(set(item_ids)) != len(item_ids):
            seen: set[int] = set()
            repeated = next(item for item in item_ids if item in seen or seen.add(item))
            raise ValueError(f"item_ids contain duplicates, e.g. item {repeated}")
        sizes = np.asarray(codebook_sizes, dtype=np.int64)
        bad = np.argwhere((codes < 0) | (codes >= sizes))
        if len(bad):
            row, level = bad[0]
            raise ValueError(
                f"item {item_ids[row]}: code {codes[row, level]} at level {level} is outside [0, {sizes[level]})"
            )
        if raw_ids is not None:
            raw_ids = [str(raw) for raw in raw_ids]
            if len(raw_ids) != len(item_ids):
                raise ValueError(f"raw_ids has {len(raw_ids)} entries for {len(item_ids)} items")
        self.item_ids: list[int] = item_ids
        self.codes: np.ndarray = codes
        self.codebook_sizes: list[int] = [int(size) for size in codebook_sizes]
        self.raw_ids: list[str] | None = raw_ids
        self._row = {item: row for row, item in enumerate(item_ids)}
        self._by_codes: dict[tuple[int, ...], int] = {}
        for item, row in zip(item_ids, codes.tolist()):
            key = tuple(row)
            if key in self._by_codes:
                tokens = "".join(level_token(level, code) for level, code in enumerate(key))
                raise ValueError(
                    f"items {self._by_codes[key]} and {item} share the index {tokens}: one of them could never be "
                    "recommended (lcrec.indexing.load_lcrec_index resolves the shared indices of a released index)"
                )
            self._by_codes[key] = item
        self._fingerprint: str | None = None

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

    @property
    def fingerprint(self) -> str:
        """`"sha256:<hex>"` over the codebook sizes and every (item id, codes) row in item-id order.

        Equal fingerprints mean the same items with the same codes, whatever the row order; recorded in model
        configs and task mixes so that an edited or foreign index is refused.
        """
        if self._fingerprint is None:
            order = np.argsort(np.asarray(self.item_ids, dtype=np.int64), kind="stable")
            digest = hashlib.sha256(f"{INDEX_FORMAT}\0levels={self.levels}\0".encode())
            digest.update(np.asarray(self.codebook_sizes, dtype="<i8").tobytes())
            digest.update(np.asarray(self.item_ids, dtype="<i8")[order].tobytes())
            digest.update(np.ascontiguousarray(self.codes[order], dtype="<i8").tobytes())
            self._fingerprint = FINGERPRINT_PREFIX + digest.hexdigest()
        return self._fingerprint

    def raw_id_of(self, item_id: int) -> str | None:
        """The item's id in the source data, when the index records it."""
        return None if self.raw_ids is None else self.raw_ids[self._row_of(item_id)]

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
        """The item with this code tuple, or None."""
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

    def with_items(
        self, item_ids: Sequence[int], codes: np.ndarray, raw_ids: Sequence[str] | None = None
    ) -> ItemIndex:
        """A new index with extra items appended; existing items keep their codes.

        Raw ids are kept when both the index and the new items have them.
        """
        merged = (
            self.raw_ids + [str(raw) for raw in raw_ids] if self.raw_ids is not None and raw_ids is not None else None
        )
        new_codes = np.asarray(codes)
        return ItemIndex(
            self.item_ids + [int(i) for i in item_ids],
            np.concatenate([self.codes, new_codes.reshape(-1, self.levels)]),
            self.codebook_sizes,
            merged,
        )

    def to_dict(self) -> dict:
        data = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "levels": self.levels,
            "codebook_sizes": self.codebook_sizes,
            "fingerprint": self.fingerprint,
            "items": {str(item): row for item, row in zip(self.item_ids, self.codes.tolist())},
        }
        if self.raw_ids is not None:
            data["raw_ids"] = {str(item): raw for item, raw in zip(self.item_ids, self.raw_ids)}
        return data

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "index", expected_num_items: int | None = None) -> ItemIndex:
        """Validate and build an index from `to_dict`'s layout; errors name `source` and the item.

        Refuses non-integer codes, a wrong number of codes, shared code tuples, a fingerprint that does not match
        the codes (an index edited by hand), and, with `expected_num_items`, another number of items.
        """
        if not isinstance(data, Mapping) or data.get("format") != INDEX_FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise ValueError(
                f"{source}: not an lcrec item index (format={found!r}); use lcrec.indexing.load_lcrec_index for "
                "LC-Rec's D.index.json"
            )
        for key in ("levels", "codebook_sizes", "items"):
            if key not in data:
                raise ValueError(f"{source}: the index has no {key!r}")
        levels, sizes, items = data["levels"], data["codebook_sizes"], data["items"]
        if type(levels) is not int or not isinstance(sizes, list) or len(sizes) != levels:
            raise ValueError(f"{source}: levels ({levels!r}) and codebook_sizes ({sizes!r}) do not agree")
        for size in sizes:
            _integer_code(size, f"{source}: codebook_sizes")
        if not isinstance(items, Mapping):
            raise ValueError(f"{source}: 'items' must be an object {{item_id: [codes]}}")
        item_ids, rows = [], []
        for key, row in items.items():
            if not re.fullmatch(r"-?\d+", str(key)):
                raise ValueError(f"{source}: item id {key!r} is not an integer")
            if not isinstance(row, list) or len(row) != levels:
                raise ValueError(f"{source}: item {key}: expected a list of {levels} codes, got {row!r}")
            rows.append([_integer_code(code, f"{source}: item {key}") for code in row])
            item_ids.append(int(key))
        raw_ids = data.get("raw_ids")
        if raw_ids is not None:
            if not isinstance(raw_ids, Mapping) or set(raw_ids) != set(items):
                raise ValueError(f"{source}: 'raw_ids' must give a raw id for every item and no other")
            raw_ids = [str(raw_ids[key]) for key in items]
        try:
            index = cls(item_ids, np.asarray(rows, dtype=np.int64).reshape(len(item_ids), levels), sizes, raw_ids)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None
        recorded = data.get("fingerprint")
        if recorded is not None and recorded != index.fingerprint:
            raise ValueError(
                f"{source}: the codes do not match the index's recorded fingerprint {recorded} (computed "
                f"{index.fingerprint}); "
                "the file was edited after it was written: rebuild it with `lcrec index`"
            )
        if expected_num_items is not None and index.num_items != expected_num_items:
            raise ValueError(f"{source}: the index has {index.num_items} items, expected {expected_num_items}")
        return index

    def save(self, path: str | os.PathLike) -> None:
        """Write our JSON layout atomically (`index.json`)."""
        write_json(path, self.to_dict(), indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike, expected_num_items: int | None = None) -> ItemIndex:
        """Read and validate an `index.json` (see `from_dict`)."""
        return cls.from_dict(read_json(path, expect=dict), source=str(path), expected_num_items=expected_num_items)

    @classmethod
    def from_path(cls, path: str | os.PathLike, expected_num_items: int | None = None) -> ItemIndex:
        """Load an index folder (`lcrec index --out`, holding index.json) or an index.json file."""
        path = Path(path)
        path = path / INDEX_FILENAME if path.is_dir() else path
        if not path.exists():
            raise FileNotFoundError(f"no item index at {path} (run `lcrec index` first)")
        return cls.load(path, expected_num_items)

    def to_lcrec_json(self, path: str | os.PathLike) -> None:
        """Export LC-Rec's released layout: {item: ["<a_x>", "<b_y>", ...]}."""
        write_json(path, {str(item): self.token_list(item) for item in self.item_ids}, indent=None)

    def __repr__(self) -> str:
        return f"ItemIndex(num_items={self.num_items}, codebook_sizes={self.codebook_sizes})"

    def _row_of(self, item_id: int) -> int:
        try:
            return self._row[int(item_id)]
        except (KeyError, ValueError, TypeError):
            raise KeyError(f"item {item_id!r} is not in the index") from None
