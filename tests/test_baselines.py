"""Most-popular and SASRec on a small synthetic catalogue with a strong next-item pattern."""

import math

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from lcrec.evaluation import UserSelection
from lcrec.evaluation.baselines import MostPopular, SASRec, SASRecConfig, run_baseline
from lcrec.evaluation.baselines.sasrec import training_windows

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NUM_ITEMS = 40


def successor_dataset(num_users: int = 60, seed: int = 0) -> DatasetDict:
    """Each user walks the catalogue in steps of +1 from a random start: the next item is predictable."""
    rng = np.random.default_rng(seed)
    splits = {"train": [], "validation": [], "test": []}
    for user in range(num_users):
        start, length = int(rng.integers(NUM_ITEMS)), int(rng.integers(6, 12))
        sequence = [(start + step) % NUM_ITEMS for step in range(length)]
        for split, cut in (("train", 3), ("validation", 2), ("test", 1)):
            splits[split].append(
                {"user_id": user, "raw_user_id": f"u{user}", "history": sequence[:-cut], "target": sequence[-cut]}
            )
    items = [
        {"item_id": i, "raw_id": f"i{i}", "title": f"item {i}", "description": "", "brand": "", "categories": ""}
        for i in range(NUM_ITEMS)
    ]
    return DatasetDict(
        {"items": Dataset.from_list(items), **{name: Dataset.from_list(rows) for name, rows in splits.items()}}
    )


def test_most_popular_counts_and_ranking():
    model = MostPopular.fit([[0, 1, 1], [1, 2], [2]], num_items=4)
    assert model.counts.tolist() == [1, 3, 2, 0]
    assert model.score([[0], [3]]).shape == (2, 4)
    with pytest.raises(ValueError, match="outside"):
        MostPopular.fit([[5]], num_items=4)


def row(user: int, history: list[int], target: int) -> dict:
    return {"user_id": user, "raw_user_id": str(user), "history": history, "target": target}


def test_most_popular_record_hand_computed():
    dataset = DatasetDict(
        {
            "items": Dataset.from_list(
                [
                    {"item_id": i, "raw_id": str(i), "title": "", "description": "", "brand": "", "categories": ""}
                    for i in range(3)
                ]
            ),
            # Train sequences [0, 1, 1] and [1, 2]: counts 0 -> 1, 1 -> 3, 2 -> 1, so the ranking is [1, 0, 2].
            "train": Dataset.from_list([row(0, [0, 1], 1), row(1, [1], 2)]),
            "validation": Dataset.from_list([row(0, [0, 1], 1), row(1, [1], 2)]),
            "test": Dataset.from_list([row(0, [0], 1), row(1, [1], 2)]),
        }
    )
    record = run_baseline("pop", dataset)
    # User 0's target 1 is 1st, user 1's target 2 is 3rd.
    assert record["HR@1"] == pytest.approx(0.5) and record["HR@5"] == 1.0
    assert record["NDCG@5"] == pytest.approx((1 + 0.5) / 2)
    excluded = run_baseline("pop", dataset, UserSelection(exclude_history=True))
    # Without their histories: user 0 gets [1, 2] (target 1st), user 1 gets [0, 2] (target 2nd).
    assert excluded["HR@1"] == pytest.approx(0.5) and excluded["NDCG@5"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert excluded["exclude_history"] is True and record["exclude_history"] is False
    with pytest.raises(ValueError, match="unknown baseline"):
        run_baseline("bpr", dataset)
    # The validation split: its users and targets (user 0's validation target 1 is first, user 1's target 2 third).
    on_validation = run_baseline("pop", dataset, UserSelection(split="valid"))
    assert on_validation["split"] == "validation" and on_validation["NDCG@5"] == pytest.approx((1 + 0.5) / 2)


def test_training_windows_cover_every_transition_once():
    inputs, targets = training_windows([[0, 1, 2, 3, 4, 5, 6]], max_len=3)
    pairs = {(int(i), int(t)) for row_i, row_t in zip(inputs, targets) for i, t in zip(row_i, row_t) if t > 0}
    assert pairs == {(a + 1, a + 2) for a in range(6)}
    assert int((targets > 0).sum()) == 6


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_sasrec_learns_and_beats_random(tmp_path, loss):
    dataset = successor_dataset()
    config = SASRecConfig(
        max_len=10,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        inner_size=64,
        dropout=0.1,
        loss=loss,
        learning_rate=1e-2,
        batch_size=32,
        max_epochs=12,
        patience=12,
        seed=0,
    )
    record = run_baseline("sasrec", dataset, sasrec_config=config, model_dir=str(tmp_path))
    random_hr10 = 10 / NUM_ITEMS
    assert record["HR@10"] > random_hr10 + 0.3, record
    assert config.num_items == 0 and record["config"]["num_items"] == NUM_ITEMS  # the caller's config is not changed
    assert 1 <= record["best_epoch"] <= record["epochs"] and record["best_validation_NDCG@10"] > 0
    assert record["method"] == "sasrec" and record["num_users"] == 60 and record["invalid_rate"] == 0.0
    reloaded = SASRec.from_pretrained(tmp_path)
    histories = [list(h) for h in dataset["test"]["history"][:5]]
    np.testing.assert_allclose(reloaded.score(histories), SASRec.from_pretrained(tmp_path).score(histories))
    assert reloaded.score(histories).shape == (5, NUM_ITEMS)


def test_sasrec_config_errors():
    with pytest.raises(ValueError, match="loss"):
        SASRecConfig(loss="bpr")
    with pytest.raises(ValueError, match="divisible"):
        SASRecConfig(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        SASRecConfig(dropout=1.0)
    with pytest.raises(ValueError, match="num_items is 7 but the dataset has 40 items"):
        run_baseline("sasrec", successor_dataset(), sasrec_config=SASRecConfig(num_items=7))


def test_baseline_cli_writes_the_metrics_keys(tmp_path, capsys):
    import json

    from lcrec.cli import main
    from lcrec.data import save_prepared

    save_prepared(successor_dataset(num_users=20), {}, tmp_path / "data")
    assert (
        main(
            [
                "baseline",
                "--model",
                "pop",
                "--data",
                str(tmp_path / "data"),
                "--out",
                str(tmp_path / "pop.json"),
                "--max-users",
                "10",
            ]
        )
        == 0
    )
    record = json.loads((tmp_path / "pop.json").read_text())
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
    assert record["num_users"] == 10 and record["method"] == "most_popular"
    assert "most_popular" in capsys.readouterr().out
    # SASRec through the CLI: SASRecConfig's options parsed directly; weights saved; rerun replaces its own folder.
    argv = [
        "baseline",
        "--model",
        "sasrec",
        "--data",
        str(tmp_path / "data"),
        "--save_model",
        str(tmp_path / "sasrec"),
        "--max_epochs",
        "2",
        "--hidden_size",
        "16",
        "--num_heads",
        "2",
    ]
    assert main(argv) == 0 and main(argv) == 0
    assert SASRec.from_pretrained(tmp_path / "sasrec").config.hidden_size == 16
