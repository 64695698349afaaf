"""Most-popular baseline: every user gets the items most often interacted with in the training split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class MostPopular:
    """Scores each item by its number of training interactions; ties rank the lower item id first."""

    def __init__(self, counts: np.ndarray):
        self.counts = np.asarray(counts, dtype=np.int64)

    @property
    def num_items(self) -> int:
        return len(self.counts)

    @classmethod
    def fit(cls, sequences: Sequence[Sequence[int]], num_items: int) -> MostPopular:
        """Count every interaction in the training sequences (item ids in [0, num_items))."""
        counts = np.zeros(num_items, dtype=np.int64)
        for sequence in sequences:
            items = np.asarray(sequence, dtype=np.int64)
            if len(items) and (items.min() < 0 or items.max() >= num_items):
                raise ValueError(f"training sequence has an item outside [0, {num_items}): {sequence}")
            np.add.at(counts, items, 1)
        return cls(counts)

    def score(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """(len(histories), num_items) scores; the same row for every user."""
        return np.broadcast_to(self.counts.astype(np.float32), (len(histories), self.num_items))
