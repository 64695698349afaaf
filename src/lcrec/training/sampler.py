"""A fresh template draw per epoch: epoch e trains on its own materialised copy (draw) of the task mix."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class EpochDrawSampler(Sampler[int]):
    """Samples, in epoch `e`, a random permutation of draw `e % len(draws)` of a concatenated dataset.

    The training dataset is `draws[0] + draws[1] + ...`, each draw the same samples with independently drawn
    templates (as the paper redraws a template per sample per epoch). The Trainer calls `set_epoch` before
    every epoch (accelerate forwards it), so epochs see different prompt wordings, and the order is
    reproducible from `seed` (resuming mid-epoch replays the same permutation). Draws may differ slightly in
    size when `max_length` dropped rows; an epoch then takes the first `len(self)` rows of its permutation.
    """

    def __init__(self, draw_sizes: Sequence[int], seed: int = 0):
        if not draw_sizes or min(draw_sizes) < 1:
            raise ValueError(f"every draw needs at least one row, got sizes {list(draw_sizes)}")
        self.draw_sizes = [int(size) for size in draw_sizes]
        self.offsets = [sum(self.draw_sizes[:i]) for i in range(len(self.draw_sizes))]
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return min(self.draw_sizes)

    def __iter__(self) -> Iterator[int]:
        draw = self.epoch % len(self.draw_sizes)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.draw_sizes[draw], generator=generator)[: len(self)]
        yield from (self.offsets[draw] + order).tolist()
