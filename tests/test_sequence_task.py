"""The `sequence` task: windows of whole item sequences, and recommend() asking a model in the format it learnt."""

import json

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from hypothesis import given
from hypothesis import strategies as st
from sft_fixtures import TINY_MODEL

from lcrec.generation.recommendation import decode_prompts, render_prompts
from lcrec.prompts import SEQUENCE_FORMAT, SEQUENCE_INSTRUCTION, format_prompt, sequence_prompt
from lcrec.tasks import TaskMix, build_validation_mix
from lcrec.tasks.sequence import SEQUENCE_TASK, sequence_windows

NUM_ITEMS = 40


def make_dataset(num_users: int = 12, seed: int = 0) -> DatasetDict:
    """Leave-one-out splits over the tiny catalogue of the `item_index` fixture."""
    rng = np.random.default_rng(seed)
    items = Dataset.from_dict(
        {
            "item_id": list(range(NUM_ITEMS)),
            "title": [f"Gadget {i}" for i in range(NUM_ITEMS)],
            "description": [""] * NUM_ITEMS,
        }
    )
    rows = {"train": [], "validation": [], "test": []}
    for user in range(num_users):
        sequence = rng.choice(NUM_ITEMS, size=int(rng.integers(4, 30)), replace=False).tolist()
        for split, cut in (("train", 3), ("validation", 2), ("test", 1)):
            rows[split].append({"user_id": user, "history": sequence[:-cut], "target": sequence[-cut]})
    return DatasetDict({"items": items, **{name: Dataset.from_list(split) for name, split in rows.items()}})


@given(length=st.integers(0, 60), window=st.integers(1, 12))
def test_windows_cover_every_target_once_with_bounded_context(length, window):
    sequence = list(range(100, 100 + length))
    windows = sequence_windows(sequence, window)
    targets = [item for piece in windows for item in piece[1:]]
    assert targets == sequence[1:]  # every position >= 1 exactly once, in order
    assert all(2 <= len(piece) <= window + 1 for piece in windows)
    for piece in windows:  # consecutive items of the sequence
        start = sequence.index(piece[0])
        assert piece == sequence[start : start + len(piece)]
    if windows:
        assert windows[-1][-1] == sequence[-1]


def test_window_must_be_positive():
    with pytest.raises(ValueError, match="window must be at least 1"):
        sequence_windows([1, 2, 3], 0)


def test_mix_rows_hold_the_first_item_in_the_prompt_and_every_later_item_in_the_completion(item_index):
    dataset = make_dataset()
    mix = TaskMix.build(dataset, item_index, ["sequence", "item2index"], seed=0, max_history=5)
    rows = mix.render(0).filter(lambda row: row["task"] == SEQUENCE_TASK)
    train = dataset["train"]
    sequences = [history + [target] for history, target in zip(train["history"], train["target"])]
    expected = [piece for sequence in sequences for piece in sequence_windows(sequence, 5)]
    assert mix.counts[SEQUENCE_TASK] == len(rows) == len(expected)
    rendered = sorted(zip(rows["prompt"], rows["completion"]))
    wanted = sorted(
        (
            format_prompt(SEQUENCE_INSTRUCTION) + item_index.tokens(piece[0]),
            "".join(item_index.tokens(item) for item in piece[1:]),
        )
        for piece in expected
    )
    assert rendered == wanted
    # another epoch renders the same rows (one fixed wording), shuffled among the other tasks
    again = mix.render(1).filter(lambda row: row["task"] == SEQUENCE_TASK)
    assert sorted(again["completion"]) == sorted(rows["completion"])


def test_sequence_rows_end_without_eos_and_other_rows_with_it(item_index):
    """A sequence row ends where the data was cut: no EOS to learn there; an item2index answer still ends."""
    from lcrec.training.scratch import train_scratch_tokenizer
    from lcrec.training.tokenize import tokenize_prompt_completion

    mix = TaskMix.build(make_dataset(), item_index, ["sequence", "item2index"], seed=0, max_history=5).render(0)
    tokenizer = train_scratch_tokenizer(list(mix["prompt"]) + list(mix["completion"]), item_index, vocab_size=300)
    rows = tokenize_prompt_completion(mix, tokenizer, max_length=None)
    eos = tokenizer.eos_token_id
    for task, input_ids, labels in zip(rows["task"], rows["input_ids"], rows["labels"]):
        assert (input_ids[-1] == eos) == (labels[-1] == eos) == (task != SEQUENCE_TASK)
    assert set(rows["task"]) == {SEQUENCE_TASK, "item2index"}


