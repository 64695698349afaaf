"""The preparation protocol: text cleaning, dedupe, items without text, k-core, ordering, ids, split, stats, saving."""

import itertools
import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest
from datasets import DatasetDict
from hypothesis import given, settings
from hypothesis import strategies as st

from lcrec.data import (
    RawDataset,
    build_dataset,
    clean_text,
    format_stats_table,
    kcore_mask,
    leave_one_out,
    load_prepared,
    load_stats,
    prepare_dataset,
)


def make_raw(rows, titles=None, timestamps=True):
    """rows: (user, item[, time]) tuples; every item gets a title unless `titles` says otherwise."""
    frame = pd.DataFrame([row[:2] for row in rows], columns=["user", "item"])
    if timestamps:
        frame["timestamp"] = [float(row[2]) for row in rows]
    titles = titles if titles is not None else {item: f"Item {item}" for item in frame["item"].unique()}
    items = pd.DataFrame({"item": list(titles), "title": list(titles.values())})
    return RawDataset(frame, items, source="fixture", format="test")


def test_clean_text_rules():
    values = pd.Series(['Rock &amp; Roll <br/>"Best"\nHits...', "  spaced   out  ", "", None, "x" * 2001, "done."])
    assert clean_text(values).tolist() == ["Rock & Roll Best Hits.", "spaced out.", "", "", "", "done."]
    assert clean_text(pd.Series(["Acme"]), end_with_period=False).tolist() == ["Acme"]


def test_order_dedupe_and_text_drops_are_counted():
    rows = [
        ("a", "x", 3),
        ("a", "y", 1),
        ("a", "x", 2),
        ("a", "z", 4),
        ("a", "w", 5),
        ("a", "v", 6),
        ("b", "y", 1),
        ("b", "z", 2),
        ("b", "x", 3),
    ]
    raw = make_raw(rows, titles={"x": "X", "y": "Y", "z": "Z", "w": "", "v": "V", "spare": "S"})
    tables, stats = build_dataset(raw, kcore=0)
    reasons = {drop["reason"]: drop for drop in stats["drops"]}
    assert reasons["repeated user-item pair (kept the first)"]["interactions"] == 1
    assert reasons["item without text"]["interactions"] == 1 and reasons["item without text"]["items"] == 1
    assert reasons["item file entry that no interaction uses"]["items"] == 1
    items = tables["items"].to_pandas()
    # a: y(1) x(2, first of the repeated pair) z(4) v(6); ids by first appearance, user a first.
    assert list(items["raw_id"]) == ["y", "x", "z", "v"]
    test = tables["test"].to_pandas()
    assert test.loc[0, "history"].tolist() + [test.loc[0, "target"]] == [0, 1, 2, 3]
    assert test.loc[1, "history"].tolist() + [test.loc[1, "target"]] == [0, 2, 1]
    assert stats["before"]["interactions"] - stats["after"]["interactions"] == sum(
        drop["interactions"] for drop in stats["drops"]
    )


def test_equal_timestamps_and_missing_timestamps_keep_file_order():
    rows = [("a", "p", 5), ("a", "q", 5), ("a", "r", 5), ("a", "s", 1)]
    expected = ["s", "p", "q", "r"]
    for raw in (make_raw(rows), make_raw(sorted(rows, key=lambda row: row[2]), timestamps=False)):
        tables, _ = build_dataset(raw, kcore=0)
        assert tables["items"]["raw_id"].to_pylist() == expected


def test_unknown_items_and_short_users_are_counted_drops():
    rows = [("a", "x", 1), ("a", "ghost", 2), ("a", "y", 3), ("a", "z", 4), ("b", "x", 1), ("b", "y", 2)]
    raw = make_raw(rows, titles={"x": "X", "y": "Y", "z": "Z"})
    tables, stats = build_dataset(raw, kcore=0)
    reasons = {drop["reason"]: drop for drop in stats["drops"]}
    assert reasons["item not in the item file (no metadata)"]["interactions"] == 1
    assert reasons["user with < 3 interactions (too short to split)"] == {
        "stage": "split",
        "reason": "user with < 3 interactions (too short to split)",
        "interactions": 2,
        "items": 0,
        "users": 1,
    }
    assert tables["test"].num_rows == 1


