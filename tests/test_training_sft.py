"""SFT pipeline on tiny scratch models (CPU, seconds): recipe steps, loss falls, resume, LoRA index rows, truncation."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from lcrec.indexing import ItemIndex
from lcrec.training import parse_sft_args
from lcrec.training.sampler import EpochDrawSampler

ROOT = Path(__file__).resolve().parents[1]
NUM_ITEMS = 12
NUM_USERS = 8
TINY_MODEL = [
    "--base_model", "scratch", "--scratch_vocab_size", "300", "--scratch_hidden_size", "32", "--scratch_num_layers", "1",
    "--scratch_num_heads", "2", "--scratch_intermediate_size", "64", "--scratch_max_positions", "256",
]


def _user_sequence(user: int) -> list[int]:
    """A fixed, learnable walk over the catalogue: user u visits u, u+1, u+2, ... (mod NUM_ITEMS)."""
    return [(user + step) % NUM_ITEMS for step in range(7)]


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory) -> dict:
    """A prepared dataset (the `lcrec prepare` layout) and an item index folder, both tiny."""
    root = tmp_path_factory.mktemp("sft-data")
    items = Dataset.from_dict({
        "item_id": list(range(NUM_ITEMS)),
        "raw_id": [f"i{item}" for item in range(NUM_ITEMS)],
        "title": [f"Film number {item}" for item in range(NUM_ITEMS)],
        "description": [f"A story about {item} friends." for item in range(NUM_ITEMS)],
        "brand": [""] * NUM_ITEMS,
        "categories": ["Drama"] * NUM_ITEMS,
    })
    splits = {}
    for name, cut in (("train", 3), ("valid", 2), ("test", 1)):
        rows = [(user, _user_sequence(user)) for user in range(NUM_USERS)]
        splits[name] = Dataset.from_dict({
            "user_id": [user for user, _ in rows],
            "raw_user_id": [f"u{user}" for user, _ in rows],
            "history": [sequence[:-cut] for _, sequence in rows],
            "target": [sequence[-cut] for _, sequence in rows],
        })
    dataset_dir = root / "data"
    DatasetDict({"items": items, **splits}).save_to_disk(str(dataset_dir))
    (dataset_dir / "stats.json").write_text(json.dumps({"num_items": NUM_ITEMS, "num_users": NUM_USERS}))
    codes = [[item // 4, item % 4, 0] for item in range(NUM_ITEMS)]
    index_dir = root / "index"
    index_dir.mkdir()
    ItemIndex(list(range(NUM_ITEMS)), np.array(codes), [3, 4, 2]).save(index_dir / "index.json")
    return {"dataset_dir": str(dataset_dir), "index_dir": str(index_dir)}


def _args(sft_data: dict, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--dataset_dir", sft_data["dataset_dir"], "--index_dir", sft_data["index_dir"], "--tasks", "seqrec",
        "--output_dir", str(output_dir), "--use_cpu", "true", "--bf16", "false", "--activation_checkpointing", "false",
        "--report_to", "none", "--seed", "7", "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
        "--max_length", "128", "--logging_steps", "1", "--disable_tqdm", "true", *TINY_MODEL, *extra,
    ]


def _losses(results: dict) -> list[float]:
    return [entry["loss"] for entry in results["log_history"] if "loss" in entry]


def test_epoch_draw_sampler_uses_one_draw_per_epoch_reproducibly():
    sampler = EpochDrawSampler([5, 4, 5], seed=3)
    assert len(sampler) == 4
    seen = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        order = list(sampler)
        low = [0, 5, 9][epoch % 3]
        assert len(order) == 4 and len(set(order)) == 4 and all(low <= i < low + [5, 4, 5][epoch % 3] for i in order)
        seen.append(order)
    sampler.set_epoch(1)
    assert list(sampler) == seen[1]
    with pytest.raises(ValueError, match="at least one row"):
        EpochDrawSampler([3, 0])


@pytest.mark.slow
def test_recipe_trains_loss_falls_and_the_folder_loads(sft_data, tmp_path):
    """recipes/sft.py (as a user launches it) on a memorisable mix: 30 steps, best checkpoint by eval_loss."""
    from transformers import AutoModel, AutoTokenizer

    import lcrec  # noqa: F401  (registers the Auto classes)

    output_dir = tmp_path / "model"
    config = tmp_path / "tiny.yaml"
    config.write_text("lr_scheduler_type: constant\nlearning_rate: 1.0e-2\neval_strategy: steps\neval_steps: 15\n"
                      "save_strategy: steps\nsave_steps: 15\nload_best_model_at_end: true\nmetric_for_best_model: eval_loss\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "sft.py"), "--config", str(config), *_args(sft_data, output_dir, "--max_steps", "30")],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((output_dir / "training_results.json").read_text())
    losses = _losses(results)
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    assert results["best_eval_loss"] is not None and results["best_checkpoint"]
    # one template draw per epoch: 30 steps of 8 rows over a 32-row mix are 8 epochs
    assert len(results["train_rows_per_draw"]) == 8
    for name in ("config.json", "generation_config.json", "tokenizer.json", "index.json", "model.safetensors"):
        assert (output_dir / name).exists(), name
    model = AutoModel.from_pretrained(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert type(model).__name__ == "LCRecForCausalLM" and tokenizer.item_index.num_items == NUM_ITEMS
    recommendations = model.recommend([[0, 1, 2], [5, 6]], top_k=3)
    assert all(len(row) == 3 and all(0 <= item < NUM_ITEMS for item, _ in row) for row in recommendations)


def test_lcrec_train_resumes_from_a_checkpoint(sft_data, tmp_path):
    from lcrec.cli import main

    output_dir = tmp_path / "model"
    common = ("--save_strategy", "steps", "--save_steps", "3", "--learning_rate", "1e-3")
    assert main(["train", *_args(sft_data, output_dir, "--max_steps", "3", *common)]) == 0
    assert (output_dir / "checkpoint-3").is_dir()
    assert main(["train", *_args(sft_data, output_dir, "--max_steps", "6", "--resume_from_checkpoint", str(output_dir / "checkpoint-3"), *common)]) == 0
    results = json.loads((output_dir / "training_results.json").read_text())
    steps = [entry["step"] for entry in results["log_history"] if "loss" in entry]
    assert steps == [1, 2, 3, 4, 5, 6]  # the first 3 come from the checkpoint's state, the rest were trained now
    assert (output_dir / "checkpoint-6").is_dir()
    state = json.loads((output_dir / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_lora_trains_index_rows_and_leaves_other_rows(sft_data, tmp_path, tied):
    from lcrec.data import load_prepared
    from lcrec.training.mix import build_mixes, scratch_tokenizer_texts
    from lcrec.lora import index_token_ids
    from lcrec.indexing import ItemIndex
    from lcrec.training.model_setup import build_lora_config, build_tokenizer_and_model
    from lcrec.training.tokenize import tokenize_prompt_completion
    from lcrec.training.trainer import LCRecSFTTrainer

    data, model_options, lora, args = parse_sft_args(_args(
        sft_data, tmp_path / "model", "--max_steps", "4", "--learning_rate", "5e-2", "--use_lora", "true", "--lora_r", "2",
        "--lora_target_modules", "q_proj", "v_proj", "--scratch_tie_embeddings", str(tied).lower(),
    ))
    dataset = load_prepared(data.dataset_dir)
    item_index = ItemIndex.from_path(data.index_dir)
    draws, _ = build_mixes(data, dataset, item_index, seed=args.seed)
    tokenizer, model = build_tokenizer_and_model(model_options, item_index, {}, scratch_tokenizer_texts(draws[0], dataset["items"]))
    before = {name: getattr(model, name)().weight.detach().clone() for name in ("get_input_embeddings", "get_output_embeddings")}
    train = tokenize_prompt_completion(draws[0], tokenizer, args.max_length)
    trainer = LCRecSFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                              peft_config=build_lora_config(model, lora), draw_sizes=[len(train)])
    trainer.train()
    merged = trainer.model.merge_and_unload()
    ids = torch.tensor(index_token_ids(merged))
    assert (merged.get_output_embeddings().weight is merged.get_input_embeddings().weight) == tied

    others = torch.ones(before["get_input_embeddings"].shape[0], dtype=torch.bool)
    others[ids] = False
    for name, weight in before.items():
        after = getattr(merged, name)().weight.detach()
        assert not torch.allclose(weight[ids], after[ids]), name
        assert torch.equal(weight[others], after[others]), name


def test_cut_off_completions_are_dropped_with_a_count_or_raise(sft_data, caplog):
    from lcrec.data import load_prepared
    from lcrec.training.mix import build_mixes, scratch_tokenizer_texts
    from lcrec.indexing import ItemIndex
    from lcrec.training.model_setup import build_tokenizer_and_model
    from lcrec.training.tokenize import tokenize_prompt_completion

    data, model_options, _, args = parse_sft_args(_args(sft_data, Path("unused")))
    dataset = load_prepared(data.dataset_dir)
    item_index = ItemIndex.from_path(data.index_dir)
    draws, _ = build_mixes(data, dataset, item_index, seed=0)
    tokenizer, _ = build_tokenizer_and_model(model_options, item_index, {}, scratch_tokenizer_texts(draws[0], dataset["items"]))
    full = tokenize_prompt_completion(draws[0], tokenizer, max_length=None)
    lengths = sorted(len(ids) for ids in full["input_ids"])
    limit = lengths[len(lengths) // 2]
    with caplog.at_level(logging.WARNING):
        kept = tokenize_prompt_completion(draws[0], tokenizer, max_length=limit)
    dropped = sum(n > limit for n in lengths)
    assert dropped and len(kept) == len(full) - dropped
    assert f"dropped {dropped} of {len(full)} rows longer than max_length={limit}" in caplog.text
    for ids, labels in zip(kept["input_ids"], kept["labels"]):
        # every kept row ends with its whole completion: levels index tokens + EOS carry the loss, the prompt none
        scored = [label for label in labels if label != -100]
        assert len(ids) == len(labels) <= limit and ids[-1] == tokenizer.eos_token_id and len(scored) == item_index.levels + 1
        assert scored == ids[-len(scored):]
    with pytest.raises(ValueError, match="every row is longer than max_length=5"):
        tokenize_prompt_completion(draws[0], tokenizer, max_length=5)


def test_cpu_fused_head_scores_only_labelled_positions_with_identical_loss_and_gradients(make_lcrec_model, monkeypatch):
    """On CPU the fused LM head projects only completion positions (as TRL does on GPUs): same loss, same gradients."""
    import trl.trainer.utils as trl_utils

    from lcrec.training.trainer import _FUSED_OUTPUTS, _score_only_labelled_positions_on_cpu

    monkeypatch.setattr(trl_utils, "_use_triton", lambda device: False)  # TRL's own CPU behaviour: every position
    model = make_lcrec_model("llama", True).train()
    language_model = model.language_model
    trl_utils.add_fused_lm_head(language_model, outputs=_FUSED_OUTPUTS)
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(2, language_model.config.vocab_size, (3, 20), generator=generator)
    labels = torch.full_like(input_ids, -100)
    labels[:, -4:] = input_ids[:, -4:]

    def loss_and_grad():
        language_model.zero_grad()
        output = language_model(input_ids=input_ids, labels=labels, fused_lm_head=True)
        output.loss.backward()
        return output.loss.detach(), language_model.get_input_embeddings().weight.grad.clone(), output.log_probs.detach()

    every_position = loss_and_grad()
    _score_only_labelled_positions_on_cpu()
    patched = trl_utils._use_triton
    _score_only_labelled_positions_on_cpu()  # idempotent: wraps once
    assert trl_utils._use_triton is patched and patched(torch.device("cpu")) is True
    compact = loss_and_grad()
    for full, fast in zip(every_position, compact):
        assert torch.allclose(full, fast, atol=1e-5)


def test_cpu_compact_scoring_is_skipped_with_a_warning_when_trl_lacks_the_switch(monkeypatch, caplog):
    import trl.trainer.utils as trl_utils

    from lcrec.training.trainer import _score_only_labelled_positions_on_cpu

    monkeypatch.delattr(trl_utils, "_use_triton")
    with caplog.at_level(logging.WARNING):
        _score_only_labelled_positions_on_cpu()
    assert not hasattr(trl_utils, "_use_triton") and "scores every position on CPU" in caplog.text
