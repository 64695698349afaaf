"""Seeded k-means (k-means++ start, Lloyd iterations) for codebook initialisation."""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def squared_distances(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Squared L2 distance from every vector (n x d) to every codeword (k x d)."""
    return (vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ codebook.T + codebook.pow(2).sum(1)).clamp_min(0)


def kmeans(
    points: torch.Tensor, clusters: int, iterations: int = 25, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`clusters` centroids of `points` (n x d).

    With fewer points than clusters, k-means runs on as many clusters as there are points and the other
    centroids start at points plus small noise (a warning says so), so every codeword is defined.
    """
    points = points.detach().float()
    n = points.shape[0]
    if n == 0:
        raise ValueError("k-means needs at least one point")
    fitted = min(clusters, n)
    centroids = _lloyd(points, fitted, iterations, generator)
    if fitted == clusters:
        return centroids
    logger.warning(
        "k-means: only %d points for %d codewords; %d codewords start at data points plus noise",
        n,
        clusters,
        clusters - n,
    )
    picks = torch.randint(n, (clusters - fitted,), generator=generator, device="cpu").to(points.device)
    scale = points.std(dim=0, unbiased=False).mean().clamp_min(1e-3)
    noise = torch.randn(clusters - fitted, points.shape[1], generator=generator, device="cpu").to(points.device)
    return torch.cat([centroids, points[picks] + 1e-2 * scale * noise])


def _lloyd(points: torch.Tensor, clusters: int, iterations: int, generator: torch.Generator | None) -> torch.Tensor:
    centroids = _kmeans_plus_plus(points, clusters, generator)
    for _ in range(iterations):
        assignment = squared_distances(points, centroids).argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, points)
        counts = torch.bincount(assignment, minlength=clusters).unsqueeze(1)
        updated = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)
        if torch.allclose(updated, centroids):
            break
        centroids = updated
    return centroids


def _kmeans_plus_plus(points: torch.Tensor, clusters: int, generator: torch.Generator | None) -> torch.Tensor:
    n = points.shape[0]
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    closest = ((points - points[first]) ** 2).sum(dim=1)
    for _ in range(1, clusters):
        total = closest.sum()
        if total <= 0:  # every remaining point coincides with a centroid: pick uniformly
            weights = torch.ones(n)
        else:
            weights = (closest / total).cpu()
        index = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(index)
        closest = torch.minimum(closest, ((points - points[index]) ** 2).sum(dim=1))
    return points[chosen].clone()
