"""Distillation from a SASRec teacher: the level targets, the loss, and `lcrec train --teacher_dir`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sft_fixtures import NUM_ITEMS, sft_args, subprocess_env, user_sequence, write_sft_data

from lcrec.evaluation.baselines.sasrec import SASRec, SASRecConfig, pad_left
from lcrec.indexing import ItemIndex
from lcrec.tokenization_lcrec import LCRecTokenizer
from lcrec.training.distillation import SASRecTeacher
from lcrec.training.scratch import train_scratch_tokenizer

# Two levels: item i has codes (i // 4, i % 4); three first-level groups of four items.
CODES = np.array([[item // 4, item % 4] for item in range(NUM_ITEMS)])


def tiny_config(**changes) -> SASRecConfig:
    """A seconds-small SASRec over the fixture catalogue."""
    return SASRecConfig(
        **{**dict(num_items=NUM_ITEMS, max_len=8, hidden_size=16, num_heads=2, inner_size=32), **changes}
    )


@pytest.fixture(scope="module")
def tokenizer() -> LCRecTokenizer:
    index = ItemIndex(list(range(NUM_ITEMS)), CODES, [3, 4])
    return train_scratch_tokenizer(["a user bought", "next item"], index, vocab_size=300)


@pytest.fixture(scope="module")
def sasrec() -> SASRec:
    torch.manual_seed(0)
    return SASRec(tiny_config()).eval()


def _row(tokenizer, items: list[int], prompt_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of "<text> item item ..." with labels on the items after the first `prompt_items`."""
    text = tokenizer("a user bought", add_special_tokens=False)["input_ids"]
    ids, labels = list(text), [-100] * len(text)
    for position, item in enumerate(items):
        tokens = tokenizer(tokenizer.item_tokens(item), add_special_tokens=False)["input_ids"]
        ids += tokens
        labels += tokens if position >= prompt_items else [-100] * len(tokens)
    return torch.tensor([ids]), torch.tensor([labels])


