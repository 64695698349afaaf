"""Ranking metrics with one relevant item per user: HR@K and NDCG@K over ranked item lists."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

# The cut-offs reported in metrics.json (ARCHITECTURE.md), in the order they are written.
METRIC_NAMES = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10")


def max_cutoff(names: Iterable[str] = METRIC_NAMES) -> int:
    """The largest K among metric names like `HR@10`: how many items each ranked list must hold."""
    return max(int(name.split("@")[1]) for name in names)


def rank_of(ranked: Sequence[int], target: int) -> int | None:
    """0-based position of `target` in `ranked` (its first occurrence), or None when absent.

    Position is the tie-breaker: items a method scores equally count in the order it listed them.
    """
    for position, item in enumerate(ranked):
        if item == target:
            return position
    return None


def hit_rate_at_k(ranked: Sequence[int], target: int, k: int) -> float:
    """1.0 when the target is among the first `k` items (a list shorter than `k` is simply shorter)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rank = rank_of(ranked[:k], target)
    return 0.0 if rank is None else 1.0


def ndcg_at_k(ranked: Sequence[int], target: int, k: int) -> float:
    """1 / log2(rank + 2) when the target is at 0-based `rank` < k, else 0 (ideal DCG is 1 with one relevant item)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rank = rank_of(ranked[:k], target)
    return 0.0 if rank is None else 1.0 / math.log2(rank + 2)


def user_metrics(ranked: Sequence[int], target: int, names: Iterable[str] = METRIC_NAMES) -> dict[str, float]:
    """Every metric in `names` (e.g. `HR@10`, `NDCG@5`) for one user's ranked list."""
    out = {}
    for name in names:
        kind, _, k = name.partition("@")
        if kind == "HR":
            out[name] = hit_rate_at_k(ranked, target, int(k))
        elif kind == "NDCG":
            out[name] = ndcg_at_k(ranked, target, int(k))
        else:
            raise ValueError(f"unknown metric {name!r}: expected HR@K or NDCG@K")
    return out


def mean_metrics(
    ranked_lists: Sequence[Sequence[int]], targets: Sequence[int], names: Iterable[str] = METRIC_NAMES
) -> dict[str, float]:
    """Means over users of every metric in `names`; one ranked list per target, nobody dropped."""
    if len(ranked_lists) != len(targets):
        raise ValueError(f"{len(ranked_lists)} ranked lists for {len(targets)} targets")
    if not targets:
        raise ValueError("no users to evaluate")
    names = tuple(names)
    totals = dict.fromkeys(names, 0.0)
    for ranked, target in zip(ranked_lists, targets):
        for name, value in user_metrics(ranked, target, names).items():
            totals[name] += value
    return {name: totals[name] / len(targets) for name in names}


def top_k_from_scores(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest scores per row, best first; equal scores rank the lower index first.

    `scores` is (num_users, num_items) or (num_items,); -inf marks items that must not be ranked.
    """
    scores = np.asarray(scores)
    squeeze = scores.ndim == 1
    scores = np.atleast_2d(scores)
    k = min(k, scores.shape[1])
    # A stable sort on the negated scores keeps index order among ties.
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order[0] if squeeze else order
