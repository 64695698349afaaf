"""SFT pipeline on tiny scratch models (CPU, seconds): recipe, publishable folder, LoRA index rows, truncation, and
the TRL compatibility shim (scoped, restored, same loss)."""

import copy
import json
import logging
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sft_fixtures import NUM_ITEMS, ROOT, sft_args, subprocess_env, write_sft_data

from lcrec.training import parse_sft_args
from lcrec.training.sampler import EpochDrawSampler


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory) -> dict:
    return write_sft_data(tmp_path_factory.mktemp("sft-data"))


def _losses(results: dict) -> list[float]:
    return [entry["loss"] for entry in results["log_history"] if "loss" in entry]


def _prepared_run(sft_data: dict, output_dir: Path, *extra: str):
    """(args, trainer inputs) for an in-process LCRecSFTTrainer on the tiny data: what run_sft builds."""
    from lcrec.data import load_prepared
    from lcrec.indexing import ItemIndex
    from lcrec.training.model_setup import build_tokenizer_and_model
    from lcrec.training.scratch import scratch_tokenizer_texts
    from lcrec.training.template_draws import build_template_draws
    from lcrec.training.tokenize import tokenize_prompt_completion

    data, model_options, lora, args = parse_sft_args(sft_args(sft_data, output_dir, *extra))
    dataset = load_prepared(data.dataset_dir)
    item_index = ItemIndex.from_path(data.index_dir)
    draws, _ = build_template_draws(data, dataset, item_index, seed=args.seed)
    texts = scratch_tokenizer_texts(draws[0], dataset["items"])
    tokenizer, model = build_tokenizer_and_model(model_options, item_index, {}, texts)
    train = tokenize_prompt_completion(draws[0], tokenizer, args.max_length)
    return lora, args, model, tokenizer, train, draws, item_index


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
def test_recipe_trains_loss_falls_and_writes_a_publishable_folder(sft_data, tmp_path):
    """recipes/sft.py (as a user launches it) on a memorisable mix: 30 steps, best checkpoint by eval_loss, and a
    model folder with lcrec's card, readable files, no pickles and no TRL placeholder card anywhere."""
    from transformers import AutoModel, AutoTokenizer

    import lcrec  # noqa: F401  (registers the Auto classes)

    output_dir = tmp_path / "model"
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "lr_scheduler_type: constant\nlearning_rate: 1.0e-2\neval_strategy: steps\neval_steps: 15\n"
        "save_strategy: steps\nsave_steps: 15\nload_best_model_at_end: true\n"
        "metric_for_best_model: eval_loss\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "recipes" / "sft.py"),
            "--config",
            str(config),
            *sft_args(sft_data, output_dir, "--max_steps", "30"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=subprocess_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((output_dir / "training_results.json").read_text())
    losses = _losses(results)
    assert len(losses) == 30
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses
    assert results["best_eval_loss"] is not None and results["best_checkpoint"] in {"checkpoint-15", "checkpoint-30"}
    # one template draw per epoch: 30 steps of 8 rows over a 32-row mix are 8 epochs
    assert len(results["train_rows_per_draw"]) == 8 and results["validation_rows"] == 8
    settings = results["settings"]
    assert settings["global_step"] == 30 and settings["max_steps"] == 30 and settings["world_size"] == 1
    assert settings["learning_rate"] == 1e-2 and settings["lr_scheduler_type"] == "constant"
    assert "lora_r" not in settings and str(tmp_path) not in json.dumps(settings)

    for name in ("config.json", "generation_config.json", "tokenizer.json", "index.json", "model.safetensors"):
        assert (output_dir / name).exists(), name
    assert not (output_dir / "training_args.bin").exists() and not (output_dir / ".final.tmp").exists()
    card = (output_dir / "README.md").read_text()
    assert "- lcrec" in card and "fine-tuned version of" not in card
    assert not list(output_dir.glob("checkpoint-*/README.md"))  # TRL writes its placeholder card at every save
    for path in output_dir.iterdir():
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044, path  # readable by group and others

    model = AutoModel.from_pretrained(output_dir)
    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    assert type(model).__name__ == "LCRecForCausalLM" and tokenizer.item_index.num_items == NUM_ITEMS
    recommendations = model.recommend([[0, 1, 2], [5, 6]], top_k=3)
    assert all(len(row) == 3 and all(0 <= item < NUM_ITEMS for item, _ in row) for row in recommendations)


def test_retraining_replaces_the_previous_model_whole(sft_data, tmp_path):
    """A second run into the same output folder: entries of the old model it does not write (an adapter folder,
    metrics of other weights) go; checkpoints and the output marker stay; a foreign file needs overwrite."""
    from lcrec.io_utils import OUTPUT_MARKER, OutputFolderError
    from lcrec.training import run_sft

    output_dir = tmp_path / "model"
    run_sft(
        *parse_sft_args(
            sft_args(sft_data, output_dir, "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "2")
        )
    )
    (output_dir / "metrics.json").write_text("{}")  # what `lcrec evaluate` records about these weights
    (output_dir / "adapter").mkdir()
    (output_dir / "adapter" / "adapter_config.json").write_text("{}")
    run_sft(*parse_sft_args(sft_args(sft_data, output_dir, "--max_steps", "1", "--save_strategy", "no")))
    assert not (output_dir / "metrics.json").exists() and not (output_dir / "adapter").exists()
    assert (output_dir / "checkpoint-2").is_dir() and (output_dir / OUTPUT_MARKER).is_file()
    assert json.loads((output_dir / "training_results.json").read_text())["settings"]["global_step"] == 1

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="not written by `lcrec train`"):
        run_sft(*parse_sft_args(sft_args(sft_data, foreign, "--max_steps", "1")))
    with pytest.raises(OutputFolderError, match="inside the input"):
        run_sft(*parse_sft_args(sft_args(sft_data, Path(sft_data["dataset_dir"]) / "model", "--max_steps", "1")))
    assert sorted(path.name for path in foreign.iterdir()) == ["todo.txt"]


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_lora_trains_index_rows_and_leaves_other_rows(sft_data, tmp_path, tied):
    from lcrec.lora import index_token_ids
    from lcrec.training.model_setup import build_lora_config
    from lcrec.training.trainer import LCRecSFTTrainer

    lora, args, model, tokenizer, train, _, _ = _prepared_run(
        sft_data,
        tmp_path / "model",
        "--max_steps",
        "4",
        "--learning_rate",
        "5e-2",
        "--use_lora",
        "true",
        "--lora_r",
        "2",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
        "--scratch_tie_embeddings",
        str(tied).lower(),
    )
    getters = ("get_input_embeddings", "get_output_embeddings")
    before = {name: getattr(model, name)().weight.detach().clone() for name in getters}
    trainer = LCRecSFTTrainer(
        model=model,
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=build_lora_config(model, lora),
        draw_sizes=[len(train)],
    )
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


def test_the_trainer_leaves_the_callers_config_and_trl_as_they_were(sft_data, tmp_path):
    """No mutation of the caller's SFTConfig; TRL's fused-head switch is TRL's own again after training."""
    import trl.trainer.utils as trl_utils

    from lcrec.training.trainer import LCRecSFTTrainer

    _, args, model, tokenizer, train, _, _ = _prepared_run(sft_data, tmp_path / "model", "--max_steps", "2")
    before = copy.deepcopy(args.to_dict())
    switch = trl_utils._use_triton
    trainer = LCRecSFTTrainer(
        model=model, args=args, train_dataset=train, processing_class=tokenizer, draw_sizes=[len(train)]
    )
    trainer.train()
    assert args.to_dict() == before and args.completion_only_loss is None
    assert trainer.args is not args and trainer.args.completion_only_loss is True
    assert trainer.args.dataset_kwargs["skip_prepare_dataset"] is True
    assert trl_utils._use_triton is switch


def test_cut_off_completions_are_dropped_with_a_count_or_raise(sft_data, caplog):
    from lcrec.training.tokenize import tokenize_prompt_completion

    _, _, _, tokenizer, _, draws, item_index = _prepared_run(sft_data, Path("unused"))
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
        assert len(ids) == len(labels) <= limit and ids[-1] == tokenizer.eos_token_id
        assert len(scored) == item_index.levels + 1
        assert scored == ids[-len(scored) :]
    with pytest.raises(ValueError, match="every row is longer than max_length=5"):
        tokenize_prompt_completion(draws[0], tokenizer, max_length=5)


def test_compact_fused_head_has_identical_loss_and_gradients_and_is_restored(make_lcrec_model, monkeypatch):
    """Inside the block TRL's fused LM head projects only completion positions on CPU (as it does on GPUs): same
    loss, same gradients; afterwards (also after an error) TRL's switch is back."""
    import trl.trainer.utils as trl_utils

    from lcrec.training.trl_compat import compact_fused_head_on_cpu

    monkeypatch.setattr(trl_utils, "_use_triton", lambda device: False)  # TRL's own CPU behaviour: every position
    switch = trl_utils._use_triton
    model = make_lcrec_model("llama", True).train()
    language_model = model.language_model
    trl_utils.add_fused_lm_head(language_model, outputs=("log_probs", "entropy", "is_top1"))
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(2, language_model.config.vocab_size, (3, 20), generator=generator)
    labels = torch.full_like(input_ids, -100)
    labels[:, -4:] = input_ids[:, -4:]
    projected = []  # rows projected through the LM head per forward
    chunked = trl_utils._ChunkedLogProbFunction

    class CountingChunkedLogProb:
        @staticmethod
        def apply(hidden, *rest):
            projected.append(hidden.shape[0])
            return chunked.apply(hidden, *rest)

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", CountingChunkedLogProb)

    def loss_and_grad():
        language_model.zero_grad()
        output = language_model(input_ids=input_ids, labels=labels, fused_lm_head=True)
        output.loss.backward()
        gradient = language_model.get_input_embeddings().weight.grad.clone()
        return output.loss.detach(), gradient, output.log_probs.detach()

    every_position = loss_and_grad()
    with compact_fused_head_on_cpu():
        assert trl_utils._use_triton(torch.device("cpu")) is True
        compact = loss_and_grad()
    assert trl_utils._use_triton is switch
    assert projected == [3 * 19, 3 * 4]  # every next-token position, then only the 4 labelled ones per row
    for full, fast in zip(every_position, compact):
        assert torch.allclose(full, fast, atol=1e-5)
    with pytest.raises(RuntimeError, match="boom"), compact_fused_head_on_cpu():
        raise RuntimeError("boom")
    assert trl_utils._use_triton is switch


@pytest.mark.parametrize("case", ["no switch", "unknown version"])
def test_compact_scoring_is_skipped_with_a_warning_on_an_unknown_trl(monkeypatch, caplog, case):
    import trl
    import trl.trainer.utils as trl_utils

    from lcrec.training import trl_compat

    monkeypatch.setattr(trl_compat, "_warned", set())
    if case == "no switch":
        monkeypatch.delattr(trl_utils, "_use_triton")
    else:
        monkeypatch.setattr(trl, "__version__", "2.0.0")
    before = getattr(trl_utils, "_use_triton", None)
    with caplog.at_level(logging.WARNING), trl_compat.compact_fused_head_on_cpu():
        assert getattr(trl_utils, "_use_triton", None) is before
    assert "every position is scored" in caplog.text
