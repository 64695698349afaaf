"""Index quality numbers (`index_stats.json`) and the per-level code usage picture (`index_stats.png`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..io_utils import save_with
from .assignment import colliding_items


def level_usage(codes: np.ndarray, codebook_sizes: Sequence[int]) -> list[np.ndarray]:
    """How many items use each code, per level."""
    return [np.bincount(codes[:, level], minlength=size) for level, size in enumerate(codebook_sizes)]


def utilization(codes: np.ndarray, codebook_sizes: Sequence[int]) -> list[float]:
    """Used codes / codebook size, per level."""
    return [float((counts > 0).sum() / len(counts)) for counts in level_usage(codes, codebook_sizes)]


def entropy_bits(codes: np.ndarray, codebook_sizes: Sequence[int]) -> list[float]:
    """Entropy (bits) of each level's code distribution; log2(codebook size) is the uniform maximum."""
    result = []
    for counts in level_usage(codes, codebook_sizes):
        p = counts[counts > 0] / counts.sum()
        result.append(float(-(p * np.log2(p)).sum()) if len(p) else 0.0)
    return result


def semantic_coherence(embeddings: np.ndarray, first_codes: np.ndarray) -> float:
    """Mean cosine similarity of item pairs sharing a first-level code divided by that of all item pairs."""
    unit = embeddings / np.clip(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12, None)
    total = unit.sum(axis=0)
    n = len(unit)
    all_pairs = (total @ total - n) / max(1, n * (n - 1))
    sums = np.zeros((int(first_codes.max()) + 1, unit.shape[1]))
    np.add.at(sums, first_codes, unit)
    counts = np.bincount(first_codes)
    pairs = (counts * (counts - 1)).sum()
    within = ((sums * sums).sum() - n) / max(1, pairs)
    return float(within / all_pairs) if all_pairs > 0 else float("nan")


def index_stats(
    codes: np.ndarray, codebook_sizes: Sequence[int], collision_rate_before_resolution: float, seconds: float, **extra
) -> dict:
    """The `index_stats.json` record (keys fixed in ARCHITECTURE.md, then any `extra` keys)."""
    codes = np.asarray(codes, dtype=np.int64)
    return {
        "num_items": len(codes),
        "levels": len(codebook_sizes),
        "codebook_sizes": [int(size) for size in codebook_sizes],
        "collisions": colliding_items(codes),
        "collision_rate_before_resolution": float(collision_rate_before_resolution),
        "utilization": utilization(codes, codebook_sizes),
        "entropy": entropy_bits(codes, codebook_sizes),
        "seconds": round(float(seconds), 3),
        **extra,
    }


def plot_index_stats(codes: np.ndarray, codebook_sizes: Sequence[int], path: str | os.PathLike) -> None:
    """One bar chart per level: items per code, codes sorted by use, with utilisation and entropy in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    codes = np.asarray(codes, dtype=np.int64)
    usage = level_usage(codes, codebook_sizes)
    used = utilization(codes, codebook_sizes)
    entropy = entropy_bits(codes, codebook_sizes)
    figure, axes = plt.subplots(1, len(usage), figsize=(3.2 * len(usage), 2.8), squeeze=False)
    for level, (axis, counts) in enumerate(zip(axes[0], usage)):
        axis.bar(np.arange(len(counts)), np.sort(counts)[::-1], width=1.0, color="tab:blue")
        axis.axhline(len(codes) / len(counts), color="tab:red", linewidth=0.8, label="uniform")
        axis.set_title(f"level {level + 1}: {used[level]:.0%} used, {entropy[level]:.2f} bits", fontsize=9)
        axis.set_xlabel("codes (sorted by use)", fontsize=8)
        axis.tick_params(labelsize=7)
    axes[0][0].set_ylabel("items", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="upper right")
    figure.suptitle(f"{len(codes)} items, codebook sizes {list(codebook_sizes)}", fontsize=10)
    figure.tight_layout()
    save_with(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100))
    plt.close(figure)
