"""Bad input: each case is a clear error naming the file and line/item, or a counted, reported drop."""

import gzip
import json

import pandas as pd
import pytest

from lcrec.cli import main
from lcrec.data import build_dataset, read_source
from lcrec.data.readers import parse_column_mapping, read_lcrec, read_recbole


def write_lcrec(folder, inter=None, items=None):
    inter = inter if inter is not None else {"0": [0, 1, 2], "1": [1, 2, 0]}
    items = items if items is not None else {str(n): {"title": f"T{n}"} for n in range(3)}
    (folder / "D.inter.json").write_text(json.dumps(inter) if not isinstance(inter, str) else inter)
    (folder / "D.item.json").write_text(json.dumps(items) if not isinstance(items, str) else items)


def write_amazon(folder, review_lines, meta_lines=None):
    (folder / "T.jsonl").write_text("".join(line + "\n" for line in review_lines))
    meta_lines = meta_lines or [json.dumps({"parent_asin": item, "title": f"Title {item}"}) for item in "abc"]
    (folder / "meta_T.jsonl").write_text("".join(line + "\n" for line in meta_lines))


def review(user, item, time):
    return json.dumps({"user_id": user, "parent_asin": item, "timestamp": time})


GOOD_REVIEWS = [
    review(u, i, t)
    for t, (u, i) in enumerate([("u", "a"), ("u", "b"), ("u", "c"), ("v", "a"), ("v", "b"), ("v", "c")])
]


def test_malformed_json_file_names_file_line_and_column(tmp_path):
    write_lcrec(tmp_path, inter='{"0": [0, 1, 2],\n "1": [1, 2 0]}')
    with pytest.raises(ValueError, match=r"D\.inter\.json:2:\d+: malformed JSON"):
        read_lcrec(tmp_path)


def test_wrong_json_shapes_name_the_item(tmp_path):
    write_lcrec(tmp_path, items={"0": {"title": "ok"}, "1": "just a string"})
    with pytest.raises(ValueError, match=r"D\.item\.json: item '1': expected an object"):
        read_lcrec(tmp_path)
    write_lcrec(tmp_path, inter={"7": 3})
    with pytest.raises(ValueError, match=r"user '7': expected a list of item ids"):
        read_lcrec(tmp_path)


def test_malformed_json_line_is_an_error_or_a_counted_drop(tmp_path):
    write_amazon(tmp_path, GOOD_REVIEWS[:2] + ['{"user_id": "u", "parent_asin": '] + GOOD_REVIEWS[2:])
    with pytest.raises(ValueError, match=r"T\.jsonl:3: not a JSON object"):
        read_source(tmp_path, "amazon2023")
    raw = read_source(tmp_path, "amazon2023", on_bad="drop")
    assert len(raw.interactions) == 6
    _, stats = build_dataset(raw, kcore=0)
    assert {
        "stage": "read",
        "reason": "malformed line in T.jsonl",
        "interactions": 1,
        "items": 0,
        "users": 0,
    } in stats["drops"]


def test_python_literal_metadata_lines_are_read_and_garbage_is_reported(tmp_path):
    meta = [
        json.dumps({"asin": "a", "title": "A"}),
        repr({"asin": "b", "title": "B", "description": ["It's fine"]}),
        "<html>oops</html>",
    ]
    with gzip.open(tmp_path / "meta_T.json.gz", "wt") as handle:
        handle.write("\n".join(meta) + "\n")
    (tmp_path / "T.csv").write_text("a,u,5,1\nb,u,5,2\n")
    with pytest.raises(ValueError, match=r"meta_T\.json\.gz:3: not a JSON object"):
        read_source(tmp_path / "T.csv")
    raw = read_source(tmp_path / "T.csv", on_bad="drop")
    assert raw.items.set_index("item").loc["b", "description"] == "It's fine"


def test_malformed_csv_row_is_an_error_or_a_counted_drop(tmp_path):
    (tmp_path / "log.csv").write_text("user,item,timestamp,title\nu,a,1,A\nu,b,2\nu,c,3,C\n")
    with pytest.raises(ValueError, match=r"log\.csv:3: expected 4 fields, found 3"):
        read_source(tmp_path / "log.csv")
    raw = read_source(tmp_path / "log.csv", on_bad="drop")
    assert list(raw.interactions["item"]) == ["a", "c"]
    assert raw.drops[0].interactions == 1


def test_missing_columns_are_named(tmp_path):
    (tmp_path / "D.inter").write_text("user_id:token\tmovie:token\n1\t2\n")
    (tmp_path / "D.item").write_text("item_id:token\ttitle:token_seq\n2\tx\n")
    with pytest.raises(ValueError, match=r"D\.inter: missing column\(s\) \['item_id'\]"):
        read_recbole(tmp_path)
    (tmp_path / "log.csv").write_text("uid,iid\n1,2\n")
    with pytest.raises(ValueError, match=r"log\.csv: missing column\(s\) for \['user', 'item'\]"):
        read_source(tmp_path / "log.csv")
    with pytest.raises(ValueError, match=r"mapped column\(s\) not found: \['timestamp=when'\]"):
        read_source(
            tmp_path / "log.csv",
            columns={"user": "uid", "item": "iid", "timestamp": "when"},
            items=tmp_path / "log.csv",
        )
    with pytest.raises(ValueError, match="unknown field 'rating'"):
        parse_column_mapping("user=uid,rating=r", ("user", "item"))
    write_amazon(tmp_path, [json.dumps({"reviewer": "u", "parent_asin": "a", "timestamp": 1})])
    with pytest.raises(ValueError, match=r"no record has the field\(s\) \['user_id'\]"):
        read_source(tmp_path, "amazon2023")


