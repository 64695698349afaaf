"""Collaborative signal in the semantic IDs: item vectors learnt from interactions join the text vectors.

Text-only codes can put items that are consumed together far apart. Three ways to let collaborative item vectors
(e.g. a SASRec's item embeddings trained on the training split, `lcrec.evaluation.baselines.sasrec_item_vectors`)
shape the codes:

- `letter`: the RQ-VAE quantises the text vectors, and a contrastive term aligns each item's quantised latent
  with its own collaborative vector against the other items of the batch (the alignment of LETTER, Wang et al.,
  CIKM 2024); Sinkhorn at every level keeps code use balanced (LETTER's diversity goal).
- `concat`: text and collaborative vectors, each L2-normalised, quantised together.
- `only`: the collaborative vectors alone.

`prefix_sharing` measures the effect: how often consecutive items of the training sequences share their first
code(s), against the rate expected from code sizes alone; `index_stats.json` records it (`build_index(...,
sequences=...)`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .modeling_rqvae import RQVAEOutput

COLLABORATIVE_MODES = ("letter", "concat", "only")
DEFAULT_COLLABORATIVE_MODE = "letter"
# Weight of the letter alignment term next to the RQ-VAE loss (1.0 was worse on Scientific validation).
DEFAULT_ALIGNMENT_WEIGHT = 0.1
ALIGNMENT_TEMPERATURE = 0.1


class CollaborativeAlignment(nn.Module):
    """InfoNCE between an item's quantised latent (projected) and its collaborative vector, in-batch negatives.

    Used as `train_rqvae(..., auxiliary=CollaborativeAlignment(vectors, code_dim))`: called with the RQ-VAE's
    output and the batch's item rows, returns `weight` x the loss.
    """

    def __init__(
        self,
        vectors: np.ndarray | torch.Tensor,
        code_dim: int,
        weight: float = DEFAULT_ALIGNMENT_WEIGHT,
        temperature: float = ALIGNMENT_TEMPERATURE,
    ):
        super().__init__()
        if weight <= 0 or temperature <= 0:
            raise ValueError(f"weight and temperature must be positive, got {weight} and {temperature}")
        vectors = torch.as_tensor(np.asarray(vectors, dtype=np.float32))
        if vectors.ndim != 2:
            raise ValueError(f"collaborative vectors must be 2-d (items x dim), got shape {tuple(vectors.shape)}")
        self.register_buffer("targets", F.normalize(vectors, dim=-1))
        self.projection = nn.Linear(code_dim, vectors.shape[1])
        self.weight = weight
        self.temperature = temperature

    def forward(self, output: RQVAEOutput, batch_ids: torch.Tensor) -> torch.Tensor:
        if output.quantized is None:
            raise ValueError("the RQ-VAE output carries no quantised latent")
        queries = F.normalize(self.projection(output.quantized), dim=-1)
        keys = self.targets[batch_ids.to(self.targets.device)]
        logits = queries @ keys.T / self.temperature
        labels = torch.arange(len(queries), device=logits.device)
        return self.weight * F.cross_entropy(logits, labels)


def check_collaborative(vectors: np.ndarray, num_items: int, mode: str) -> np.ndarray:
    """The collaborative vectors as float32 (items x dim), after checking the mode and the shape."""
    if mode not in COLLABORATIVE_MODES:
        raise ValueError(f"collaborative mode must be one of {COLLABORATIVE_MODES}, got {mode!r}")
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != num_items:
        raise ValueError(f"collaborative vectors must have one row per item ({num_items}), got shape {vectors.shape}")
    if not np.isfinite(vectors).all():
        rows = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
        raise ValueError(f"collaborative vectors contain NaN or infinite values (rows {rows[:10].tolist()})")
    return vectors


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def quantiser_inputs(text: np.ndarray, collaborative: np.ndarray, mode: str) -> np.ndarray:
    """What the RQ-VAE quantises: text vectors (`letter`), both L2-normalised side by side (`concat`), or `only`."""
    if mode == "letter":
        return text
    if mode == "only":
        return _unit(collaborative).astype(np.float32)
    return np.concatenate([_unit(text), _unit(collaborative)], axis=1).astype(np.float32)


def prefix_sharing(
    codes: np.ndarray, item_ids: Sequence[int], sequences: Sequence[Sequence[int]], depth: int = 1
) -> dict[str, float]:
    """Share of consecutive (item, next item) pairs in `sequences` whose codes agree on the first `depth` levels,
    and the share expected if codes were assigned at random with the same code sizes (pairs of distinct items)."""
    codes = np.asarray(codes, dtype=np.int64)
    row_of = {int(item): row for row, item in enumerate(item_ids)}
    _, group = np.unique(codes[:, :depth], axis=0, return_inverse=True)
    group = group.reshape(-1)
    pairs = [
        (row_of[a], row_of[b])
        for sequence in sequences
        for a, b in zip(sequence[:-1], sequence[1:])
        if a in row_of and b in row_of and a != b
    ]
    if not pairs:
        return {"pairs": 0, "shared": 0.0, "random": 0.0}
    left, right = (np.asarray(side) for side in zip(*pairs))
    shared = float((group[left] == group[right]).mean())
    sizes = np.bincount(group).astype(np.float64)
    random = float((sizes * (sizes - 1)).sum() / (len(group) * (len(group) - 1))) if len(group) > 1 else 0.0
    return {"pairs": len(pairs), "shared": round(shared, 4), "random": round(random, 4)}


__all__ = [
    "COLLABORATIVE_MODES",
    "CollaborativeAlignment",
    "check_collaborative",
    "prefix_sharing",
    "quantiser_inputs",
]
