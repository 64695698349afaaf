"""Synthetic clustered embeddings with known structure, for tests and benchmarks of the index builder."""

from __future__ import annotations

import numpy as np


def clustered_embeddings(
    num_items: int, dim: int = 64, clusters: int = 32, spread: float = 0.3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (num_items x dim) float32, cluster label per item): Gaussian blobs around random centres.

    A shared offset makes random pairs mildly similar, as with real text encoders.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) + 0.5
    labels = rng.integers(clusters, size=num_items)
    embeddings = centres[labels] + spread * rng.normal(size=(num_items, dim))
    return embeddings.astype(np.float32), labels