def test_unknown_item_ids_duplicate_item_rows_and_empty_text_are_counted(tmp_path):
    write_lcrec(
        tmp_path,
        inter={"0": [0, 1, 2, 9, 3], "1": [1, 2, 0, 3]},
        items='{"0": {"title": "A"}, "1": {"title": "B"}, "2": {"title": "C"}, '
        '"3": {"title": "  ", "description": "<p></p>"}, "0": {"title": "again"}}',
    )
    _, stats = build_dataset(read_lcrec(tmp_path), kcore=0)
    reasons = {drop["reason"]: drop for drop in stats["drops"]}
    assert reasons["item not in the item file (no metadata)"]["interactions"] == 1
    assert reasons["item without text"]["interactions"] == 2 and reasons["item without text"]["items"] == 1
    assert stats["after"]["interactions"] == 6


def test_repeated_item_rows_in_metadata_keep_the_first(tmp_path):
    meta = [json.dumps({"parent_asin": "a", "title": "First"}), json.dumps({"parent_asin": "a", "title": "Second"})]
    meta += [json.dumps({"parent_asin": item, "title": item}) for item in "bc"]
    write_amazon(tmp_path, GOOD_REVIEWS, meta)
    tables, stats = build_dataset(read_source(tmp_path, "amazon2023"), kcore=0)
    assert {
        "stage": "items",
        "reason": "repeated item row (kept the first)",
        "interactions": 0,
        "items": 1,
        "users": 0,
    } in stats["drops"]
    assert tables["items"].to_pandas().set_index("raw_id").loc["a", "title"] == "First."


def test_non_utf8_text_is_an_error_with_the_line(tmp_path):
    (tmp_path / "log.csv").write_bytes(b"user,item,title\nu,a,fine\nu,b,caf\xe9\n")
    with pytest.raises(ValueError, match=r"log\.csv:3: not valid UTF-8"):
        read_source(tmp_path / "log.csv")
    write_amazon(tmp_path, GOOD_REVIEWS)
    (tmp_path / "meta_T.jsonl").write_bytes(
        b'{"parent_asin": "a", "title": "ok"}\n{"parent_asin": "b", "title": "caf\xe9"}\n'
    )
    with pytest.raises(ValueError, match=r"meta_T\.jsonl:2: not valid UTF-8"):
        read_source(tmp_path, "amazon2023")
    write_lcrec(tmp_path)
    (tmp_path / "D.item.json").write_bytes(b'{"0": {"title": "A"},\n"1": {"title": "caf\xe9"}}')
    with pytest.raises(ValueError, match=r"D\.item\.json:2: not valid UTF-8"):
        read_lcrec(tmp_path)


def test_non_numeric_timestamps_are_an_error_or_a_counted_drop(tmp_path):
    (tmp_path / "log.csv").write_text("user,item,timestamp,title\nu,a,1,A\nu,b,yesterday,B\nu,c,3,C\n")
    with pytest.raises(ValueError, match=r"log\.csv:3: timestamp 'yesterday' is not a finite number or an ISO date"):
        read_source(tmp_path / "log.csv")
    raw = read_source(tmp_path / "log.csv", on_bad="drop")
    assert list(raw.interactions["item"]) == ["a", "c"]
    assert [(drop.reason, drop.interactions) for drop in raw.drops] == [("bad timestamp", 1)]
    write_amazon(tmp_path, GOOD_REVIEWS[:1] + [json.dumps({"user_id": "u", "parent_asin": "b", "timestamp": "noon"})])
    with pytest.raises(ValueError, match=r"T\.jsonl:2: timestamp 'noon'"):
        read_source(tmp_path, "amazon2023")


def test_cli_prints_one_clean_error_line(tmp_path, capsys):
    source = tmp_path / "source"
    source.mkdir()
    write_lcrec(source, inter="{not json")
    code = main(["prepare", "--source", str(source), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert (
        err.startswith("lcrec prepare: error: ")
        and "D.inter.json:1:2: malformed JSON" in err
        and "Traceback" not in err
    )
    assert main(["prepare", "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_nothing_left_after_filtering_is_a_clear_error():
    raw_frame = pd.DataFrame({"user": ["u", "u", "u"], "item": ["a", "b", "c"]})
    from lcrec.data import RawDataset

    raw = RawDataset(raw_frame, pd.DataFrame({"item": ["a", "b", "c"], "title": ["A", "B", "C"]}), source="tiny")
    with pytest.raises(ValueError, match=r"tiny: nothing is left after filtering \(5-core\)"):
        build_dataset(raw, kcore=5)
