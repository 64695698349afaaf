"""Iterative k-core filtering of a user-item interaction graph, vectorised with bincount."""

from __future__ import annotations

import numpy as np


def kcore_mask(users: np.ndarray, items: np.ndarray, user_min: int, item_min: int) -> np.ndarray:
    """Boolean mask of the interactions in the maximal subgraph where every user has >= `user_min` and every item
    >= `item_min` interactions (0 disables a side). Peels low-degree users and items until nothing changes.

    `users` and `items` are non-negative integer codes; each (user, item) pair should appear once.
    """
    keep = np.ones(len(users), dtype=bool)
    num_users = int(users.max()) + 1 if len(users) else 0
    num_items = int(items.max()) + 1 if len(items) else 0
    while True:
        user_counts = np.bincount(users[keep], minlength=num_users)
        item_counts = np.bincount(items[keep], minlength=num_items)
        weak = keep & ((user_counts[users] < user_min) | (item_counts[items] < item_min))
        if not weak.any():
            return keep
        keep &= ~weak
