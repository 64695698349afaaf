"""Collision-free assignment: uniqueness on adversarial inputs, minimal and semantic moves, clear capacity errors."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lcrec.indexing import assign_unique_codes, check_capacity, make_unique
from lcrec.indexing.assignment import colliding_groups, colliding_items, sinkhorn_rounds


def random_books(sizes, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(size, dim)).astype(np.float32) for size in sizes]


def residuals_for(codes, books, latent):
    """Per-level residuals of `latent` under `codes` (what the RQ-VAE's encode gives)."""
    residuals, residual = [], latent.copy()
    for level, book in enumerate(books):
        residuals.append(residual)
        residual = residual - book[codes[:, level]]
    return np.stack(residuals, axis=1)


def assert_unique(codes):
    assert len({tuple(row) for row in codes.tolist()}) == len(codes)


@st.composite
def catalogues(draw):
    sizes = draw(st.lists(st.integers(2, 5), min_size=1, max_size=3))
    capacity = math.prod(sizes)
    num_items = draw(st.integers(1, capacity))
    hot = draw(st.integers(1, capacity))  # few distinct tuples -> many collisions
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    pool = np.stack([rng.integers(size, size=hot) for size in sizes], axis=1)
    codes = pool[rng.integers(hot, size=num_items)]
    return sizes, codes, rng.normal(size=(num_items, 4)).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(catalogues())
def test_unique_and_minimal_for_any_catalogue_that_fits(case):
    sizes, codes, latent = case
    books = random_books(sizes)
    unique, moved = make_unique(codes, residuals_for(codes, books, latent), books)
    assert_unique(unique)
    assert ((unique >= 0) & (unique < np.asarray(sizes))).all()
    groups = colliding_groups(codes)
    assert moved == sum(len(group) - 1 for group in groups)
    in_group = np.zeros(len(codes), dtype=bool)
    for group in groups:
        in_group[group] = True
        assert sum((unique[row] == codes[row]).all() for row in group) >= 1  # one member keeps the index
    assert (unique[~in_group] == codes[~in_group]).all()  # items that owned their index keep it


@settings(max_examples=15, deadline=None)
@given(num_items=st.integers(2, 64), seed=st.integers(0, 1000))
def test_identical_embeddings_get_distinct_indices_by_nearest_free_code(num_items, seed):
    sizes = [4, 4, 4]
    books = random_books(sizes, seed=seed)
    latent = np.repeat(np.random.default_rng(seed).normal(size=(1, 4)).astype(np.float32), num_items, axis=0)
    codes = np.zeros((num_items, 3), dtype=np.int64)
    unique, _ = make_unique(codes, residuals_for(codes, books, latent), books)
    assert_unique(unique)
    # Within the shared prefix (0, 0) the movers fill the last level's free codes nearest first.
    last = unique[(unique[:, 0] == 0) & (unique[:, 1] == 0), 2]
    assert len(last) == min(num_items, 4)
    order = np.argsort(((books[2] - (latent[0] - books[0][0] - books[1][0])) ** 2).sum(axis=1), kind="stable")
    assert set(last.tolist()) == {0} | set(order[order != 0][: len(last) - 1].tolist())


def test_more_items_under_one_prefix_than_codes_moves_up_one_level():
    sizes = [4, 4, 4]
    books = random_books(sizes)
    codes = np.array([[1, 2, 3]] * 10)
    unique, moved = make_unique(codes, residuals_for(codes, books, np.zeros((10, 4), np.float32)), books)
    assert_unique(unique)
    assert moved == 9
    assert (unique[:, 0] == 1).all()  # the first level never needed to change
    assert ((unique[:, 1] == 2).sum()) == 4  # prefix (1, 2) filled completely, the rest moved to a sibling prefix


def test_full_capacity_is_reached_exactly():
    sizes = [3, 3, 3]
    books = random_books(sizes)
    codes = np.zeros((27, 3), dtype=np.int64)
    unique, _ = make_unique(codes, residuals_for(codes, books, np.zeros((27, 4), np.float32)), books)
    assert {tuple(row) for row in unique.tolist()} == {(a, b, c) for a in range(3) for b in range(3) for c in range(3)}


def test_over_capacity_names_shapes_that_fit():
    with pytest.raises(
        ValueError,
        match=r"holds 64 items .* catalogue has 100: use 4 levels of 4 codes, or codebook size 5 with 3 levels",
    ):
        check_capacity(100, [4, 4, 4])
    books = random_books([2, 2])
    with pytest.raises(ValueError, match="holds 4 items"):
        make_unique(np.zeros((5, 2), dtype=np.int64), np.zeros((5, 2, 4), np.float32), books)
    check_capacity(64, [4, 4, 4])


def test_fixed_items_never_move_and_two_fixed_in_a_group_is_an_error():
    sizes = [4, 4]
    books = random_books(sizes)
    codes = np.array([[0, 0], [0, 0], [0, 0]])
    residuals = residuals_for(codes, books, np.zeros((3, 4), np.float32))
    unique, moved = make_unique(codes, residuals, books, fixed=np.array([False, True, False]))
    assert moved == 2 and (unique[1] == [0, 0]).all()
    assert_unique(unique)
    with pytest.raises(ValueError, match=r"items \[7, 8\] are fixed"):
        make_unique(codes, residuals, books, fixed=np.array([True, True, False]), item_ids=[7, 8, 9])


def test_paper_rounds_then_guarantee():
    rng = np.random.default_rng(0)
    books = [torch.from_numpy(book) for book in random_books([8, 8, 8])]
    latent = rng.normal(size=(40, 4)).astype(np.float32)
    latent[20:] = latent[0]  # 20 identical items: Sinkhorn rounds cannot separate them
    codes = np.stack([np.zeros(40, dtype=np.int64), np.zeros(40, dtype=np.int64), rng.integers(8, size=40)], axis=1)
    codes[20:] = codes[0]
    residuals = torch.from_numpy(residuals_for(codes, [book.numpy() for book in books], latent))
    after_rounds, rounds = sinkhorn_rounds(codes, residuals[:, -1], books[-1], rounds=20)
    assert rounds == 20 and colliding_items(after_rounds) > 0
    result = assign_unique_codes(codes, residuals, books)
    assert result.colliding_items_before >= 21 and result.colliding_items_after_sinkhorn > 0
    assert result.moved_by_guarantee > 0 and colliding_items(result.codes) == 0
    assert result.collision_rate_before_resolution == pytest.approx(result.colliding_items_before / 40)
    no_guarantee = assign_unique_codes(codes, residuals, books, guarantee=False)
    assert colliding_items(no_guarantee.codes) == result.colliding_items_after_sinkhorn
