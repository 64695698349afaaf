"""`SemanticIdTrie`: an exact prefix trie over the catalogue's code tuples, stored as sorted integer keys.

Each prefix of length t is one mixed-radix integer (codes as digits, codebook sizes as bases). Level t keeps
the sorted unique keys of all length-t prefixes; the children of a prefix are then one contiguous run of the
level-(t+1) keys, so a batch of prefixes resolves to its allowed next codes with `searchsorted` and
`repeat_interleave`: no Python loop over beams, O(N x L) memory. A prefix is also a node: its position in its
level's keys. The tree-attention decoder walks nodes directly (`children`: one gather per level, rows padded to
the level's widest node) and maps complete tuples back to item ids (`items_of`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class SemanticIdTrie:
    """Prefix trie over code tuples (num_items x levels); answers "which codes may follow this prefix" in batch."""

    def __init__(
        self,
        codes: np.ndarray | Sequence[Sequence[int]],
        codebook_sizes: Sequence[int],
        dense_budget: int = 1 << 25,
        item_ids: Sequence[int] | None = None,
    ):
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[0] == 0:
            raise ValueError(f"a trie needs a non-empty (num_items, levels) code array, got shape {codes.shape}")
        if codes.shape[1] != len(codebook_sizes):
            raise ValueError(f"codes have {codes.shape[1]} levels but codebook_sizes has {len(codebook_sizes)}")
        sizes = np.asarray(codebook_sizes, dtype=np.int64)
        if np.any(codes < 0) or np.any(codes >= sizes):
            raise ValueError("codes fall outside their codebooks")
        if float(np.prod(sizes.astype(np.float64))) >= 2**62:
            raise ValueError(f"codebook sizes {list(codebook_sizes)} are too large for 64-bit prefix keys")
        self.codebook_sizes = [int(size) for size in codebook_sizes]
        self.levels = len(self.codebook_sizes)
        # keys[t]: sorted unique keys of the length-t prefixes (keys[0] is the root: [0]).
        keys = [np.zeros(1, dtype=np.int64)]
        running = np.zeros(codes.shape[0], dtype=np.int64)
        for level, size in enumerate(self.codebook_sizes):
            running = running * size + codes[:, level]
            keys.append(np.unique(running))
        if item_ids is not None and len(item_ids) != codes.shape[0]:
            raise ValueError(f"{len(item_ids)} item ids for {codes.shape[0]} code tuples")
        # Item of each complete tuple (leaf node), the first in catalogue order where items share one (as ItemIndex).
        _, first = np.unique(running, return_index=True)
        items = np.asarray(item_ids if item_ids is not None else np.arange(codes.shape[0]), dtype=np.int64)
        self._leaf_items = torch.from_numpy(items[first])
        self._keys = [torch.from_numpy(k) for k in keys]
        # Children of prefix i at level t: keys[t+1][start[t][i]:end[t][i]]; their last digit is the next code.
        self._start, self._end, self._child_codes = [], [], []
        for level, size in enumerate(self.codebook_sizes):
            parent, child = keys[level], keys[level + 1]
            self._start.append(torch.from_numpy(np.searchsorted(child, parent * size, side="left")))
            self._end.append(torch.from_numpy(np.searchsorted(child, (parent + 1) * size, side="left")))
            self._child_codes.append(torch.from_numpy(child % size))
        # The widest node of each level: `children` pads every row to it.
        self._widths = [int((end - start).max()) for start, end in zip(self._start, self._end)]
        # Levels with few prefixes also get a dense (prefixes x codes) bool table (at most `dense_budget` bytes):
        # a batch's masks are then one gather. Deep levels (many prefixes, few children each) stay sparse.
        self._dense: list[torch.Tensor | None] = []
        for level, size in enumerate(self.codebook_sizes):
            parents = len(keys[level])
            if parents * size > dense_budget:
                self._dense.append(None)
                continue
            table = torch.zeros((parents, size), dtype=torch.bool)
            counts = self._end[level] - self._start[level]
            table[torch.repeat_interleave(torch.arange(parents), counts), self._child_codes[level]] = True
            self._dense.append(table)

    @classmethod
    def from_index(cls, item_index) -> SemanticIdTrie:
        """The trie of every code tuple in an `ItemIndex`, leaves mapped to its item ids."""
        return cls(item_index.codes, item_index.codebook_sizes, item_ids=item_index.item_ids)

    @property
    def num_sequences(self) -> int:
        """Distinct complete code tuples (items that share a tuple count once)."""
        return len(self._keys[-1])

    def num_children(self, level: int) -> torch.Tensor:
        """Children per prefix of length `level` (sorted by key)."""
        return self._end[level] - self._start[level]

    def width(self, level: int) -> int:
        """Most children any prefix of length `level` has (the row width of `children`)."""
        return self._widths[level]

    def children(self, level: int, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Children of prefix nodes of length `level`, as rows padded to `width(level)`.

        Returns (child nodes, their codes, valid), each of shape `(*nodes.shape, width)`: one gather, no search.
        Padding entries have valid=False (their node and code are placeholders that index safely).
        """
        start = self._start[level][nodes]
        count = self._end[level][nodes] - start
        offsets = torch.arange(self._widths[level], device=nodes.device)
        valid = offsets < count.unsqueeze(-1)
        child = torch.where(valid, start.unsqueeze(-1) + offsets, torch.zeros_like(offsets))
        return child, self._child_codes[level][child], valid

    def items_of(self, leaves: torch.Tensor) -> torch.Tensor:
        """Item ids of complete-tuple nodes (positions in the last level's keys)."""
        return self._leaf_items[leaves]

    def item_ids(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(item id, found) for each row of a (rows, levels) code tensor; the id is a placeholder where not found."""
        node, found = self._leaves(codes)
        return self._leaf_items[node], found

    def _leaves(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(leaf node, found) for each row of a code tensor; rows of another length are never found."""
        if codes.shape[1] != self.levels:
            zeros = torch.zeros(codes.shape[0], dtype=torch.int64, device=codes.device)
            return zeros, zeros.bool()
        keys = self._keys[self.levels]
        wanted = self.prefix_keys(codes)
        node = torch.searchsorted(keys, wanted).clamp(max=len(keys) - 1)
        return node, (keys[node] == wanted) & (wanted >= 0)

    def to(self, device: torch.device | str) -> SemanticIdTrie:
        """Move the lookup tables to `device` (in place) and return self."""
        for tables in (self._keys, self._start, self._end, self._child_codes, self._dense):
            tables[:] = [t.to(device) if t is not None else None for t in tables]
        self._leaf_items = self._leaf_items.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return self._keys[0].device

    @property
    def nbytes(self) -> int:
        tensors = (
            self._keys
            + self._start
            + self._end
            + self._child_codes
            + [t for t in self._dense if t is not None]
            + [self._leaf_items]
        )
        return sum(t.numel() * t.element_size() for t in tensors)

    def prefix_keys(self, prefixes: torch.Tensor) -> torch.Tensor:
        """Mixed-radix keys of a (rows, t) code tensor; -1 marks rows with an out-of-range code."""
        rows, length = prefixes.shape
        key = torch.zeros(rows, dtype=torch.int64, device=prefixes.device)
        bad = torch.zeros(rows, dtype=torch.bool, device=prefixes.device)
        for level in range(length):
            code = prefixes[:, level].to(torch.int64)
            bad |= (code < 0) | (code >= self.codebook_sizes[level])
            key = key * self.codebook_sizes[level] + code.clamp(min=0)
        return key.masked_fill(bad, -1)

    def lookup(self, prefixes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(node index at level t, valid) for each row of a (rows, t) code tensor, t < levels."""
        length = prefixes.shape[1]
        if length >= self.levels:
            raise ValueError(f"prefixes of length {length} have no children in a {self.levels}-level trie")
        keys = self._keys[length]
        wanted = self.prefix_keys(prefixes)
        node = torch.searchsorted(keys, wanted).clamp(max=len(keys) - 1)
        valid = (keys[node] == wanted) & (wanted >= 0)
        return node, valid

    def allowed_next(self, prefixes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Allowed next codes for each row of a (rows, t) code tensor, as flat (row, code) pairs, plus a valid mask.

        Rows whose prefix is not in the trie get no pairs and `valid=False`.
        """
        length = prefixes.shape[1]
        node, valid = self.lookup(prefixes)
        start = self._start[length][node]
        counts = torch.where(valid, self._end[length][node] - start, torch.zeros_like(start))
        rows = torch.repeat_interleave(torch.arange(len(node), device=node.device), counts)
        run_start = torch.repeat_interleave(start - (torch.cumsum(counts, 0) - counts), counts)
        positions = torch.arange(len(rows), device=node.device) + run_start
        return rows, self._child_codes[length][positions], valid

    def allowed_mask(self, prefixes: torch.Tensor) -> torch.Tensor:
        """(rows, codebook size of level t) bool mask of the allowed next codes of a (rows, t) code tensor.

        A row whose prefix is not in the trie is all False.
        """
        length = prefixes.shape[1]
        dense = self._dense[length]
        if dense is not None:
            node, valid = self.lookup(prefixes)
            return dense[node] & valid.unsqueeze(1)
        rows, codes, _ = self.allowed_next(prefixes)
        mask = torch.zeros((prefixes.shape[0], self.codebook_sizes[length]), dtype=torch.bool, device=prefixes.device)
        mask[rows, codes] = True
        return mask

    def contains(self, codes: torch.Tensor) -> torch.Tensor:
        """Whether each row of a (rows, levels) code tensor is a complete code tuple of the catalogue."""
        return self._leaves(codes)[1]

    def __repr__(self) -> str:
        return f"SemanticIdTrie(sequences={self.num_sequences}, codebook_sizes={self.codebook_sizes})"
