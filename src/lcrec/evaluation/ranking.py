"""What every method shares between its scores and the metrics: user selection and history exclusion."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .metrics import top_k_from_scores


def exclude_seen(ranked: Sequence[int], history: Sequence[int]) -> list[int]:
    """`ranked` without the items in `history`, order kept: the one exclusion rule every method uses."""
    seen = set(int(item) for item in history)
    return [int(item) for item in ranked if int(item) not in seen]


def finalize_ranking(ranked: Sequence[int], history: Sequence[int], k: int, exclude_history: bool) -> list[int]:
    """The first `k` items a method returns, after the (optional) exclusion of the user's history."""
    ranked = exclude_seen(ranked, history) if exclude_history else [int(item) for item in ranked]
    return ranked[:k]


def select_rows(num_rows: int, max_users: int | None, seed: int = 0) -> list[int]:
    """Row positions of the evaluated users: all of them, or a seeded sample of `max_users`, in row order.

    Every method in a comparison calls this with the same arguments, so they see the same users.
    """
    if max_users is None or max_users >= num_rows:
        return list(range(num_rows))
    if max_users < 1:
        raise ValueError(f"max_users must be >= 1, got {max_users}")
    rng = np.random.default_rng(seed)
    return sorted(int(row) for row in rng.choice(num_rows, size=max_users, replace=False))


def rank_by_scores(
    score: Callable[[Sequence[Sequence[int]]], np.ndarray],
    histories: Sequence[Sequence[int]],
    k: int,
    exclude_history: bool,
    batch_size: int = 256,
) -> list[list[int]]:
    """Top-`k` item ids per user from a full-catalogue scorer, with the shared history exclusion.

    When excluding, each user's list is cut at k + (distinct history items) before the exclusion, which
    equals ranking with the history masked out.
    """
    ranked = []
    for start in range(0, len(histories), batch_size):
        batch = histories[start : start + batch_size]
        scores = np.asarray(score(batch))
        depth = k + (max(len(set(h)) for h in batch) if exclude_history else 0)
        top = top_k_from_scores(scores, depth)
        ranked.extend(finalize_ranking(row.tolist(), history, k, exclude_history) for row, history in zip(top, batch))
    return ranked
