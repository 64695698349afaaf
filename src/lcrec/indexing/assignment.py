"""Collision-free code assignment: the paper's Sinkhorn re-assignment rounds, then a deterministic guarantee.

The guarantee gives every item still sharing an index the nearest free code under its own prefix; where
that prefix is full it moves up one level and takes the nearest code whose subtree still has room, and so
on. It never changes an item that already owns its index, so it also serves cold-start `add_items`.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .kmeans import squared_distances
from .sinkhorn import sinkhorn_assign

logger = logging.getLogger(__name__)


@dataclass
class AssignmentResult:
    """Final codes and what each resolution stage did."""

    codes: np.ndarray
    collision_rate_before_resolution: float
    colliding_items_before: int
    colliding_items_after_sinkhorn: int
    sinkhorn_rounds_used: int
    moved_by_guarantee: int


def colliding_groups(codes: np.ndarray) -> list[np.ndarray]:
    """Row indices of each group of two or more rows sharing one code tuple, in order of first row."""
    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for row, key in enumerate(map(tuple, np.asarray(codes).tolist())):
        groups[key].append(row)
    return [np.asarray(rows) for rows in groups.values() if len(rows) > 1]


def colliding_items(codes: np.ndarray) -> int:
    """How many items share their code tuple with at least one other item."""
    return sum(len(group) for group in colliding_groups(codes))


def check_capacity(num_items: int, codebook_sizes: Sequence[int]) -> None:
    """Raise a ValueError naming index shapes that fit when `num_items` exceed the index space."""
    capacity = math.prod(codebook_sizes)
    if num_items <= capacity:
        return
    levels = len(codebook_sizes)
    size = max(2, max(codebook_sizes))  # a codebook of one code adds no room: suggest at least two codes
    levels_needed = max(levels, math.ceil(math.log(num_items) / math.log(size) - 1e-9))
    while size**levels_needed < num_items:
        levels_needed += 1
    size_needed = max(2, math.ceil(num_items ** (1.0 / levels)))
    while size_needed**levels < num_items:
        size_needed += 1
    raise ValueError(
        f"the index space holds {capacity} items (codebook sizes {list(codebook_sizes)}) but the catalogue has "
        f"{num_items}: "
        f"use {levels_needed} levels of {size} codes, or codebook size {size_needed} with {levels} levels"
    )


def sinkhorn_rounds(
    codes: np.ndarray,
    last_residuals: torch.Tensor,
    last_codebook: torch.Tensor,
    rounds: int = 20,
    epsilon: float = 0.003,
    iterations: int = 50,
) -> tuple[np.ndarray, int]:
    """The paper's conflict resolution: re-pick each colliding group's last code with Sinkhorn (`rounds` at most)."""
    codes = np.array(codes, copy=True)
    last_codebook = last_codebook.detach().cpu()
    for round_number in range(1, rounds + 1):
        groups = colliding_groups(codes)
        if not groups:
            return codes, round_number - 1
        for rows in groups:
            residual = last_residuals[torch.as_tensor(rows)].float()
            distances = squared_distances(residual, last_codebook.float())
            codes[rows, -1] = sinkhorn_assign(distances, epsilon, iterations).numpy()
    return codes, rounds


def make_unique(
    codes: np.ndarray,
    residuals: np.ndarray,
    codebooks: Sequence[np.ndarray],
    fixed: np.ndarray | None = None,
    item_ids: Sequence[int] | None = None,
) -> tuple[np.ndarray, int]:
    """Give every item a distinct code tuple, moving as few items as possible and each to the nearest free code.

    `residuals[i, level]` is the vector that level quantises for item i under its current prefix. In every
    group sharing a tuple, a `fixed` item (or else the one closest to its last codeword) keeps it; the
    others move. Returns the new codes and how many items moved.
    """
    codes = np.array(codes, dtype=np.int64, copy=True)
    num_items, levels = codes.shape
    sizes = [len(codebook) for codebook in codebooks]
    check_capacity(num_items, sizes)
    fixed = np.zeros(num_items, dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    ids = list(range(num_items)) if item_ids is None else list(item_ids)
    last_error = ((residuals[:, -1] - codebooks[-1][codes[:, -1]]) ** 2).sum(axis=1)

    movers: list[int] = []
    for rows in colliding_groups(codes):
        pinned = rows[fixed[rows]]
        if len(pinned) > 1:
            raise ValueError(
                f"items {[ids[row] for row in pinned]} are fixed but share the index {codes[pinned[0]].tolist()}"
            )
        keeper = pinned[0] if len(pinned) else rows[np.argsort(last_error[rows], kind="stable")[0]]
        movers.extend(int(row) for row in rows if row != keeper)
    if not movers:
        return codes, 0

    used = Counter()  # distinct leaves under each prefix (prefix tuples of length 0..levels)
    moving = set(movers)
    for row in range(num_items):
        if row not in moving:
            key = tuple(codes[row].tolist())
            if key not in used:
                for depth in range(levels + 1):
                    used[key[:depth]] += 1
    room = [math.prod(sizes[depth:]) for depth in range(levels + 1)]

    for row in movers:
        key = tuple(codes[row].tolist())
        depth = levels - 1
        while used[key[:depth]] >= room[depth]:
            depth -= 1
        prefix = key[:depth]
        residual = residuals[row, depth].astype(np.float64)
        for level in range(depth, levels):
            distances = ((codebooks[level].astype(np.float64) - residual) ** 2).sum(axis=1)
            for code in np.argsort(distances, kind="stable"):
                if used[prefix + (int(code),)] < room[level + 1]:
                    break
            prefix = prefix + (int(code),)
            residual = residual - codebooks[level][code]
        for depth in range(levels + 1):
            used[prefix[:depth]] += 1
        codes[row] = prefix
    return codes, len(movers)


def assign_unique_codes(
    codes: np.ndarray,
    residuals: torch.Tensor,
    codebooks: Sequence[torch.Tensor],
    rounds: int = 20,
    epsilon: float = 0.003,
    iterations: int = 50,
    guarantee: bool = True,
) -> AssignmentResult:
    """Nearest-codeword codes -> `rounds` of Sinkhorn re-assignment -> (with `guarantee`) the deterministic fix."""
    codes = np.asarray(codes, dtype=np.int64)
    before = colliding_items(codes)
    resolved, used_rounds = (
        sinkhorn_rounds(codes, residuals[:, -1], codebooks[-1], rounds, epsilon, iterations) if rounds else (codes, 0)
    )
    after_sinkhorn = colliding_items(resolved)
    moved = 0
    if guarantee and after_sinkhorn:
        # Sinkhorn only changed last codes, so each level's residual under the item's prefix is unchanged.
        books = [codebook.detach().cpu().numpy() for codebook in codebooks]
        resolved, moved = make_unique(resolved, residuals.cpu().numpy(), books)
    logger.info(
        "collisions: %d items before resolution, %d after %d Sinkhorn rounds, %d moved to free codes",
        before,
        after_sinkhorn,
        used_rounds,
        moved,
    )
    return AssignmentResult(resolved, before / max(1, len(codes)), before, after_sinkhorn, used_rounds, moved)
