"""ItemIndex: token round trips, lookups, collisions and clear errors on malformed input."""

import json

import numpy as np
import pytest

from lcrec.indexing import ItemIndex, all_index_tokens, level_token, parse_index_tokens


@pytest.fixture
def index() -> ItemIndex:
    return ItemIndex([10, 11, 12], [[0, 1, 2], [0, 1, 3], [4, 0, 0]], [5, 4, 4])


def test_tokens_round_trip(index):
    assert index.tokens(11) == "<a_0><b_1><c_3>"
    assert index.token_list(12) == ["<a_4>", "<b_0>", "<c_0>"]
    for item in index.item_ids:
        assert index.item_for_tokens(index.tokens(item)) == item
    assert index.codes_of(10) == (0, 1, 2)
    assert 10 in index and 99 not in index


def test_all_tokens_cover_every_level_and_code():
    tokens = all_index_tokens([3, 2])
    assert tokens == ["<a_0>", "<a_1>", "<a_2>", "<b_0>", "<b_1>"]
    assert level_token(3, 7) == "<d_7>"


@pytest.mark.parametrize("text", ["", "<a_1><c_2>", "<b_1>", "<a_1> <b_2>", "a_1", "<a_x>"])
def test_parse_rejects_malformed(text):
    with pytest.raises(ValueError):
        parse_index_tokens(text)


def test_unknown_item_and_unknown_index_raise(index):
    with pytest.raises(KeyError, match="99"):
        index.tokens(99)
    with pytest.raises(KeyError, match="no item"):
        index.item_for_tokens("<a_1><b_1><c_1>")


def test_constructor_validates_codes():
    with pytest.raises(ValueError, match="item 7: code 9 at level 1"):
        ItemIndex([6, 7], [[0, 0], [1, 9]], [4, 4])
    with pytest.raises(ValueError, match="duplicates"):
        ItemIndex([1, 1], [[0, 0], [1, 1]], [4, 4])


def test_save_load_round_trip(tmp_path, index):
    path = tmp_path / "index.json"
    index.save(path)
    loaded = ItemIndex.load(path)
    assert loaded.item_ids == index.item_ids
    np.testing.assert_array_equal(loaded.codes, index.codes)
    assert loaded.codebook_sizes == index.codebook_sizes
    assert not list(tmp_path.glob(".*.tmp"))


def test_lcrec_layout_round_trip_keeps_collisions(tmp_path):
    index = ItemIndex([0, 1, 2], [[1, 2], [1, 2], [0, 3]], [2, 4])
    path = tmp_path / "D.index.json"
    index.to_lcrec_json(path)
    assert json.loads(path.read_text())["0"] == ["<a_1>", "<b_2>"]
    loaded = ItemIndex.from_lcrec_json(path, codebook_sizes=[2, 4])
    assert loaded.collisions() == [[0, 1]]
    assert ItemIndex.from_lcrec_json(path).codebook_sizes == [2, 4]


def test_lcrec_import_names_bad_items(tmp_path):
    path = tmp_path / "D.index.json"
    path.write_text(json.dumps({"0": ["<a_1>", "<b_2>"], "5": ["<a_1>", "<x_2>"]}))
    with pytest.raises(ValueError, match="item 5"):
        ItemIndex.from_lcrec_json(path)
    path.write_text(json.dumps({"0": ["<a_1>", "<b_2>"], "5": ["<a_1>", "<b_3>"]}))
    with pytest.raises(ValueError, match=r"not in the catalogue, e.g. \[5\]"):
        ItemIndex.from_lcrec_json(path, known_items=[0, 1])
    path.write_text('{"0": ["<a_1>"],\n')
    with pytest.raises(ValueError, match="line"):
        ItemIndex.from_lcrec_json(path)


def test_with_items_keeps_existing_codes(index):
    grown = index.with_items([13], np.array([[4, 0, 1]]))
    assert grown.codes_of(10) == index.codes_of(10)
    assert grown.tokens(13) == "<a_4><b_0><c_1>"


def test_from_path_reads_a_folder_or_a_file_and_names_a_missing_one(tmp_path, index):
    index.save(tmp_path / "index.json")
    assert ItemIndex.from_path(tmp_path).item_ids == index.item_ids
    assert ItemIndex.from_path(tmp_path / "index.json").item_ids == index.item_ids
    with pytest.raises(FileNotFoundError, match="lcrec index"):
        ItemIndex.from_path(tmp_path / "missing")
