"""Sinkhorn-Knopp: a balanced plan, and assignments spread evenly where nearest-codeword would pile up."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lcrec.indexing.sinkhorn import rescale_distances, sinkhorn_assign, sinkhorn_plan


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(2, 64), codes=st.integers(2, 64), seed=st.integers(0, 10_000))
def test_plan_has_the_requested_marginals(batch, codes, seed):
    distances = torch.rand(batch, codes, generator=torch.Generator().manual_seed(seed))
    plan = sinkhorn_plan(distances, epsilon=0.1, iterations=300)
    assert plan.dtype == torch.float64
    torch.testing.assert_close(plan.sum(dim=1), torch.ones(batch, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        plan.sum(dim=0), torch.full((codes,), batch / codes, dtype=torch.float64), atol=1e-2, rtol=1e-2
    )


@settings(max_examples=20, deadline=None)
@given(per_code=st.integers(1, 6), codes=st.sampled_from([8, 16, 64, 256]), seed=st.integers(0, 10_000))
def test_spreads_a_batch_that_prefers_one_code(per_code, codes, seed):
    batch = per_code * codes
    distances = torch.rand(batch, codes, generator=torch.Generator().manual_seed(seed))
    distances[:, 0] -= 5.0  # every item's nearest codeword is code 0
    assert torch.bincount(distances.argmin(dim=1), minlength=codes).max() == batch
    counts = torch.bincount(sinkhorn_assign(distances), minlength=codes)
    # 50 Sinkhorn iterations balance approximately, not exactly: a few items over the mean, never a pile-up.
    assert counts.max() <= 3 * per_code + 2
    assert (counts > 0).sum() >= 0.7 * codes


def test_defaults_are_the_papers_and_survive_a_tiny_epsilon():
    distances = torch.rand(1024, 256, generator=torch.Generator().manual_seed(0)) * 50
    codes = sinkhorn_assign(distances)  # eps 0.003: exp(-d/eps) spans ~1e-290..1, must not give NaN
    assert codes.shape == (1024,)
    assert torch.bincount(codes, minlength=256).max() <= 12


def test_identical_rows_cannot_be_separated():
    # The flaw of the paper's conflict resolution: identical items get identical Sinkhorn codes.
    codes = sinkhorn_assign(torch.zeros(5, 16) + torch.arange(16.0))
    assert len(set(codes.tolist())) == 1


def test_rescale_maps_onto_minus_one_one():
    scaled = rescale_distances(torch.tensor([[2.0, 4.0], [6.0, 10.0]]))
    assert math.isclose(scaled.min().item(), -1.0) and math.isclose(scaled.max().item(), 1.0, rel_tol=1e-5)


@pytest.mark.parametrize("shape", [(0, 4), (4, 0), (4,)])
def test_rejects_empty_or_flat_input(shape):
    with pytest.raises(ValueError, match="sinkhorn"):
        sinkhorn_assign(torch.zeros(shape))