def reference_kcore(edges, k):
    """The maximal k-core by brute force: the union of all vertex sets whose induced subgraph has min degree >= k."""
    users = sorted({u for u, _ in edges})
    items = sorted({i for _, i in edges})
    vertices = [("u", u) for u in users] + [("i", i) for i in items]
    best = set()
    for size in range(len(vertices) + 1):
        for chosen in itertools.combinations(vertices, size):
            chosen = set(chosen)
            induced = [(u, i) for u, i in edges if ("u", u) in chosen and ("i", i) in chosen]
            degree = {vertex: 0 for vertex in chosen}
            for u, i in induced:
                degree[("u", u)] += 1
                degree[("i", i)] += 1
            if all(count >= k for count in degree.values()):
                best |= chosen
    return {(u, i) for u, i in edges if ("u", u) in best and ("i", i) in best}


edge_sets = st.sets(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=16).filter(
    lambda edges: len({u for u, _ in edges}) + len({i for _, i in edges}) <= 9
)


@settings(max_examples=60, deadline=None)
@given(edges=edge_sets, k=st.integers(1, 3))
def test_kcore_is_the_maximal_k_core(edges, k):
    edges = sorted(edges)
    users = np.array([u for u, _ in edges], dtype=np.int64)
    items = np.array([i for _, i in edges], dtype=np.int64)
    keep = kcore_mask(users, items, k, k)
    kept = {edge for edge, flag in zip(edges, keep) if flag}
    # It is a k-core ...
    for side in (0, 1):
        counts = pd.Series([edge[side] for edge in kept]).value_counts()
        assert (counts >= k).all()
    # ... and nothing more was removed than needed.
    assert kept == reference_kcore(edges, k)


def peel_one_at_a_time(edges, k):
    """Reference: remove one vertex of degree < k at a time until none is left (the k-core is unique)."""
    edges = set(edges)
    while True:
        degree = {}
        for u, i in edges:
            degree[("u", u)] = degree.get(("u", u), 0) + 1
            degree[("i", i)] = degree.get(("i", i), 0) + 1
        weak = next((vertex for vertex, count in sorted(degree.items()) if count < k), None)
        if weak is None:
            return edges
        side, name = weak
        edges = {(u, i) for u, i in edges if (u if side == "u" else i) != name}


@settings(max_examples=30, deadline=None)
@given(st.sets(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=300), st.integers(0, 6))
def test_kcore_matches_reference_on_larger_graphs(pairs, k):
    pairs = sorted(pairs)
    users = np.array([u for u, _ in pairs], dtype=np.int64)
    items = np.array([i for _, i in pairs], dtype=np.int64)
    keep = kcore_mask(users, items, k, k)
    assert {pair for pair, flag in zip(pairs, keep) if flag} == peel_one_at_a_time(pairs, k)


def test_leave_one_out_contract():
    users = np.array([0, 0, 0, 0, 1, 1, 1])
    items = np.array([5, 6, 7, 8, 9, 5, 6])
    tables = leave_one_out(users, items, np.array(["a", "b"]))
    as_pairs = {
        split: [(row["history"], row["target"]) for row in table.to_pylist()] for split, table in tables.items()
    }
    assert as_pairs["train"] == [([5], 6), ([], 9)]
    assert as_pairs["validation"] == [([5, 6], 7), ([9], 5)]
    assert as_pairs["test"] == [([5, 6, 7], 8), ([9, 5], 6)]
    assert tables["test"]["raw_user_id"].to_pylist() == ["a", "b"]
    with pytest.raises(ValueError, match="user 'b' has 2 interactions"):
        leave_one_out(np.array([0, 0, 0, 1, 1]), np.arange(5), np.array(["a", "b"]))