def test_sequence_rows_cannot_be_capped(item_index):
    with pytest.raises(ValueError, match="cannot cap 'sequence'"):
        TaskMix.build(make_dataset(), item_index, ["sequence"], samples_per_task={"sequence": 3})


def test_validation_rows_in_sequence_format_end_with_the_recent_history(item_index):
    dataset = make_dataset()
    validation = build_validation_mix(dataset, item_index, max_history=4, prompt_format=SEQUENCE_FORMAT)
    history, target = dataset["validation"][0]["history"], dataset["validation"][0]["target"]
    assert validation[0]["prompt"] == sequence_prompt([item_index.tokens(item) for item in history[-4:]])
    assert validation[0]["completion"] == item_index.tokens(target)
    with pytest.raises(ValueError, match="prompt_format must be one of"):
        build_validation_mix(dataset, item_index, prompt_format="chat")


@pytest.fixture
def sequence_model(make_lcrec_model):
    model = make_lcrec_model("llama", tie=True, seed=1)
    model.config.seqrec_format = SEQUENCE_FORMAT
    model.config.seqrec_templates = [SEQUENCE_INSTRUCTION]
    model.config.max_history = 3
    return model


def test_recommend_prompt_is_the_training_prompt_continued(sequence_model, item_index):
    """Tokenizing a training row's prompt then completion gives the ids of the recommend() prompt for that history."""
    tokenizer = sequence_model.tokenizer
    history = [5, 17, 2, 30]
    [prompt] = render_prompts(sequence_model.config, item_index, [history])
    assert prompt == sequence_prompt([item_index.tokens(item) for item in history[-3:]])
    [full] = render_prompts(sequence_model.config, item_index, [history], max_history=10)
    training_prompt = sequence_prompt([item_index.tokens(history[0])])
    completion = "".join(item_index.tokens(item) for item in history[1:])
    joined = tokenizer(training_prompt)["input_ids"] + tokenizer(completion, add_special_tokens=False)["input_ids"]
    assert joined == tokenizer(full)["input_ids"]
    sequence_model.config.seqrec_format = "chat"
    with pytest.raises(ValueError, match="seqrec_format must be one of"):
        render_prompts(sequence_model.config, item_index, [history])


