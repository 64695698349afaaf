"""`lcrec prepare` end to end: the bundled MovieLens-100K and a CSV export with a column mapping."""

import importlib.util
import json

import pytest

from lcrec.cli import main
from lcrec.data import load_prepared, load_stats


def test_prepare_movielens_100k(tmp_path, capsys):
    if importlib.util.find_spec("recbole") is None:
        pytest.skip("recbole (MovieLens-100K files) not installed: pip install --no-deps recbole==1.2.1")
    assert main(["prepare", "--source", "ml-100k", "--out", str(tmp_path / "ml100k")]) == 0
    table = capsys.readouterr().out
    assert "ml-100k (recbole), 5-core" in table
    users, items, interactions = (line.split() for line in table.splitlines()[3:6])
    assert (
        users[:2] == ["users", "943"]
        and items[:2] == ["items", "1,682"]
        and interactions[:2] == ["interactions", "100,000"]
    )
    stats = load_stats(tmp_path / "ml100k")
    assert stats["before"]["interactions"] == 100_000
    assert stats["after"]["users"] == 943 and stats["after"]["items"] < 1682
    dataset = load_prepared(tmp_path / "ml100k")
    assert dataset["items"].num_rows == stats["after"]["items"]
    assert all(title.endswith(").") for title in dataset["items"]["title"][:20])


def test_prepare_csv_with_mapping_and_item_file(tmp_path, capsys):
    rows = [f"{user},{item},{time}" for time, (user, item) in enumerate((u, i) for u in "abcd" for i in "pqrs")]
    (tmp_path / "log.csv").write_text("member,product,ts\n" + "\n".join(rows) + "\n")
    (tmp_path / "items.csv").write_text('sku,name,about\np,Pen,"A pen, blue"\nq,Quill,Old\nr,Ruler,\ns,,\n')
    code = main(
        [
            "prepare",
            "--source",
            str(tmp_path / "log.csv"),
            "--format",
            "csv",
            "--out",
            str(tmp_path / "out"),
            "--kcore",
            "3",
            "--columns",
            "user=member,item=product,timestamp=ts",
            "--items",
            str(tmp_path / "items.csv"),
            "--item-columns",
            "item=sku,title=name,description=about",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "filter: item without text" in out
    dataset = load_prepared(tmp_path / "out")
    assert dataset["items"]["title"] == ["Pen.", "Quill.", "Ruler."]
    assert dataset["items"]["description"] == ["A pen, blue.", "Old.", ""]
    assert dataset["test"][0] == {"user_id": 0, "raw_user_id": "a", "history": [0, 1], "target": 2}
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["after"]["interactions"] == 12


def test_cli_format_choices_match_the_readers():
    from lcrec.commands import prepare
    from lcrec.data import FORMATS

    assert prepare.FORMATS == FORMATS
