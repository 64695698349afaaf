"""Full-ranking evaluation of a tiny (untrained) LC-Rec model: coverage, validity, bad input, two processes."""

import json
import os
import socket

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from lcrec.data import save_prepared
from lcrec.evaluation import EvaluationConfig, evaluate_model, template_ids

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NUM_USERS, HISTORY = 11, 4  # an odd user count makes accelerate pad one process


def tiny_dataset(titles: dict[int, str]) -> DatasetDict:
    """The shared tiny catalogue (conftest) with users of equal-length histories (no padding, so batch
    composition cannot change scores)."""
    rng = np.random.default_rng(1)
    splits = {"train": [], "validation": [], "test": []}
    for user in range(NUM_USERS):
        sequence = rng.choice(len(titles), size=HISTORY + 3, replace=False).tolist()
        for split, cut in (("train", 3), ("validation", 2), ("test", 1)):
            splits[split].append(
                {
                    "user_id": user,
                    "raw_user_id": f"u{user}",
                    "history": sequence[-cut - HISTORY : -cut],
                    "target": sequence[-cut],
                }
            )
    items = [
        {"item_id": i, "raw_id": f"i{i}", "title": titles[i], "description": "", "brand": "", "categories": ""}
        for i in sorted(titles)
    ]
    return DatasetDict(
        {"items": Dataset.from_list(items), **{name: Dataset.from_list(rows) for name, rows in splits.items()}}
    )


@pytest.fixture(scope="module")
def dataset(item_titles):
    return tiny_dataset(item_titles)


@pytest.fixture(scope="module")
def model(lcrec_model):
    return lcrec_model


def test_every_user_once_and_all_items_valid(model, dataset, tmp_path):
    out = tmp_path / "metrics.json"
    record = evaluate_model(
        model, dataset, EvaluationConfig(templates="0,1", num_beams=20, batch_size=4), output_file=str(out)
    )
    assert json.loads(out.read_text()) == record
    for key in (
        "HR@1",
        "HR@5",
        "HR@10",
        "NDCG@5",
        "NDCG@10",
        "per_template",
        "num_users",
        "num_beams",
        "invalid_rate",
        "seconds",
        "users_per_second",
        "exclude_history",
    ):
        assert key in record
    assert record["num_users"] == NUM_USERS and record["num_beams"] == 20 and record["invalid_rate"] == 0.0
    assert (
        record["short_list_rate"] == 0.0 and record["short_at_k_rate"] == 0.0
    )  # all 20 beams came back: nothing invalid was dropped
    assert sorted(record["per_template"]) == ["0", "1"]
    # Random model: the mean lies between the templates' extremes and the cut-offs nest.
    assert record["template_min"]["HR@10"] <= record["HR@10"] <= record["template_max"]["HR@10"]
    assert record["HR@1"] <= record["HR@5"] <= record["HR@10"] <= 1.0


def test_exclusion_recorded_and_sample_of_users(model, dataset):
    record = evaluate_model(model, dataset, EvaluationConfig(templates="0", max_users=4, exclude_history=True))
    assert record["num_users"] == 4 and record["exclude_history"] is True and record["templates"] == [0]


def test_validation_split_and_beams_from_the_generation_config(model, dataset):
    """`split="valid"` is the validation split; num_beams=None takes the model's generation_config.num_beams."""
    record = evaluate_model(model, dataset, EvaluationConfig(split="valid", max_users=5))
    assert record["split"] == "validation" and record["num_users"] == 5
    assert record["num_beams"] == min(model.generation_config.num_beams, len(dataset["items"]))
    configured = model.generation_config.num_beams
    try:
        model.generation_config.num_beams = 12
        assert evaluate_model(model, dataset, EvaluationConfig(max_users=2))["num_beams"] == 12
        model.generation_config.num_beams = 4  # fewer than the largest cut-off: raised to K=10, as recommend() does
        assert evaluate_model(model, dataset, EvaluationConfig(max_users=2))["num_beams"] == 10
    finally:
        model.generation_config.num_beams = configured