def test_recommend_scores_an_item_on_its_index_tokens_only(sequence_model, item_index, one_torch_thread):
    """A sequence model's item score is log P(its `levels` tokens | prompt): no EOS step, unlike the seqrec format;
    the tree-attention decoder and generate() agree on it."""
    tokenizer = sequence_model.tokenizer
    history = [3, 8, 21]
    ranked = sequence_model.recommend([history], top_k=5, num_beams=10)[0]
    assert len({item for item, _ in ranked}) == 5 and all(0 <= item < NUM_ITEMS for item, _ in ranked)
    assert [score for _, score in ranked] == sorted((score for _, score in ranked), reverse=True)
    # the best item's score from one forward pass over prompt + its tokens
    item, score = ranked[0]
    [prompt] = render_prompts(sequence_model.config, item_index, [history])
    prompt_ids = tokenizer(prompt)["input_ids"]
    item_ids = tokenizer(item_index.tokens(item), add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = sequence_model(input_ids=torch.tensor([prompt_ids + item_ids])).logits[0].float()
    log_probs = torch.log_softmax(logits, dim=-1)
    expected = sum(float(log_probs[len(prompt_ids) - 1 + level, token]) for level, token in enumerate(item_ids))
    assert score == pytest.approx(expected, abs=1e-3)
    # with the EOS term (the instruction format's scoring) the scores differ
    prompts = render_prompts(sequence_model.config, item_index, [history, [7, 1]])
    with_eos = decode_prompts(sequence_model, tokenizer, prompts, 10, score_eos=True)
    tree = decode_prompts(sequence_model, tokenizer, prompts, 10, decoder="tree", score_eos=False)
    reference = decode_prompts(sequence_model, tokenizer, prompts, 10, decoder="generate", score_eos=False)
    assert tree.items[0, 0] == item and float(tree.scores[0, 0]) == pytest.approx(expected, abs=1e-3)
    assert not torch.allclose(with_eos.scores, tree.scores)
    assert torch.equal(tree.items, reference.items)
    assert torch.allclose(tree.scores, reference.scores, atol=1e-4)


def test_early_stopping_needs_a_best_model_to_keep():
    from transformers import TrainingArguments

    from lcrec.training import DataOptions
    from lcrec.training.sft import training_callbacks

    data = DataOptions(tasks=["sequence"], early_stopping_patience=2)
    with pytest.raises(ValueError, match="early_stopping_patience needs load_best_model_at_end"):
        training_callbacks(data, None, TrainingArguments(output_dir="unused", use_cpu=True, report_to="none"))
    with pytest.raises(ValueError, match="ranking_eval_users must be >= 1"):
        DataOptions(ranking_eval_users=0)


def test_the_mix_decides_how_recommend_asks():
    from lcrec.training import DataOptions

    assert DataOptions(tasks=["sequence", "item2index"]).prompt_format == SEQUENCE_FORMAT
    assert DataOptions(tasks=["seqrec", "sequence"]).prompt_format == "instruction"
    assert DataOptions(tasks=["seqrec", "sequence"], seqrec_format="sequence").prompt_format == SEQUENCE_FORMAT
    assert DataOptions(tasks=["seqrec"]).prompt_format == "instruction"
    with pytest.raises(ValueError, match="needs the seqrec task"):
        DataOptions(tasks=["sequence"], seqrec_format="instruction")
    with pytest.raises(ValueError, match="needs the 'sequence' task"):
        DataOptions(tasks=["seqrec"], seqrec_format="sequence")
    with pytest.raises(ValueError, match="seqrec_format must be"):
        DataOptions(seqrec_format="chat")


def test_a_model_trained_on_sequences_recommends_in_that_format(tmp_path, one_torch_thread):
    """SFT on the `sequence` task alone (a walk: each user's next item is the last one + 1) gives a model folder
    that asks in the sequence format and has learnt the walk; validation ranking metrics pick the checkpoint."""
    from lcrec.indexing import ItemIndex
    from lcrec.modeling_lcrec import LCRecForCausalLM
    from lcrec.training import parse_sft_args, run_sft

    num_items, num_users = 12, 12
    items = Dataset.from_dict(
        {
            "item_id": list(range(num_items)),
            "raw_id": [f"i{i}" for i in range(num_items)],
            "title": [f"Film {i}" for i in range(num_items)],
            "description": [""] * num_items,
            "brand": [""] * num_items,
            "categories": [""] * num_items,
        }
    )
    walks = [[(user + step) % num_items for step in range(9)] for user in range(num_users)]
    splits = {
        name: Dataset.from_dict(
            {
                "user_id": list(range(num_users)),
                "raw_user_id": [f"u{u}" for u in range(num_users)],
                "history": [w[:-cut] for w in walks],
                "target": [w[-cut] for w in walks],
            }
        )
        for name, cut in (("train", 3), ("validation", 2), ("test", 1))
    }
    DatasetDict({"items": items, **splits}).save_to_disk(str(tmp_path / "data"))
    (tmp_path / "data" / "stats.json").write_text("{}")
    (tmp_path / "index").mkdir()
    # one level: an item is one token, so the walk is a bigram a one-layer model learns in a few seconds
    ItemIndex(list(range(num_items)), np.arange(num_items).reshape(-1, 1), [num_items]).save(
        tmp_path / "index" / "index.json"
    )
    argv = [
        "--dataset_dir",
        str(tmp_path / "data"),
        "--index_dir",
        str(tmp_path / "index"),
        "--tasks",
        "sequence",
        "--max_history",
        "4",
        "--output_dir",
        str(tmp_path / "model"),
        "--use_cpu",
        "true",
        "--report_to",
        "none",
        "--seed",
        "3",
        "--disable_tqdm",
        "true",
        "--per_device_train_batch_size",
        "8",
        "--learning_rate",
        "3e-3",
        "--lr_scheduler_type",
        "constant",
        "--max_steps",
        "100",
        "--max_length",
        "64",
        *TINY_MODEL,
        "--scratch_max_positions",  # rows here are short: the tiny model's positions cut to max_length
        "64",
        "--bf16",
        "false",
        "--activation_checkpointing",
        "false",
        # checkpoints judged by validation ranking, as SASRec's early stopping judges its epochs
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "50",
        "--save_strategy",
        "steps",
        "--save_steps",
        "50",
        "--ranking_eval_users",
        "12",
        "--load_best_model_at_end",
        "true",
        "--metric_for_best_model",
        "NDCG@10",
        "--greater_is_better",
        "true",
    ]
    run_sft(*parse_sft_args(argv))
    results = json.loads((tmp_path / "model" / "training_results.json").read_text())
    assert results["tasks"] == ["sequence"]
    evaluations = [entry for entry in results["log_history"] if "eval_loss" in entry]
    assert [entry["step"] for entry in evaluations] == [50, 100]
    assert all(0.0 <= entry["eval_NDCG@10"] <= entry["eval_HR@10"] <= 1.0 for entry in evaluations)
    # the best metric is NDCG@10 here, and the kept checkpoint is the one that had it
    assert results["metric_for_best_model"] == "NDCG@10"
    best = max(evaluations, key=lambda entry: entry["eval_NDCG@10"])
    assert results["best_eval_loss"] == best["eval_NDCG@10"]
    assert results["best_checkpoint"] == f"checkpoint-{best['step']}"
    model = LCRecForCausalLM.from_pretrained(tmp_path / "model")
    assert model.config.seqrec_format == SEQUENCE_FORMAT and model.config.max_history == 4
    assert model.config.seqrec_templates == [SEQUENCE_INSTRUCTION]
    [prompt] = render_prompts(model.config, model.tokenizer.item_index, [[1, 2]])
    assert prompt == sequence_prompt([model.tokenizer.item_index.tokens(1), model.tokenizer.item_index.tokens(2)])
    histories = [w[:-1] for w in walks]
    top = [ranked[0][0] for ranked in model.recommend(histories, top_k=3, num_beams=6)]
    assert sum(item == w[-1] for item, w in zip(top, walks)) >= 10


def test_lcrec_tasks_builds_a_sequence_mix_with_validation_in_the_sequence_format(tmp_path, capsys):
    import pandas as pd
    from datasets import load_from_disk

    from lcrec.cli import main as lcrec_main
    from lcrec.data import RawDataset, load_prepared, prepare_dataset
    from lcrec.indexing import ItemIndex

    sequences = {f"u{user}": [f"i{(user + step) % 6}" for step in range(5)] for user in range(5)}
    rows = [(user, item, time) for user, items in sequences.items() for time, item in enumerate(items)]
    raw = RawDataset(
        pd.DataFrame(rows, columns=["user", "item", "timestamp"]),
        pd.DataFrame({"item": [f"i{n}" for n in range(6)], "title": [f"Thing {n}" for n in range(6)]}),
        source="toy",
    )
    prepare_dataset(raw, kcore=0, output_dir=tmp_path / "data")
    items = load_prepared(tmp_path / "data")["items"]
    index = ItemIndex(items["item_id"], [[i // 4, i % 4] for i in items["item_id"]], [4, 4], raw_ids=items["raw_id"])
    index.save(tmp_path / "index.json")
    argv = ["tasks", "--data", str(tmp_path / "data"), "--index", str(tmp_path / "index.json")]
    assert lcrec_main([*argv, "--out", str(tmp_path / "mix"), "--tasks", "sequence", "item2index"]) == 0
    mix = load_from_disk(str(tmp_path / "mix"))
    assert set(mix["train"]["task"]) == {SEQUENCE_TASK, "item2index"}
    assert all(prompt.startswith(format_prompt(SEQUENCE_INSTRUCTION)) for prompt in mix["validation"]["prompt"])
    capsys.readouterr()
    assert (
        lcrec_main([*argv, "--out", str(tmp_path / "capped"), "--tasks", "sequence", "--samples", "sequence=3"]) == 2
    )
    assert "samples" in capsys.readouterr().err