def test_stats_and_table(tmp_path):
    rows = [(u, i, t) for t, (u, i) in enumerate(itertools.product("abcdef", "pqrstu")) if (ord(u) + ord(i)) % 5]
    rows.append(("g", "p", 99))
    dataset = prepare_dataset(make_raw(rows), kcore=3, output_dir=tmp_path / "prepared")
    stats = load_stats(tmp_path / "prepared")
    assert stats["before"]["interactions"] == len(rows)
    assert stats["before"]["users"] == 7
    after = stats["after"]
    assert after["users"] == dataset["test"].num_rows == 6
    assert after["interactions"] == sum(len(row["history"]) + 1 for row in dataset["test"])
    assert after["sparsity"] == pytest.approx(1 - after["interactions"] / (after["users"] * after["items"]))
    lengths = [len(row["history"]) + 1 for row in dataset["test"]]
    assert after["sequence_length"] == {
        "min": min(lengths),
        "mean": round(float(np.mean(lengths)), 2),
        "median": float(np.median(lengths)),
        "max": max(lengths),
    }
    table = format_stats_table(stats)
    assert "k-core: user or item with < 3 interactions" in table and "users" in table
    assert json.loads((tmp_path / "prepared" / "stats.json").read_text())["kcore"] == 3


def test_saved_folder_round_trips_and_is_validated(tmp_path):
    rows = [(u, i, n) for n, (u, i) in enumerate(itertools.product("abcd", "wxyz"))]
    prepare_dataset(make_raw(rows), kcore=2, output_dir=tmp_path / "ok")
    dataset = load_prepared(tmp_path / "ok")
    assert dataset["items"].column_names == ["item_id", "raw_id", "title", "description", "brand", "categories"]
    assert dataset["train"].column_names == ["user_id", "raw_user_id", "history", "target"]
    assert str(dataset["train"].features["history"].feature.dtype) == "int64"
    assert dataset["items"]["title"][0] == "Item w."
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        load_prepared(tmp_path)
    broken = DatasetDict(dict(dataset) | {"validation": dataset["validation"].select(range(2))})
    broken.save_to_disk(str(tmp_path / "broken"))
    shutil.copy(tmp_path / "ok" / "stats.json", tmp_path / "broken" / "stats.json")
    with pytest.raises(ValueError, match="split 'validation' must have one row per user"):
        load_prepared(tmp_path / "broken")
    DatasetDict(dict(dataset) | {"items": dataset["items"].remove_columns("brand")}).save_to_disk(
        str(tmp_path / "broken2")
    )
    shutil.copy(tmp_path / "ok" / "stats.json", tmp_path / "broken2" / "stats.json")
    with pytest.raises(ValueError, match=r"split 'items' lacks column\(s\) \['brand'\]"):
        load_prepared(tmp_path / "broken2")


def test_folders_with_the_old_valid_split_load_renamed_with_a_notice(tmp_path, caplog):
    rows = [(u, i, n) for n, (u, i) in enumerate(itertools.product("abcd", "wxyz"))]
    dataset = prepare_dataset(make_raw(rows), kcore=2, output_dir=tmp_path / "new")
    old = DatasetDict({("valid" if name == "validation" else name): split for name, split in dataset.items()})
    old.save_to_disk(str(tmp_path / "old"))
    shutil.copy(tmp_path / "new" / "stats.json", tmp_path / "old" / "stats.json")
    with caplog.at_level("WARNING", logger="lcrec.data"):
        loaded = load_prepared(tmp_path / "old")
    assert list(loaded) == list(dataset) and "valid" not in loaded
    assert loaded["validation"]["target"] == dataset["validation"]["target"]
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "split 'valid' is read as 'validation'" in warnings[0]


def test_kcore_zero_turns_filtering_off_and_negative_is_an_error():
    rows = [("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "x", 1), ("b", "y", 2), ("b", "q", 3)]
    tables, stats = build_dataset(make_raw(rows), kcore=0)
    assert stats["drops"] == [] and tables["items"].num_rows == 4
    with pytest.raises(ValueError, match="kcore must be an integer >= 0"):
        build_dataset(make_raw(rows), kcore=-1)