def test_bad_input_errors(model, dataset):
    with pytest.raises(ValueError, match="num_beams \\(5\\) is smaller than the largest cut-off K=10"):
        EvaluationConfig(num_beams=5)
    with pytest.raises(ValueError, match="templates \\[99\\] do not exist"):
        template_ids("0,99", 2)
    with pytest.raises(ValueError, match="templates must be 'all' or comma-separated ids"):
        EvaluationConfig(templates="first")
    num_items = len(dataset["items"])
    bigger = DatasetDict(dict(dataset))
    bigger["items"] = Dataset.from_list(
        dataset["items"].to_list()
        + [{"item_id": num_items, "raw_id": "new", "title": "New", "description": "", "brand": "", "categories": ""}]
    )
    with pytest.raises(ValueError, match=f"lacks 1 of the dataset's {num_items + 1} items, e.g. \\[{num_items}\\]"):
        evaluate_model(model, bigger, EvaluationConfig(templates="0"))
    renamed = DatasetDict(dict(dataset))
    renamed["items"] = dataset["items"].map(lambda row: {"title": "Other " + row["title"]})
    with pytest.raises(
        ValueError, match="titles differ .* item 0: model 'red microscope 0' vs dataset 'Other red microscope 0'"
    ):
        evaluate_model(model, renamed, EvaluationConfig(templates="0"))


def test_unknown_items_in_test_users_are_counted_not_dropped(model, dataset):
    broken = DatasetDict(dict(dataset))
    rows = dataset["test"].to_list()
    rows[0]["history"] = [len(dataset["items"]) + 5] + rows[0]["history"]
    rows[1]["target"] = len(dataset["items"]) + 7
    broken["test"] = Dataset.from_list(rows)
    record = evaluate_model(model, broken, EvaluationConfig(templates="0"))
    assert record["num_users"] == NUM_USERS
    assert record["unknown_history_users"] == 1 and record["unknown_target_users"] == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _evaluate_as_rank(rank: int, world_size: int, port: int, model, dataset, config, output_file: str) -> None:
    """One forked process of a gloo group: what `torchrun` / `accelerate launch` set up, without re-importing."""
    import torch
    from accelerate import PartialState

    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    PartialState._reset_state()  # the parent's single-process state is inherited through fork
    evaluate_model(model, dataset, config, output_file=output_file)
    torch.distributed.destroy_process_group()


def test_two_processes_match_one(model, dataset, tmp_path):
    """Two gloo processes (an odd number of users, so one is padded) give the same record as one process."""
    from torch.multiprocessing import start_processes

    config = EvaluationConfig(templates="0,1", batch_size=3)
    single = evaluate_model(model, dataset, config)
    out = tmp_path / "metrics.json"
    start_processes(
        _evaluate_as_rank, args=(2, _free_port(), model, dataset, config, str(out)), nprocs=2, start_method="fork"
    )
    double = json.loads(out.read_text())
    assert double["num_processes"] == 2 and double["num_users"] == NUM_USERS
    for name in ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10"):
        assert double[name] == pytest.approx(single[name], abs=1e-9), name
    for template, metrics in single["per_template"].items():
        assert double["per_template"][template] == pytest.approx(metrics)


def test_cli_writes_metrics(model, dataset, tmp_path, capsys):
    from lcrec.cli import main

    model.save_pretrained(tmp_path / "model")
    save_prepared(dataset, {}, tmp_path / "data")
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(tmp_path / "model"),
                "--data",
                str(tmp_path / "data"),
                "--templates",
                "1",
                "--max-users",
                "3",
            ]
        )
        == 0
    )
    record = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert record["num_users"] == 3 and record["templates"] == [1]
    assert "LC-Rec" in capsys.readouterr().out
    # The folder's model card now shows the results.
    assert "HR@10" in (tmp_path / "model" / "README.md").read_text()
    out = tmp_path / "elsewhere" / "validation.json"
    argv = [
        "evaluate",
        "--model",
        str(tmp_path / "model"),
        "--data",
        str(tmp_path / "data"),
        "--split",
        "validation",
        "--out",
        str(out),
        "--max_users",
        "2",
    ]
    assert main(argv) == 0 and json.loads(out.read_text())["split"] == "validation"
    assert (
        main(["evaluate", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "data"), "--num-beams", "5"])
        == 2
    )
