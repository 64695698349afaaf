"""Paired comparison of two methods on the same users: how sure a "0.97x" or "1.02x" is.

Both methods rank every user of one split, so their per-user metrics pair up. A bootstrap over users gives an
interval for the difference of means and for their ratio; the exact McNemar test asks whether the users only one
method hits lean towards either method more than chance would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 10_000
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedComparison:
    """Method A against method B on one metric over the same users (A - B and A / B)."""

    users: int
    mean_a: float
    mean_b: float
    difference: float
    difference_low: float
    difference_high: float
    ratio: float
    ratio_low: float
    ratio_high: float
    confidence: float
    resamples: int


def paired_bootstrap(
    values_a: Sequence[float],
    values_b: Sequence[float],
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> PairedComparison:
    """Percentile intervals of mean(A) - mean(B) and mean(A) / mean(B), resampling users with replacement.

    A resample whose mean(B) is 0 has no ratio and is left out of the ratio's interval (never of the difference's).
    """
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"paired values need two 1-d arrays of one length, got shapes {a.shape} and {b.shape}")
    if not len(a):
        raise ValueError("no users to compare")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    sums_a, sums_b = np.empty(resamples), np.empty(resamples)
    # Chunks keep the (chunk x users) index matrix small on large splits.
    chunk = max(1, 2_000_000 // len(a))
    for start in range(0, resamples, chunk):
        rows = rng.integers(0, len(a), size=(min(chunk, resamples - start), len(a)))
        sums_a[start : start + len(rows)] = a[rows].sum(axis=1)
        sums_b[start : start + len(rows)] = b[rows].sum(axis=1)
    tail = (1 - confidence) / 2 * 100
    differences = (sums_a - sums_b) / len(a)
    low, high = np.percentile(differences, [tail, 100 - tail])
    defined = sums_b > 0
    ratios = sums_a[defined] / sums_b[defined]
    ratio_low, ratio_high = np.percentile(ratios, [tail, 100 - tail]) if len(ratios) else (math.nan, math.nan)
    mean_a, mean_b = float(a.mean()), float(b.mean())
    return PairedComparison(
        users=len(a),
        mean_a=mean_a,
        mean_b=mean_b,
        difference=mean_a - mean_b,
        difference_low=float(low),
        difference_high=float(high),
        ratio=mean_a / mean_b if mean_b > 0 else math.nan,
        ratio_low=float(ratio_low),
        ratio_high=float(ratio_high),
        confidence=confidence,
        resamples=resamples,
    )


def mcnemar_exact(hits_a: Sequence[float], hits_b: Sequence[float]) -> tuple[int, int, float]:
    """(users only A hits, users only B hits, two-sided exact p-value) for paired 0/1 outcomes such as HR@10."""
    a, b = np.asarray(hits_a), np.asarray(hits_b)
    if a.shape != b.shape:
        raise ValueError(f"paired hits need one length, got {a.shape} and {b.shape}")
    if not np.isin(a, (0, 1)).all() or not np.isin(b, (0, 1)).all():
        raise ValueError("McNemar's test needs 0/1 outcomes (hit or miss per user)")
    only_a, only_b = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    discordant = only_a + only_b
    if not discordant:
        return only_a, only_b, 1.0
    # Under the null every discordant user is a fair coin: P(X <= min) doubled, capped at 1.
    smaller = min(only_a, only_b)
    tail = sum(math.comb(discordant, k) for k in range(smaller + 1)) / 2**discordant
    return only_a, only_b, min(1.0, 2 * tail)


__all__ = ["DEFAULT_RESAMPLES", "PairedComparison", "mcnemar_exact", "paired_bootstrap"]
