"""Probes: hostile but realistic input through the CLI, the Python API and the HTTP server.

Each case ends in a clear one-line error naming the input (file:line, item, field or request field), or a drop
counted with its reason in stats.json; never a traceback, a hang, silent data loss or a silently wrong result.
Sections: output folders, the item index, raw data files, `recommend()` inputs, the HTTP server, CLI failures.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest

from lcrec.cli import main
from lcrec.data import (
    RawDataset,
    build_dataset,
    load_prepared,
    load_stats,
    prepare_dataset,
    read_source,
)
from lcrec.data.readers import parse_column_mapping, read_lcrec
from lcrec.indexing import (
    ItemIndex,
    RQVAEConfig,
    RQVAETrainingArguments,
    build_index,
    check_index_covers_dataset,
)
from lcrec.io_utils import (
    OUTPUT_MARKER,
    OutputFolderError,
    atomic_dir,
    check_output_dir,
    check_output_file,
    read_json,
)


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of `lcrec ARGV`; an expected failure is exactly one `lcrec CMD: error: ...` line."""
    code = main(argv)
    err = capsys.readouterr().err
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith(f"lcrec {argv[0]}: error: ")]
        assert len(errors) == 1 and "Traceback" not in err, err
    return code, err


def write_lcrec(folder: Path, inter: dict | str, items: dict | str | None = None, index: dict | None = None) -> Path:
    """An LC-Rec folder (D.inter.json, D.item.json unless items is None, D.index.json when given)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "D.inter.json").write_text(inter if isinstance(inter, str) else json.dumps(inter), encoding="utf-8")
    if items is not None:
        (folder / "D.item.json").write_text(items if isinstance(items, str) else json.dumps(items), encoding="utf-8")
    if index is not None:
        (folder / "D.index.json").write_text(json.dumps(index), encoding="utf-8")
    return folder


SEQUENCES = {"0": [0, 1, 2, 3], "1": [1, 2, 3, 0], "2": [2, 3, 0, 1]}
TITLES = {str(item): {"title": f"Item {item}"} for item in range(4)}


def no_hidden_leftovers(folder: Path) -> bool:
    """No temporary or backup folders (`.NAME.*.tmp`, `.NAME.old-*`) next to outputs in `folder`."""
    return not [
        path.name
        for path in folder.iterdir()
        if path.name.startswith(".") and (".tmp" in path.name or ".old-" in path.name)
    ]


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder where nothing can be created (a read-only folder; as root, a read-only system mount)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").mkdir()
    except OSError:
        return folder
    (folder / "probe").rmdir()
    for candidate in (Path("/sys"), Path("/proc")):
        try:
            (candidate / "lcrec-probe").mkdir()
        except OSError:
            return candidate
        (candidate / "lcrec-probe").rmdir()
    pytest.skip("no unwritable folder on this machine (root without read-only mounts)")


# --------------------------------------------------------------------------------------------- output folders


def test_prepare_never_replaces_its_own_source_or_a_folder_holding_it(tmp_path):
    source = write_lcrec(tmp_path / "raw" / "beauty", SEQUENCES, TITLES)
    before = sorted(path.name for path in source.iterdir())
    for out, reason in (
        (source, "is the input"),
        (source.parent, "holds the input"),
        (source / "prepared", "is inside the input"),
    ):
        with pytest.raises(OutputFolderError, match=reason):
            prepare_dataset(source, "lcrec", output_dir=out, kcore=0)
    assert sorted(path.name for path in source.iterdir()) == before
    assert no_hidden_leftovers(source) and no_hidden_leftovers(source.parent)


def test_a_non_empty_folder_is_replaced_only_when_it_is_our_output_or_overwrite_is_asked(tmp_path):
    source = write_lcrec(tmp_path / "source", SEQUENCES, TITLES)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="not empty and was not written by `lcrec prepare`.*--overwrite"):
        prepare_dataset(source, "lcrec", output_dir=out, kcore=0)
    assert (out / "notes.txt").read_text() == "mine"
    prepare_dataset(source, "lcrec", output_dir=out, kcore=0, overwrite=True)
    assert not (out / "notes.txt").exists() and (out / OUTPUT_MARKER).is_file()
    prepare_dataset(source, "lcrec", output_dir=out, kcore=1)  # a previous prepare output: replaced without asking
    assert load_stats(out)["kcore"] == 1 and no_hidden_leftovers(tmp_path)
    with pytest.raises(OutputFolderError, match="not written by `lcrec index`"):
        check_output_dir(out, "index")


def test_an_existing_file_is_never_replaced_by_an_output_folder(tmp_path):
    source = write_lcrec(tmp_path / "source", SEQUENCES, TITLES)
    target = tmp_path / "results.csv"
    target.write_text("precious")
    with pytest.raises(OutputFolderError, match="exists and is not a folder"):
        prepare_dataset(source, "lcrec", output_dir=target, kcore=0)
    with pytest.raises(OutputFolderError, match="exists and is not a folder"):
        with atomic_dir(target):
            pass
    assert target.read_text() == "precious" and no_hidden_leftovers(tmp_path)


def test_unwritable_outputs_are_refused_before_any_work(tmp_path, monkeypatch):
    source = write_lcrec(tmp_path / "source", SEQUENCES, TITLES)
    (tmp_path / "file.txt").write_text("x")

    def must_not_read(*args, **kwargs):
        raise AssertionError("the source was read before the output folder was checked")

    monkeypatch.setattr("lcrec.data.prepared.read_source", must_not_read)
    with pytest.raises(OutputFolderError, match=r"cannot be created: .*file\.txt is a file"):
        prepare_dataset(source, "lcrec", output_dir=tmp_path / "file.txt" / "out")
    with pytest.raises(OutputFolderError, match="cannot be created in"):
        prepare_dataset(source, "lcrec", output_dir=unwritable_folder(tmp_path) / "out")
    monkeypatch.chdir(tmp_path / "source")
    with pytest.raises(OutputFolderError, match="is the current folder"):
        prepare_dataset(tmp_path / "source", "lcrec", output_dir=".")


def test_cli_output_errors_are_one_line_before_the_work(tmp_path, capsys, monkeypatch):
    source = write_lcrec(tmp_path / "source", SEQUENCES, TITLES)
    (tmp_path / "file.txt").write_text("x")
    code, err = run_cli(["prepare", "--source", str(source), "--out", str(tmp_path / "file.txt" / "out")], capsys)
    assert code == 2 and "file.txt is a file" in err
    code, err = run_cli(["prepare", "--source", str(source), "--out", str(source)], capsys)
    assert code == 2 and "is the input" in err
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(["prepare", "--source", str(source), "--out", "."], capsys)
    assert code == 2 and "is the current folder" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file.txt", "source"]


def test_a_single_file_output_replaces_only_its_own_earlier_output(tmp_path, capsys):
    # A metrics JSON or a preset YAML at --out may be replaced; any other file there is the user's and is kept.
    dataset = make_prepared(tmp_path / "data", "a")
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    argv = ["baseline", "--model", "pop", "--data", str(dataset), "--out"]
    code, err = run_cli([*argv, str(notes)], capsys)
    assert code == 2 and "not a file `lcrec baseline` wrote" in err and notes.read_text() == '{"mine": true}'
    assert run_cli([*argv, str(tmp_path / "pop.json")], capsys)[0] == 0
    assert run_cli([*argv, str(tmp_path / "pop.json")], capsys)[0] == 0  # its own output: replaced
    assert run_cli([*argv, str(notes), "--overwrite"], capsys)[0] == 0 and "HR@10" in notes.read_text()
    preset = tmp_path / "mine.yaml"
    preset.write_text("learning_rate: 1.0e-3\n")
    index = index_for(dataset, tmp_path / "index.json")
    argv = ["preset", "--data", str(dataset), "--index", str(index), "--out", str(preset)]
    code, err = run_cli(argv, capsys)
    assert code == 2 and "not a file `lcrec preset` wrote" in err and preset.read_text() == "learning_rate: 1.0e-3\n"
    assert run_cli([*argv, "--overwrite"], capsys)[0] == 0 and run_cli(argv, capsys)[0] == 0


def test_single_file_outputs_are_checked_before_the_work(tmp_path):
    (tmp_path / "data.json").write_text("{}")
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputFolderError, match="is a folder; give the path of a file"):
        check_output_file(tmp_path / "folder")
    with pytest.raises(OutputFolderError, match="is the input"):
        check_output_file(tmp_path / "data.json", inputs=[tmp_path / "data.json"])
    with pytest.raises(OutputFolderError, match=r"data\.json is a file"):
        check_output_file(tmp_path / "data.json" / "metrics.json")
    assert check_output_file(tmp_path / "new" / "metrics.json") == tmp_path / "new" / "metrics.json"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data.json", "folder"]  # nothing created


def test_a_failed_write_or_swap_keeps_the_old_folder_and_leaves_nothing_behind(tmp_path, monkeypatch):
    target = tmp_path / "out"
    with atomic_dir(target, command="prepare") as tmp:
        (tmp / "v1.txt").write_text("1")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_dir(target, command="prepare") as tmp:
            (tmp / "v2.txt").write_text("2")
            raise RuntimeError("disk full")
    assert sorted(path.name for path in target.iterdir()) == [OUTPUT_MARKER, "v1.txt"]
    real_replace, calls = os.replace, []

    def failing_second_rename(source, destination):
        calls.append(Path(source).name)
        if len(calls) == 2:  # the new folder onto the target, after the old one moved aside
            raise OSError("simulated rename failure")
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", failing_second_rename)
    with pytest.raises(OSError, match="simulated"):
        with atomic_dir(target, command="prepare") as tmp:
            (tmp / "v3.txt").write_text("3")
    monkeypatch.undo()
    assert sorted(path.name for path in target.iterdir()) == [OUTPUT_MARKER, "v1.txt"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o777 & ~current_umask())
    assert oct((target / "v1.txt").stat().st_mode & 0o777) == oct(0o666 & ~current_umask())


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------------------- item index


@pytest.fixture
def saved_index(tmp_path) -> Path:
    path = tmp_path / "index.json"
    ItemIndex([0, 1, 2, 3], [[0, 1], [1, 0], [1, 1], [2, 3]], [4, 4], raw_ids=["a", "b", "c", "d"]).save(path)
    return path


def edit_items(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data["items"])
    path.write_text(json.dumps(data))


def test_tampered_index_files_are_refused_with_the_reason(saved_index):
    edit_items(saved_index, lambda items: items.update({"3": [1, 1]}))
    with pytest.raises(ValueError, match=r"index\.json: items 2 and 3 share the index <a_1><b_1>"):
        ItemIndex.load(saved_index)
    for bad, shown in ((55.7, "55.7"), (True, "True"), ("2", "'2'")):
        edit_items(saved_index, lambda items, bad=bad: items.update({"3": [2, bad]}))
        with pytest.raises(ValueError, match=rf"index\.json: item 3: code {shown} is not an integer"):
            ItemIndex.load(saved_index)
    edit_items(saved_index, lambda items: items.update({"0": [1, 0], "1": [0, 1], "3": [2, 3]}))  # two items swapped
    with pytest.raises(ValueError, match="do not match the index's recorded fingerprint"):
        ItemIndex.load(saved_index)


def test_an_index_with_items_removed_is_refused_against_the_expected_count(saved_index):
    index = ItemIndex.load(saved_index)
    ItemIndex(index.item_ids[:3], index.codes[:3], index.codebook_sizes).save(saved_index)
    with pytest.raises(ValueError, match="the index has 3 items, expected 4"):
        ItemIndex.from_path(saved_index, expected_num_items=4)


def test_a_saved_models_tampered_or_foreign_index_is_refused(make_lcrec_model, tmp_path):
    from lcrec.modeling_lcrec import LCRecForCausalLM

    folder = tmp_path / "model"
    make_lcrec_model("llama", tie=True).save_pretrained(folder)
    saved = ItemIndex.load(folder / "index.json")
    data = json.loads((folder / "index.json").read_text())
    first, second = saved.item_ids[:2]
    data["items"][str(first)], data["items"][str(second)] = data["items"][str(second)], data["items"][str(first)]
    (folder / "index.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="fingerprint"):
        LCRecForCausalLM.from_pretrained(folder)
    ItemIndex(saved.item_ids[1:], saved.codes[1:], saved.codebook_sizes).save(
        folder / "index.json"
    )  # consistent, smaller
    with pytest.raises(
        ValueError, match=f"has {saved.num_items - 1} items but the model was saved with {saved.num_items}"
    ):
        LCRecForCausalLM.from_pretrained(folder)


def make_prepared(folder: Path, prefix: str) -> Path:
    """A prepared dataset of 4 users over items named PREFIX0..PREFIX4 (same shape whatever the prefix)."""
    sequences = {f"u{user}": [f"{prefix}{(user + step) % 5}" for step in range(4)] for user in range(4)}
    rows = [(user, item, time) for user, items in sequences.items() for time, item in enumerate(items)]
    interactions = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    items = pd.DataFrame(
        {"item": [f"{prefix}{n}" for n in range(5)], "title": [f"Thing {prefix}{n}" for n in range(5)]}
    )
    prepare_dataset(RawDataset(interactions, items, source=prefix), kcore=0, output_dir=folder)
    return folder


def index_for(dataset_dir: Path, path: Path) -> Path:
    items = load_prepared(dataset_dir)["items"]
    codes = [[item // 4, item % 4] for item in items["item_id"]]
    ItemIndex(items["item_id"], codes, [4, 4], raw_ids=items["raw_id"]).save(path)
    return path


def test_tasks_refuses_the_index_of_another_dataset_of_the_same_size(tmp_path, capsys):
    ours, theirs = make_prepared(tmp_path / "ours", "a"), make_prepared(tmp_path / "theirs", "b")
    foreign = index_for(theirs, tmp_path / "theirs-index.json")
    with pytest.raises(ValueError, match=r"built for another dataset: item 0 is 'b\d' there but 'a\d'"):
        check_index_covers_dataset(ItemIndex.load(foreign), load_prepared(ours))
    check_index_covers_dataset(
        ItemIndex.load(index_for(ours, tmp_path / "our-index.json")), load_prepared(ours), exact=True
    )
    code, err = run_cli(
        ["tasks", "--data", str(ours), "--index", str(foreign), "--out", str(tmp_path / "mix")], capsys
    )
    assert code == 2 and "built for another dataset" in err and not (tmp_path / "mix").exists()


def test_cli_tasks_replaces_only_its_own_output_and_records_the_index_fingerprint(tmp_path, capsys):
    data = make_prepared(tmp_path / "data", "a")
    index = index_for(data, tmp_path / "index.json")
    out = tmp_path / "mix"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ["tasks", "--data", str(data), "--index", str(index), "--out", str(out), "--tasks", "seqrec"]
    code, err = run_cli(argv, capsys)
    assert code == 2 and "--overwrite" in err and (out / "keep.txt").read_text() == "mine"
    assert run_cli([*argv, "--overwrite"], capsys)[0] == 0 and not (out / "keep.txt").exists()
    assert read_json(out / "mix_info.json")["index_fingerprint"] == ItemIndex.load(index).fingerprint
    assert run_cli(argv, capsys)[0] == 0 and no_hidden_leftovers(tmp_path)  # its own output: replaced without asking


def test_a_release_without_item_texts_prepares_with_its_index_made_collision_free(tmp_path):
    inter = {str(user): [(user + step) % 6 for step in range(5)] for user in range(6)}
    released = {str(item): [f"<a_{item // 3}>", f"<b_{item % 3}>"] for item in range(6)}
    released["5"] = released["4"]  # LETTER-style: two items share one index
    source = write_lcrec(tmp_path / "release", inter, items=None, index=released)
    dataset = prepare_dataset(source, "lcrec", output_dir=tmp_path / "prepared", kcore=0)
    stats = load_stats(tmp_path / "prepared")
    assert stats["item_text"] is False and stats["drops"] == [] and dataset["items"].num_rows == 6
    index = ItemIndex.from_path(tmp_path / "prepared" / "released_index.json")
    check_index_covers_dataset(index, dataset, exact=True)
    moved = stats["released_index"]["moved_items"]
    assert stats["released_index"]["shared_code_tuples"] == 1 and [record["raw_id"] for record in moved] == ["5"]
    item_5 = dataset["items"]["raw_id"].index("5")
    assert index.tokens(item_5) == moved[0]["to"] != "<a_1><b_1>" and moved[0]["from"] == "<a_1><b_1>"
    with pytest.raises(
        FileNotFoundError, match=r"D\.item\.json: not found; .* needs item texts .* or a released index"
    ):
        read_lcrec(write_lcrec(tmp_path / "bare", inter))


# --------------------------------------------------------------------------------------------- raw data files


def test_repeated_users_and_items_in_lcrec_json_keep_the_first_and_are_counted(tmp_path):
    inter = '{"0": [0, 1, 2],\n "1": [1, 2, 0],\n "0": [2, 2, 2, 2]}'
    items = '{"0": {"title": "First"}, "1": {"title": "B"}, "2": {"title": "C"}, "0": {"title": "Second"}}'
    tables, stats = build_dataset(read_lcrec(write_lcrec(tmp_path / "d", inter, items)), kcore=0)
    assert {
        "stage": "read",
        "reason": "repeated user in D.inter.json (kept the first)",
        "interactions": 4,
        "items": 0,
        "users": 0,
    } in stats["drops"]
    assert {
        "stage": "items",
        "reason": "repeated item row (kept the first)",
        "interactions": 0,
        "items": 1,
        "users": 0,
    } in stats["drops"]
    assert tables["test"]["history"].to_pylist()[0] == [0, 1] and tables["items"]["title"].to_pylist()[0] == "First."


def test_empty_users_and_null_items_are_counted_drops(tmp_path):
    inter = {"0": [0, None, 1, 2], "1": [], "2": [1, 2, 0], "3": []}
    _, stats = build_dataset(read_lcrec(write_lcrec(tmp_path / "d", inter, TITLES)), kcore=0)
    assert {
        "stage": "read",
        "reason": "null item id in D.inter.json",
        "interactions": 1,
        "items": 0,
        "users": 0,
    } in stats["drops"]
    assert {
        "stage": "read",
        "reason": "user without interactions in D.inter.json",
        "interactions": 0,
        "items": 0,
        "users": 2,
    } in stats["drops"]
    with pytest.raises(ValueError, match=r"D\.inter\.json: user '0': item 1.5 is not an item id"):
        read_lcrec(write_lcrec(tmp_path / "e", {"0": [0, 1.5]}, TITLES))


@pytest.mark.parametrize("title", [{"en": "x"}, True, [["nested", {"a": 1}]]])
def test_non_string_titles_are_refused_naming_the_item_and_field(tmp_path, title):
    items = dict(TITLES) | {"2": {"title": title, "description": "fine"}}
    with pytest.raises(ValueError, match=r"D\.item\.json: item '2': field 'title' must be text"):
        read_lcrec(write_lcrec(tmp_path / "d", SEQUENCES, items))
    raw = read_lcrec(tmp_path / "d", on_bad="drop")
    assert (
        list(raw.items["item"]) == ["0", "1", "3"]
        and raw.drops[0].reason == "item with a non-text field in D.item.json"
    )
    meta = [json.dumps({"parent_asin": "a", "title": "ok"}), json.dumps({"parent_asin": "b", "title": title})]
    (tmp_path / "T.jsonl").write_text(
        "\n".join(
            json.dumps({"user_id": "u", "parent_asin": item, "timestamp": 1000 * n}) for n, item in enumerate("ab")
        )
    )
    (tmp_path / "meta_T.jsonl").write_text("\n\n".join(meta) + "\n")
    with pytest.raises(ValueError, match=r"meta_T\.jsonl:3: field 'title' must be text"):
        read_source(tmp_path / "T.jsonl", "amazon2023")


def test_item_ids_with_spaces_match_on_both_sides(tmp_path):
    inter = {" u1 ": [" 0", "1 ", 2], "u2": [1, " 2 ", "0"]}
    items = {" 0 ": {"title": "A"}, "1": {"title": "B"}, "2 ": {"title": "C"}}
    tables, stats = build_dataset(read_lcrec(write_lcrec(tmp_path / "d", inter, items)), kcore=0)
    assert stats["drops"] == [] and tables["items"]["raw_id"].to_pylist() == ["0", "1", "2"]
    assert tables["test"]["raw_user_id"].to_pylist() == ["u1", "u2"]
    (tmp_path / "log.csv").write_text("user,item,title\nu1, a,A\nu1,b ,B\nu1, c ,C\n")
    (tmp_path / "items.csv").write_text("item,title\na ,A\n b,B\nc,C\n")
    raw = read_source(tmp_path / "log.csv", items=tmp_path / "items.csv")
    assert list(raw.interactions["item"]) == ["a", "b", "c"] and list(raw.items["item"]) == ["a", "b", "c"]


@pytest.mark.parametrize("bad", ["inf", "-inf", "1e400", "nan"])
def test_non_finite_timestamps_are_refused_like_nan(tmp_path, bad):
    (tmp_path / "log.csv").write_text(f"user,item,timestamp,title\nu,a,100,A\nu,b,{bad},B\nu,c,300,C\n")
    with pytest.raises(ValueError, match=rf"log\.csv:3: timestamp '{bad}' is not a finite number"):
        read_source(tmp_path / "log.csv")
    raw = read_source(tmp_path / "log.csv", on_bad="drop")
    assert list(raw.interactions["item"]) == ["a", "c"] and raw.drops[0].reason == "bad timestamp"
    spelled = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(bad, bad)  # as JSON writers spell them
    reviews = [
        json.dumps({"user_id": "u", "parent_asin": "a", "timestamp": 1}),
        f'{{"user_id": "u", "parent_asin": "b", "timestamp": {spelled}}}',
    ]
    (tmp_path / "T.jsonl").write_text("\n".join(reviews) + "\n")
    (tmp_path / "meta_T.jsonl").write_text(json.dumps({"parent_asin": "a", "title": "A"}) + "\n")
    problem = (
        r"the record lacks \['timestamp'\]" if bad == "nan" else "timestamp .* is not a finite number"
    )  # NaN: no number
    with pytest.raises(ValueError, match=rf"T\.jsonl:2: {problem}"):
        read_source(tmp_path / "T.jsonl", "amazon2023")


def test_mixed_millisecond_and_second_timestamps_are_refused_or_dropped(tmp_path):
    rows = ["u,a,1600000000", "u,b,1600000100", "u,c,1600000200500", "v,a,1600000300", "v,b,1600000400"]
    (tmp_path / "log.csv").write_text("user,item,timestamp\n" + "\n".join(rows) + "\n")
    (tmp_path / "items.csv").write_text("item,title\na,A\nb,B\nc,C\n")
    with pytest.raises(
        ValueError,
        match=r"log\.csv:4: timestamp '1600000200500' looks like epoch milliseconds but most timestamps are seconds "
        r"\(e\.g\. line 2\)",
    ):
        read_source(tmp_path / "log.csv", items=tmp_path / "items.csv")
    raw = read_source(tmp_path / "log.csv", items=tmp_path / "items.csv", on_bad="drop")
    assert list(raw.interactions["item"]) == ["a", "b", "a", "b"]
    assert [(drop.reason, drop.interactions) for drop in raw.drops] == [("timestamp in milliseconds among seconds", 1)]


def test_a_column_mapped_twice_or_a_field_given_twice_is_refused():
    with pytest.raises(ValueError, match="field 'user' is given twice"):
        parse_column_mapping("user=user,user=timestamp", ("user", "item", "timestamp"))
    with pytest.raises(ValueError, match="column 'uid' is given to both 'user' and 'item'"):
        parse_column_mapping("user=uid,item=uid", ("user", "item", "timestamp"))


def test_unknown_text_fields_are_refused_before_embedding(tmp_path):
    items = [
        {"item_id": n, "raw_id": str(n), "title": f"t{n}", "description": "d", "brand": "", "categories": ""}
        for n in range(4)
    ]
    with pytest.raises(
        ValueError,
        match=r"unknown item text field\(s\) \['colour'\]; the items have brand, categories, description, title",
    ):
        build_index(items, tmp_path / "index", encoder="/nowhere/encoder", fields=["title", "colour"])
    assert not (tmp_path / "index").exists()


def test_csv_error_lines_stay_right_after_multiline_fields_and_blank_lines(tmp_path):
    header = "user,item,timestamp,title\n"
    body = 'u,a,1,"A title\nover two lines"\n\nu,b,2,B\nu,c,3\n'
    (tmp_path / "rows.csv").write_text(header + body)
    with pytest.raises(ValueError, match=r"rows\.csv:6: expected 4 fields, found 3"):
        read_source(tmp_path / "rows.csv")
    (tmp_path / "times.csv").write_text(header + 'u,a,1,"A\nB"\n\nu,b,noon,B\n')
    with pytest.raises(ValueError, match=r"times\.csv:5: timestamp 'noon'"):
        read_source(tmp_path / "times.csv")
    (tmp_path / "ids.csv").write_text(header + 'u,a,1,"A\n\nB"\n\n,b,2,B\n')
    with pytest.raises(ValueError, match=r"ids\.csv:6: empty user or item id"):
        read_source(tmp_path / "ids.csv")


def test_a_utf8_byte_order_mark_reads_the_same_in_json_and_csv(tmp_path):
    plain = read_lcrec(write_lcrec(tmp_path / "plain", SEQUENCES, TITLES))
    bom = write_lcrec(tmp_path / "bom", SEQUENCES, TITLES)
    for name in ("D.inter.json", "D.item.json"):
        (bom / name).write_bytes(b"\xef\xbb\xbf" + (bom / name).read_bytes())
    with_bom = read_lcrec(bom)
    pd.testing.assert_frame_equal(with_bom.interactions, plain.interactions)
    pd.testing.assert_frame_equal(with_bom.items, plain.items)
    (tmp_path / "log.csv").write_bytes(b"\xef\xbb\xbfuser,item,title\nu,a,A\n")
    assert list(read_source(tmp_path / "log.csv").interactions["user"]) == ["u"]
    (tmp_path / "T.jsonl").write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"user_id": "u", "parent_asin": "a", "timestamp": 5}).encode() + b"\n"
    )
    (tmp_path / "meta_T.jsonl").write_text(json.dumps({"parent_asin": "a", "title": "A"}) + "\n")
    assert list(read_source(tmp_path / "T.jsonl", "amazon2023").interactions["user"]) == ["u"]


def test_a_folder_where_a_file_is_expected_is_reported_as_a_folder(tmp_path):
    source = write_lcrec(tmp_path / "d", SEQUENCES)
    (source / "D.item.json").mkdir()
    with pytest.raises(IsADirectoryError, match=r"D\.item\.json: is a folder, expected a JSON file"):
        read_lcrec(source)
    (tmp_path / "log.csv").write_text("user,item\nu,a\n")
    (tmp_path / "items.csv").mkdir()
    with pytest.raises(IsADirectoryError, match=r"items\.csv: is a folder, expected the table file"):
        read_source(tmp_path / "log.csv", items=tmp_path / "items.csv")


def test_json_that_means_nothing_certain_is_refused_with_its_line(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"a": 1,\n "b": [1e400]}')
    with pytest.raises(ValueError, match=r"x\.json:2: number too large for a float: 1e400"):
        read_json(path)
    path.write_text('{"a": {"k": 1,\n  "k": 2}}')
    with pytest.raises(ValueError, match=r"x\.json:2: duplicate key 'k'"):
        read_json(path)


@pytest.mark.parametrize("length", [-5, 0])
def test_a_max_text_length_below_one_is_refused(tmp_path, capsys, length):
    source = write_lcrec(tmp_path / "d", SEQUENCES, TITLES)
    with pytest.raises(ValueError, match=f"max_text_length must be a positive number of characters, got {length}"):
        build_dataset(read_lcrec(source), kcore=0, max_text_length=length)
    code, err = run_cli(
        ["prepare", "--source", str(source), "--out", str(tmp_path / "out"), "--max_text_length", str(length)], capsys
    )
    assert code == 2 and "max_text_length" in err and not (tmp_path / "out").exists()


def test_codebook_size_one_fails_fast_instead_of_hanging(tmp_path):
    embeddings = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32)
    items = [{"item_id": n, "title": f"t{n}"} for n in range(12)]
    started = time.monotonic()
    with pytest.raises(
        ValueError,
        match=r"holds 1 items \(codebook sizes \[1, 1, 1, 1\]\) but the catalogue has 12: use 4 levels of 2 codes",
    ):
        build_index(items, tmp_path / "index", embeddings=embeddings, config=RQVAEConfig(codebook_sizes=[1, 1, 1, 1]))
    assert time.monotonic() - started < 30  # was an endless loop; any sane machine answers in milliseconds
    assert not (tmp_path / "index").exists()


def test_an_empty_encoder_folder_or_an_unavailable_device_is_a_clear_error(tmp_path):
    items = [{"item_id": n, "title": f"t{n}"} for n in range(4)]
    config, args = RQVAEConfig(codebook_sizes=[4, 4]), RQVAETrainingArguments(epochs=1, device="cpu", progress=False)
    (tmp_path / "empty-encoder").mkdir()
    with pytest.raises(ValueError, match=r"empty-encoder: not a model folder \(no config\.json\)"):
        build_index(
            items,
            tmp_path / "index",
            encoder=tmp_path / "empty-encoder",
            config=config,
            training_args=args,
            progress=False,
        )
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' is not available"):
            RQVAETrainingArguments(device="cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        RQVAETrainingArguments(device="gpu0")
    assert not (tmp_path / "index").exists()


# ---------------------------------------------------------------------------------------- recommend() inputs


@pytest.mark.parametrize(
    ("histories", "options", "error", "message"),
    [
        ([[1, 2]], {"top_k": 2.5}, TypeError, "top_k must be an integer, got 2.5"),
        ([[1, 2]], {"top_k": "3"}, TypeError, "top_k must be an integer, got '3'"),
        ([[None]], {}, TypeError, "history 0, position 0: item ids are integers, got None"),
        ("12", {}, TypeError, "got the string '12'"),
        (["12", "7"], {}, TypeError, "item ids are integers, got '12'"),
        ([[12.5]], {}, TypeError, "item ids are integers, got 12.5"),
        ([[True, 7]], {}, TypeError, "item ids are integers, got True"),
    ],
)
def test_recommend_refuses_what_it_would_misread(lcrec_model, one_torch_thread, histories, options, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(".", r"\.")):
        lcrec_model.recommend(histories, **options)


def test_recommend_takes_a_tensor_of_histories_as_the_same_lists(lcrec_model, one_torch_thread):
    import torch

    assert lcrec_model.recommend(torch.tensor([[1, 2], [3, 4]]), top_k=3) == lcrec_model.recommend(
        [[1, 2], [3, 4]], top_k=3
    )


def test_a_top_k_beyond_the_catalogue_says_so(lcrec_model, one_torch_thread, caplog):
    with caplog.at_level(logging.WARNING):
        (ranked,) = lcrec_model.recommend([[1, 2]], top_k=5000)
    catalogue = lcrec_model.tokenizer.item_index.num_items
    assert f"top_k=5000 exceeds the catalogue's {catalogue} distinct items" in caplog.text
    assert len(ranked) == catalogue == len({item for item, _ in ranked})


# --------------------------------------------------------------------------------------------- HTTP server


@pytest.fixture(scope="module")
def server(make_lcrec_model, tmp_path_factory):
    from lcrec.serving import Recommender, ServeConfig
    from lcrec.serving.api import create_app
    from lcrec.serving.server import BackgroundServer

    folder = tmp_path_factory.mktemp("hostile-serve") / "model"
    make_lcrec_model("llama", tie=True).save_pretrained(folder)
    recommender = Recommender.from_pretrained(
        str(folder), config=ServeConfig(max_batch=4, max_wait_ms=5), device="cpu"
    )
    with BackgroundServer(create_app(recommender)) as running:
        yield running


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"history": [1, 2], "top_k": NaN}', "top_k"),
        ('{"history": [1, Infinity]}', "history"),
        ('{"history": [1, 2], "top_k": -Infinity}', "top_k"),
        ('{"history": [1, 2], "top_k": 1e400}', "top_k"),
        ('{"histories": [[true, 7]]}', "histories"),
        ('{"history": [12.5]}', "history"),
        ('{"history": ["12"]}', "history"),
    ],
)
def test_the_server_answers_422_naming_the_field_and_keeps_the_connection(server, body, field):
    address = urlparse(server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        connection.request("POST", "/recommend", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        detail = response.read().decode()
        assert response.status == 422 and field in detail, detail
        connection.request("GET", "/health")  # the same keep-alive connection still answers
        health = connection.getresponse()
        assert health.status == 200 and json.loads(health.read())["status"] == "ok"
    finally:
        connection.close()


# ----------------------------------------------------------------------------------------------- CLI failures


def test_missing_or_wrong_model_paths_are_one_line_errors(tmp_path, capsys):
    code, err = run_cli(["recommend", "--model", str(tmp_path / "nonexistent"), "--history", "1", "2"], capsys)
    assert code == 2 and "nonexistent" in err
    dataset = make_prepared(tmp_path / "data", "a")
    code, err = run_cli(["recommend", "--model", str(dataset), "--history", "1", "2"], capsys)
    assert code == 2 and str(dataset) in err and "config.json" in err


def test_an_unavailable_device_is_a_one_line_error(make_lcrec_model, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    folder = tmp_path / "model"
    make_lcrec_model("llama", tie=True).save_pretrained(folder)
    dataset = make_prepared(tmp_path / "data", "a")
    code, err = run_cli(["serve", "--model", str(folder), "--device", "cuda", "--port", "0"], capsys)
    assert code == 2 and "cuda" in err and "CUDA" in err
    code, err = run_cli(
        ["index", "--data", str(dataset), "--out", str(tmp_path / "index"), "--device", "cuda"], capsys
    )
    assert code == 2 and "cuda" in err and not (tmp_path / "index").exists()


def test_cli_index_with_codebook_size_one_or_an_empty_encoder_fails_at_once(tmp_path, capsys):
    dataset = make_prepared(tmp_path / "data", "a")
    code, err = run_cli(
        ["index", "--data", str(dataset), "--out", str(tmp_path / "i1"), "--codebook_sizes", "1", "1", "1", "1"],
        capsys,
    )
    assert code == 2 and "index space holds 1 items" in err
    (tmp_path / "empty").mkdir()
    code, err = run_cli(
        ["index", "--data", str(dataset), "--out", str(tmp_path / "i2"), "--encoder", str(tmp_path / "empty")], capsys
    )
    assert code == 2 and "empty" in err and "sentencepiece" not in err
    assert not (tmp_path / "i1").exists() and not (tmp_path / "i2").exists()


@pytest.mark.parametrize("typed", ["1_000", "\uff11", "1.0", "-3", "0x10", " 7"])
def test_cli_history_takes_digits_only(tmp_path, capsys, typed):
    # int() would read "1_000" as 1000 and a full-width digit as 1: a different history than the one typed.
    code, err = run_cli(["recommend", "--model", str(tmp_path / "never-loaded"), "--history", "1", typed], capsys)
    assert code == 2 and repr(typed) in err and "position 1" in err
