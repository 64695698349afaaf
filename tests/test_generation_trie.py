"""SemanticIdTrie (prefix queries, node walks, leaf items) and SemanticIdLogitsProcessor against brute force."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lcrec.generation import SemanticIdLogitsProcessor, SemanticIdTrie


@st.composite
def catalogues(draw):
    levels = draw(st.integers(1, 4))
    sizes = [draw(st.integers(1, 6)) for _ in range(levels)]
    rows = draw(st.lists(st.tuples(*[st.integers(0, size - 1) for size in sizes]), min_size=1, max_size=40))
    return np.asarray(rows, dtype=np.int64), sizes


def _children(codes: np.ndarray, prefix: tuple[int, ...]) -> set[int]:
    t = len(prefix)
    return {int(row[t]) for row in codes if tuple(int(c) for c in row[:t]) == prefix}


@settings(max_examples=30, deadline=None)
@given(catalogues(), st.data())
def test_allowed_next_matches_brute_force(catalogue, data):
    codes, sizes = catalogue
    trie = SemanticIdTrie(codes, sizes)
    assert trie.num_sequences == len({tuple(row) for row in codes.tolist()})
    for length in range(len(sizes)):
        known = [tuple(row[:length]) for row in codes.tolist()]
        random = [tuple(data.draw(st.integers(0, size - 1)) for size in sizes[:length]) for _ in range(3)]
        prefixes = known[:5] + random
        batch = torch.tensor(prefixes, dtype=torch.int64).reshape(len(prefixes), length)
        rows, next_codes, valid = trie.allowed_next(batch)
        mask = trie.allowed_mask(batch)
        sparse = SemanticIdTrie(codes, sizes, dense_budget=0).allowed_mask(batch)
        assert torch.equal(mask, sparse)
        for i, prefix in enumerate(prefixes):
            expected = _children(codes, prefix)
            got = next_codes[rows == i].tolist()
            assert sorted(got) == sorted(expected)  # exact and without duplicates
            assert bool(valid[i]) == bool(expected)
            assert set(torch.nonzero(mask[i]).flatten().tolist()) == expected
    assert trie.contains(torch.as_tensor(codes)).all()


@settings(max_examples=30, deadline=None)
@given(catalogues())
def test_walking_children_enumerates_exactly_the_catalogue(catalogue):
    """From the root, `children` level by level reaches every distinct tuple once; leaves map to the first item."""
    codes, sizes = catalogue
    item_ids = [100 + i for i in range(len(codes))]
    trie = SemanticIdTrie(codes, sizes, item_ids=item_ids)
    nodes, paths = torch.zeros(1, dtype=torch.int64), [()]
    for level in range(len(sizes)):
        child, child_codes, valid = trie.children(level, nodes)
        assert child.shape == (len(nodes), trie.width(level))
        for row, prefix in enumerate(paths):
            assert sorted(child_codes[row][valid[row]].tolist()) == sorted(_children(codes, prefix))
        nodes = child[valid]
        paths = [
            prefix + (int(code),)
            for prefix, row_codes, row_valid in zip(paths, child_codes, valid)
            for code in row_codes[row_valid]
        ]
    assert sorted(paths) == sorted({tuple(row) for row in codes.tolist()})
    first_item = {}
    for item, row in zip(item_ids, codes.tolist()):
        first_item.setdefault(tuple(row), item)
    assert trie.items_of(nodes).tolist() == [first_item[path] for path in paths]
    items, found = trie.item_ids(torch.as_tensor(codes))
    assert found.all() and items.tolist() == [first_item[tuple(row)] for row in codes.tolist()]


def test_item_ids_of_unknown_or_malformed_tuples_are_not_found():
    trie = SemanticIdTrie([[0, 1], [2, 3]], [4, 4], item_ids=[7, 9])
    items, found = trie.item_ids(torch.tensor([[2, 3], [0, 2], [-1, 1], [9, 9]]))
    assert found.tolist() == [True, False, False, False] and items[0] == 9
    assert not trie.item_ids(torch.tensor([[0]]))[1].any()  # a prefix is no item
    with pytest.raises(ValueError, match="2 item ids for 1 code tuples"):
        SemanticIdTrie([[0, 1]], [4, 4], item_ids=[1, 2])


def test_out_of_range_prefix_is_invalid_not_an_error():
    trie = SemanticIdTrie([[0, 1], [2, 3]], [4, 4])
    rows, codes, valid = trie.allowed_next(torch.tensor([[-1], [9], [2]]))
    assert valid.tolist() == [False, False, True]
    assert rows.tolist() == [2] and codes.tolist() == [3]


def test_bad_tries_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        SemanticIdTrie(np.zeros((0, 2)), [4, 4])
    with pytest.raises(ValueError, match="outside"):
        SemanticIdTrie([[0, 4]], [4, 4])
    with pytest.raises(ValueError, match="too large"):
        SemanticIdTrie([[0] * 8], [1 << 8] * 8)


CODES = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 0], [3, 0, 0]])
SIZES = [4, 4, 4]
EOS, PAD = 1, 0
# token id of (level, code) = 10 + 4 * level + code
TOKEN_IDS = torch.arange(12).reshape(3, 4) + 10


def _processor(prompt_length: int) -> SemanticIdLogitsProcessor:
    return SemanticIdLogitsProcessor(SemanticIdTrie(CODES, SIZES), TOKEN_IDS, EOS, prompt_length)


def _allowed(scores: torch.Tensor) -> list[set[int]]:
    return [set(torch.nonzero(torch.isfinite(row)).flatten().tolist()) for row in scores]


def test_processor_with_left_padding_and_forced_eos():
    # Two prompts of different lengths, left-padded to 4 columns; then generated index tokens.
    prompts = torch.tensor([[PAD, PAD, 5, 6], [7, 8, 9, 5]])
    processor = _processor(prompt_length=4)
    assert _allowed(processor(prompts, torch.zeros(2, 30))) == [{10, 13}, {10, 13}]
    step1 = torch.cat([prompts, torch.tensor([[10], [13]])], dim=1)
    assert _allowed(processor(step1, torch.zeros(2, 30))) == [{15, 16}, {14}]
    step2 = torch.cat([step1, torch.tensor([[15], [14]])], dim=1)
    assert _allowed(processor(step2, torch.zeros(2, 30))) == [{20, 21}, {18}]
    step3 = torch.cat([step2, torch.tensor([[21], [18]])], dim=1)
    assert _allowed(processor(step3, torch.zeros(2, 30))) == [{EOS}, {EOS}]


def test_processor_keeps_scores_of_allowed_tokens_and_never_empties_a_row():
    processor = _processor(prompt_length=1)
    scores = torch.randn(3, 30)
    original = scores.clone()
    # row 0: valid prefix; row 1: a prefix no item has; row 2: a non-index token where a code should be
    generated = torch.tensor([[5, 10], [5, 11], [5, 3]])
    out = processor(generated, scores)
    assert _allowed(out) == [{15, 16}, {EOS}, {EOS}]
    assert torch.equal(out[0, [15, 16]], original[0, [15, 16]])
    assert torch.equal(out[1:, EOS], original[1:, EOS])
    assert torch.isfinite(out).any(dim=1).all()


def test_processor_rejects_a_wrong_token_table():
    with pytest.raises(ValueError, match="shape"):
        SemanticIdLogitsProcessor(SemanticIdTrie(CODES, SIZES), TOKEN_IDS[:2], EOS, 0)
