"""Sinkhorn-Knopp balanced assignment: spreads a batch of items evenly over a level's codewords."""

from __future__ import annotations

import torch

_TINY = 1e-300


def rescale_distances(distances: torch.Tensor) -> torch.Tensor:
    """Map a distance matrix linearly onto [-1, 1] (the paper's centring), so `epsilon` has a fixed meaning."""
    low, high = distances.min(), distances.max()
    middle = (high + low) / 2
    amplitude = (high - middle).clamp_min(1e-5)
    return (distances - middle) / amplitude


@torch.no_grad()
def _scalings(
    distances: torch.Tensor, epsilon: float, iterations: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Kernel exp(-d / eps) (each row shifted by its minimum, which the row scaling absorbs) and the scalings u, v."""
    if distances.ndim != 2 or distances.shape[0] == 0 or distances.shape[1] == 0:
        raise ValueError(f"sinkhorn needs a non-empty (batch, codes) matrix, got shape {tuple(distances.shape)}")
    batch, codes = distances.shape
    scaled = rescale_distances(distances.to(torch.float64))
    kernel = torch.exp(-(scaled - scaled.min(dim=1, keepdim=True).values) / epsilon)
    u = torch.full((batch,), 1.0, dtype=torch.float64, device=distances.device)
    v = torch.full((codes,), 1.0, dtype=torch.float64, device=distances.device)
    for _ in range(iterations):
        v = (batch / codes) / (kernel.T @ u).clamp_min(_TINY)
        u = 1.0 / (kernel @ v).clamp_min(_TINY)
    return kernel, u, v


def sinkhorn_plan(distances: torch.Tensor, epsilon: float = 0.003, iterations: int = 50) -> torch.Tensor:
    """Transport plan (batch x codes) in float64: rows sum to 1 and every code receives batch/codes of the mass.

    The paper's iteration (alternate column and row normalisation of exp(-d / eps)), written with scaling
    vectors so that each iteration is two matrix-vector products.
    """
    kernel, u, v = _scalings(distances, epsilon, iterations)
    return u[:, None] * kernel * v[None, :]


def sinkhorn_assign(distances: torch.Tensor, epsilon: float = 0.003, iterations: int = 50) -> torch.Tensor:
    """Balanced code for each row of `distances` (argmax of the Sinkhorn plan)."""
    kernel, _, v = _scalings(distances, epsilon, iterations)
    return (kernel * v[None, :]).argmax(dim=1)
