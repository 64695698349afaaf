"""ItemIndex: token round trips, lookups, collisions and clear errors on malformed input."""

import json

import numpy as np
import pytest

from lcrec.indexing import (
    ItemIndex,
    all_index_tokens,
    level_token,
    load_lcrec_index,
    parse_index_tokens,
)


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
    with pytest.raises(ValueError, match="duplicates, e.g. item 1"):
        ItemIndex([1, 1], [[0, 0], [1, 1]], [4, 4])
    with pytest.raises(ValueError, match=r"items 6 and 7 share the index <a_1><b_2>"):
        ItemIndex([6, 7], [[1, 2], [1, 2]], [4, 4])
    with pytest.raises(ValueError, match="codes must be integers"):
        ItemIndex([6, 7], [[1, 2.5], [1, 3]], [4, 4])
    with pytest.raises(ValueError, match="item id True is not an integer"):
        ItemIndex([True, 7], [[1, 2], [1, 3]], [4, 4])


def test_fingerprint_identifies_items_and_codes_not_row_order(index):
    assert index.fingerprint.startswith("sha256:") and len(index.fingerprint) == len("sha256:") + 64
    shuffled = ItemIndex([12, 10, 11], [[4, 0, 0], [0, 1, 2], [0, 1, 3]], [5, 4, 4])
    assert shuffled.fingerprint == index.fingerprint
    swapped = ItemIndex([10, 11, 12], [[0, 1, 3], [0, 1, 2], [4, 0, 0]], [5, 4, 4])
    wider = ItemIndex([10, 11, 12], [[0, 1, 2], [0, 1, 3], [4, 0, 0]], [5, 4, 5])
    renamed = ItemIndex([10, 11, 13], [[0, 1, 2], [0, 1, 3], [4, 0, 0]], [5, 4, 4])
    assert len({index.fingerprint, swapped.fingerprint, wider.fingerprint, renamed.fingerprint}) == 4


def test_raw_ids_are_saved_loaded_and_kept_when_items_are_added(tmp_path):
    index = ItemIndex([0, 1], [[0, 1], [1, 0]], [2, 2], raw_ids=["B001", "B002"])
    index.save(tmp_path / "index.json")
    loaded = ItemIndex.load(tmp_path / "index.json")
    assert loaded.raw_id_of(1) == "B002" and loaded.fingerprint == index.fingerprint
    assert index.with_items([2], np.array([[1, 1]]), ["B003"]).raw_id_of(2) == "B003"
    assert index.with_items([2], np.array([[1, 1]])).raw_ids is None
    assert ItemIndex([0], [[0, 1]], [2, 2]).raw_id_of(0) is None


def test_save_load_round_trip(tmp_path, index):
    path = tmp_path / "index.json"
    index.save(path)
    loaded = ItemIndex.load(path)
    assert loaded.item_ids == index.item_ids
    np.testing.assert_array_equal(loaded.codes, index.codes)
    assert loaded.codebook_sizes == index.codebook_sizes
    assert json.loads(path.read_text())["fingerprint"] == index.fingerprint == loaded.fingerprint
    assert ItemIndex.load(path, expected_num_items=3).num_items == 3
    with pytest.raises(ValueError, match="the index has 3 items, expected 4"):
        ItemIndex.from_path(tmp_path, expected_num_items=4)
    assert not list(tmp_path.glob(".*.tmp"))


def test_version_1_files_without_a_fingerprint_still_load(tmp_path, index):
    data = index.to_dict()
    del data["fingerprint"]
    data["version"] = 1
    (tmp_path / "index.json").write_text(json.dumps(data))
    assert ItemIndex.load(tmp_path / "index.json").fingerprint == index.fingerprint


def test_lcrec_layout_round_trip(tmp_path, index):
    path = tmp_path / "D.index.json"
    index.to_lcrec_json(path)
    assert json.loads(path.read_text())["11"] == ["<a_0>", "<b_1>", "<c_3>"]
    loaded = load_lcrec_index(path, codebook_sizes=[5, 4, 4])
    assert loaded.fingerprint == index.fingerprint
    assert load_lcrec_index(path).codebook_sizes == [5, 2, 4]


def test_lcrec_import_resolves_shared_codes_and_reports_them(tmp_path, caplog):
    from lcrec.indexing import import_lcrec_index

    released = {
        "0": ["<a_1>", "<b_2>"],
        "1": ["<a_1>", "<b_2>"],
        "2": ["<a_0>", "<b_3>"],
        "3": ["<a_1>", "<b_2>"],
        "4": ["<a_1>", "<b_0>"],
    }
    result = import_lcrec_index(released, codebook_sizes=[2, 4])
    # The first item of the group keeps its codes; the others take the lowest free codes under the same prefix.
    assert result.index.codes_of(0) == (1, 2)
    assert result.index.codes_of(1) == (1, 1) and result.index.codes_of(3) == (1, 3)
    assert result.shared_groups == 1
    assert result.moved == [
        {"item": 1, "from": "<a_1><b_2>", "to": "<a_1><b_1>"},
        {"item": 3, "from": "<a_1><b_2>", "to": "<a_1><b_3>"},
    ]
    path = tmp_path / "D.index.json"
    path.write_text(json.dumps(released))
    with caplog.at_level("WARNING"):
        assert load_lcrec_index(path, codebook_sizes=[2, 4]).fingerprint == result.index.fingerprint
    assert "1 code tuples were shared by 3 items; 2 items moved" in caplog.text
    # A full prefix moves the item up a level, to the nearest prefix with room.
    full = {str(n): ["<a_0>", f"<b_{min(n, 1)}>"] for n in range(3)}
    assert import_lcrec_index(full, codebook_sizes=[2, 2]).index.codes_of(2) == (1, 0)


def test_lcrec_import_names_bad_items(tmp_path):
    path = tmp_path / "D.index.json"
    path.write_text(json.dumps({"0": ["<a_1>", "<b_2>"], "5": ["<a_1>", "<x_2>"]}))
    with pytest.raises(ValueError, match="item 5"):
        load_lcrec_index(path)
    path.write_text(json.dumps({"0": ["<a_1>", "<b_2>"], "5": ["<a_1>", "<b_3>"]}))
    with pytest.raises(ValueError, match=r"not in the catalogue, e.g. \[5\]"):
        load_lcrec_index(path, known_items=[0, 1])
    path.write_text('{"0": ["<a_1>"],\n')
    with pytest.raises(ValueError, match=r"D\.index\.json:2:1: malformed JSON"):
        load_lcrec_index(path)


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