def test_level_targets_are_the_teacher_distribution_split_along_the_true_prefix(tokenizer, sasrec):
    teacher = SASRecTeacher(sasrec, tokenizer, temperature=1.0)
    items = [0, 5, 9]
    input_ids, labels = _row(tokenizer, items, prompt_items=1)
    targets = teacher.targets(input_ids, labels)
    assert targets.rows.tolist() == [0, 0]  # items 5 and 9: each follows an earlier item and is labelled
    starts = [int(s) for s in targets.starts]
    assert [int(input_ids[0, s]) for s in starts] == [int(tokenizer.index_token_ids[0, item // 4]) for item in (5, 9)]
    # SASRec reads the row as one training window: items 0 and 5 right-aligned, each state predicting the next item.
    states = sasrec.encode(torch.from_numpy(pad_left([[0, 5]], sasrec.config.max_len)))[0, -2:]
    torch.testing.assert_close(sasrec.item_logits(states[-1:]).detach().numpy(), sasrec.score([[0, 5]]))
    for target, (logits, item) in enumerate(zip(sasrec.item_logits(states).detach(), (5, 9))):
        p = torch.softmax(logits, -1)
        first = torch.tensor([p[4 * group : 4 * group + 4].sum() for group in range(3)])
        torch.testing.assert_close(targets.level_targets[target, 0, :3], first, atol=1e-5, rtol=1e-4)
        group = item // 4
        second = p[4 * group : 4 * group + 4] / p[4 * group : 4 * group + 4].sum()
        torch.testing.assert_close(targets.level_targets[target, 1, :4], second, atol=1e-5, rtol=1e-4)
    assert targets.level_targets[:, 0, 3:].abs().sum() == 0  # the first codebook has 3 codes: nothing past them


def test_drawn_items_replace_targets_and_are_trained_along_their_own_codes(tokenizer, sasrec):
    """With sampling 1, every distilled item is replaced by an item drawn from the teacher, in the input and the
    labels, and its later levels' targets follow the drawn codes; the draws follow the teacher's distribution."""
    input_ids, labels = _row(tokenizer, [0, 5, 9], prompt_items=1)
    true = SASRecTeacher(sasrec, tokenizer).targets(input_ids, labels)
    assert torch.equal(true.input_ids, input_ids) and torch.equal(true.labels, labels)  # sampling 0 keeps the row
    copies = 4000
    torch.manual_seed(0)
    drawn = SASRecTeacher(sasrec, tokenizer, sampling=1.0).targets(
        input_ids.repeat(copies, 1), labels.repeat(copies, 1)
    )
    assert drawn.starts.tolist() == true.starts.tolist() * copies
    spans = torch.zeros(input_ids.shape[1], dtype=torch.bool)
    for start in true.starts.tolist():
        spans[start : start + 2] = True
    assert torch.equal(drawn.input_ids[:, ~spans], input_ids.repeat(copies, 1)[:, ~spans])  # only the items change
    assert torch.equal(drawn.labels[:, spans], drawn.input_ids[:, spans])
    first, second = (tokenizer.index_token_ids[level].tolist() for level in range(2))
    # Each drawn item is written as index tokens of its two levels (`index` raises on any other token).
    group = torch.tensor([first.index(int(t)) for t in drawn.input_ids[drawn.rows, drawn.starts]])
    for t in drawn.input_ids[drawn.rows, drawn.starts + 1]:
        second.index(int(t))
    for target in range(2):
        mine = torch.arange(target, len(drawn.rows), 2)
        # The first level's targets do not depend on the item: the teacher's mass per group, as without drawing.
        torch.testing.assert_close(drawn.level_targets[mine, 0], true.level_targets[target, 0].expand(copies, -1))
        frequencies = torch.bincount(group[mine], minlength=3).float() / copies
        assert (frequencies - true.level_targets[target, 0, :3]).abs().max() < 0.03
        # The second level is the teacher's distribution within the drawn item's group.
        states = sasrec.encode(torch.from_numpy(pad_left([[0, 5]], sasrec.config.max_len)))[0, -2:]
        p = torch.softmax(sasrec.item_logits(states[target]).detach(), -1)
        for row in mine[:50]:
            g = int(group[row])
            expected = p[4 * g : 4 * g + 4] / p[4 * g : 4 * g + 4].sum()
            torch.testing.assert_close(drawn.level_targets[row, 1, :4], expected, atol=1e-5, rtol=1e-4)


def test_unlabelled_items_and_a_row_first_item_are_not_distilled(tokenizer, sasrec):
    teacher = SASRecTeacher(sasrec, tokenizer)
    input_ids, labels = _row(tokenizer, [3, 7], prompt_items=2)  # both items in the prompt
    assert len(teacher.targets(input_ids, labels).rows) == 0
    input_ids, labels = _row(tokenizer, [3], prompt_items=0)  # a labelled item with nothing before it
    assert len(teacher.targets(input_ids, labels).rows) == 0


def test_cross_entropy_is_against_the_level_targets_at_the_positions_before_each_token(tokenizer, sasrec):
    teacher = SASRecTeacher(sasrec, tokenizer)
    input_ids, labels = _row(tokenizer, [1, 6], prompt_items=1)
    targets = teacher.targets(input_ids, labels)
    rows, positions = teacher.token_positions(targets)
    start = int(targets.starts[0])
    assert rows.tolist() == [0, 0] and positions.tolist() == [start - 1, start]
    log_probs = torch.log_softmax(torch.randn(input_ids.shape[1], len(tokenizer)), -1)[positions]
    losses = teacher.cross_entropy(log_probs, targets)
    for level in range(2):
        ids = tokenizer.index_token_ids[level]
        ids = ids[ids >= 0]
        expected = -float((targets.level_targets[0, level, : len(ids)] * log_probs[level, ids]).sum())
        assert float(losses[level]) == pytest.approx(expected, rel=1e-5)


def test_a_teacher_of_another_catalogue_is_refused(tokenizer):
    small = SASRec(tiny_config(num_items=NUM_ITEMS - 2))
    with pytest.raises(ValueError, match="trained on another dataset"):
        SASRecTeacher(small, tokenizer)


def test_teacher_options_are_checked():
    from lcrec.training import DataOptions

    with pytest.raises(ValueError, match="teacher_weight"):
        DataOptions(teacher_weight=1.5)
    with pytest.raises(ValueError, match="teacher_temperature"):
        DataOptions(teacher_temperature=0.0)
    with pytest.raises(ValueError, match="teacher_sampling"):
        DataOptions(teacher_sampling=1.5)


def test_weight_zero_trains_exactly_as_without_a_teacher(tmp_path, one_torch_thread):
    """The distilled path computes the same cross-entropy as SFTTrainer's: weight 0 gives the same weights."""
    from sft_fixtures import weights

    from lcrec.cli import main

    data = write_sft_data(tmp_path)
    teacher_dir = tmp_path / "sasrec"
    SASRec(tiny_config()).save_pretrained(teacher_dir)
    steps = ["--max_steps", "3", "--save_strategy", "no", "--eval_strategy", "no"]
    assert main(["train", *sft_args(data, tmp_path / "plain", *steps)]) == 0
    distilled = sft_args(data, tmp_path / "zero", *steps, "--teacher_dir", str(teacher_dir), "--teacher_weight", "0")
    assert main(["train", *distilled]) == 0
    plain, zero = weights(tmp_path / "plain"), weights(tmp_path / "zero")
    for name, tensor in plain.items():
        torch.testing.assert_close(zero[name], tensor, atol=1e-5, rtol=1e-4)


def test_lcrec_train_with_a_teacher_records_it(tmp_path, one_torch_thread):
    import subprocess
    import sys

    from lcrec.evaluation.baselines.sasrec import train_sasrec

    data = write_sft_data(tmp_path)
    config = tiny_config(max_epochs=3)
    teacher, _ = train_sasrec([user_sequence(user)[:-3] for user in range(8)], config)
    teacher.save_pretrained(tmp_path / "sasrec")
    args = sft_args(data, tmp_path / "model", "--max_steps", "4", "--save_strategy", "no", "--eval_strategy", "no")
    args += ["--tasks", "sequence", "--teacher_dir", str(tmp_path / "sasrec"), "--teacher_weight", "0.9"]
    args += ["--teacher_sampling", "0.5"]
    result = subprocess.run(
        [sys.executable, "-m", "lcrec.cli", "train", *args], env=subprocess_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "model" / "training_results.json").read_text())
    assert record["distillation"] == {
        "teacher": "SASRec (2 layers, 16 dims, ce loss)",
        "weight": 0.9,
        "temperature": 1.0,
        "sampling": 0.5,
    }
    assert (
        "| distilled from | SASRec (2 layers, 16 dims, ce loss), weight 0.9, temperature 1.0, drawn items 0.5 |"
        in (tmp_path / "model" / "README.md").read_text()
    )
    losses = [entry["loss"] for entry in record["log_history"] if "loss" in entry]
    assert losses and all(np.isfinite(losses))
    # A folder trained before drawn items existed (no "sampling" in its record) still renders its card.
    from lcrec.cards import write_model_card

    del record["distillation"]["sampling"]
    (tmp_path / "model" / "training_results.json").write_text(json.dumps(record))
    card = write_model_card(tmp_path / "model").read_text()
    assert "| distilled from | SASRec (2 layers, 16 dims, ce loss), weight 0.9, temperature 1.0 |" in card


def test_a_missing_teacher_folder_is_named(tmp_path, capsys):
    from lcrec.cli import main

    data = write_sft_data(tmp_path)
    args = sft_args(data, tmp_path / "model", "--max_steps", "1", "--teacher_dir", str(tmp_path / "nowhere"))
    assert main(["train", *args]) == 2
    assert "nowhere: no sasrec_config.json (not a SASRec folder)" in capsys.readouterr().err


def test_lora_training_with_a_teacher_trains_through_peft(tmp_path, one_torch_thread):
    """LoRA on the scratch model: the distilled loss reaches the PEFT-wrapped model (merged into the saved weights)."""
    from transformers import AutoModel

    from lcrec.cli import main

    data = write_sft_data(tmp_path)
    SASRec(tiny_config()).save_pretrained(tmp_path / "sasrec")
    lora = ["--use_lora", "true", "--lora_r", "2", "--lora_target_modules", "q_proj", "v_proj"]
    steps = ["--max_steps", "3", "--learning_rate", "5e-2", "--save_strategy", "no", "--eval_strategy", "no"]
    args = sft_args(data, tmp_path / "model", *steps, *lora, "--teacher_dir", str(tmp_path / "sasrec"))
    assert main(["train", *args]) == 0
    record = json.loads((tmp_path / "model" / "training_results.json").read_text())
    assert record["use_lora"] and record["distillation"]["weight"] == 1.0
    losses = [entry["loss"] for entry in record["log_history"] if "loss" in entry]
    assert len(losses) == 3 and all(np.isfinite(losses))
    ranked = AutoModel.from_pretrained(tmp_path / "model").recommend([[0, 1, 2]], top_k=3)
    assert len(ranked[0]) == 3
