"""Dataset statistics (users, items, interactions, sparsity, sequence lengths) and the printed table."""

from __future__ import annotations

import numpy as np


def interaction_stats(
    users: np.ndarray, items: np.ndarray, num_users: int | None = None, num_items: int | None = None
) -> dict:
    """Counts, sparsity and per-user sequence length summary of interactions given as non-negative integer codes
    (`num_users` / `num_items`: code ranges, to size the counts)."""
    user_counts = np.bincount(users, minlength=num_users or 0)
    lengths = user_counts[user_counts > 0]
    present_items = int((np.bincount(items, minlength=num_items or 0) > 0).sum())
    if not len(lengths):
        lengths = np.zeros(1, dtype=np.int64)
    present_users = int((user_counts > 0).sum())
    cells = present_users * present_items
    return {
        "users": present_users,
        "items": present_items,
        "interactions": len(users),
        "sparsity": float(1.0 - len(users) / cells) if cells else 1.0,
        "sequence_length": {
            "min": int(lengths.min()),
            "mean": round(float(lengths.mean()), 2),
            "median": float(np.median(lengths)),
            "max": int(lengths.max()),
        },
    }


def _seq(stats: dict) -> str:
    lengths = stats["sequence_length"]
    return f"{lengths['min']} / {lengths['mean']:.1f} / {lengths['median']:g} / {lengths['max']}"


def format_stats_table(stats: dict) -> str:
    """The human-readable summary printed by `lcrec prepare`: before/after figures and every counted drop."""
    before, after = stats["before"], stats["after"]
    kcore = f"{stats['kcore']}-core" if stats["kcore"] else "no k-core"
    lines = [f"{stats['source']} ({stats['format']}), {kcore}, leave-one-out", ""]
    rows = [
        ("users", f"{before['users']:,}", f"{after['users']:,}"),
        ("items", f"{before['items']:,}", f"{after['items']:,}"),
        ("interactions", f"{before['interactions']:,}", f"{after['interactions']:,}"),
        ("sparsity", f"{before['sparsity']:.4%}", f"{after['sparsity']:.4%}"),
        ("seq. length min/mean/median/max", _seq(before), _seq(after)),
        ("catalogue items (item file)", f"{stats['catalogue_items']:,}", f"{after['items']:,}"),
    ]
    width = max(len(row[0]) for row in rows)
    lines.append(f"{'':<{width}}  {'before':>22}  {'after':>22}")
    lines += [f"{name:<{width}}  {first:>22}  {second:>22}" for name, first, second in rows]
    lines.append("")
    if stats["drops"]:
        reason_width = max(len(f"{drop['stage']}: {drop['reason']}") for drop in stats["drops"])
        lines.append(f"{'dropped (stage: reason)':<{reason_width}}  {'interactions':>12}  {'items':>9}  {'users':>9}")
        for drop in stats["drops"]:
            label = f"{drop['stage']}: {drop['reason']}"
            lines.append(
                f"{label:<{reason_width}}  {drop['interactions']:>12,}  {drop['items']:>9,}  {drop['users']:>9,}"
            )
    else:
        lines.append("dropped: nothing")
    splits = stats["splits"]
    lines += ["", "splits: " + ", ".join(f"{name} {count:,}" for name, count in splits.items())]
    return "\n".join(lines)
