"""The SFT pipeline behind `recipes/sft.py` and `lcrec train`: data -> tokenizer/model -> SFTTrainer -> model folder."""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from pathlib import Path

from ..io_utils import write_json
from ..lora import save_adapter
from .options import DataOptions, LoraOptions, ModelOptions

logger = logging.getLogger(__name__)

TRAINING_RESULTS = "training_results.json"


def check_sft_config(args) -> None:
    """Reject SFTConfig settings this pipeline cannot honour, naming the setting."""
    if args.completion_only_loss is False:
        raise ValueError("completion_only_loss=False: LC-Rec trains on the completion only; leave it unset or true")
    if args.packing:
        raise ValueError("packing=True is not supported: each epoch samples whole rows of its own template draw")
    if args.shuffle_dataset:
        raise ValueError("shuffle_dataset=True is not needed: the per-epoch sampler shuffles every draw")


def resume_argument(value: str | bool | None) -> str | bool | None:
    """`--resume_from_checkpoint true|last` resumes from the newest checkpoint in output_dir; a path resumes from it."""
    if isinstance(value, str) and value.lower() in {"true", "last"}:
        return True
    if isinstance(value, str) and value.lower() in {"false", "none", ""}:
        return None
    return value


def training_epochs(args, rows: int) -> int:
    """How many epochs the Trainer will run over `rows` rows (max_steps, when set, decides)."""
    if args.max_steps is None or args.max_steps <= 0:
        return max(1, math.ceil(args.num_train_epochs))
    world = max(1, args.world_size)
    batches = math.ceil(rows / (args.per_device_train_batch_size * world))
    steps_per_epoch = max(1, math.ceil(batches / args.gradient_accumulation_steps))
    return math.ceil(args.max_steps / steps_per_epoch)


def run_sft(data: DataOptions, model_options: ModelOptions, lora: LoraOptions, args) -> Path:
    """Train an LC-Rec model with TRL's SFTTrainer and write the model folder `args.output_dir`; returns its path."""
    from datasets import concatenate_datasets
    from transformers import set_seed

    from ..data import load_prepared
    from .mix import build_mixes, scratch_tokenizer_texts
    from ..indexing import ItemIndex
    from .model_setup import build_lora_config, build_tokenizer_and_model
    from .tokenize import tokenize_prompt_completion
    from .trainer import LCRecSFTTrainer

    if not data.dataset_dir or not data.index_dir:
        raise ValueError("dataset_dir and index_dir are required (folders written by `lcrec prepare` and `lcrec index`)")
    check_sft_config(args)
    started = time.perf_counter()
    set_seed(args.seed)

    dataset = load_prepared(data.dataset_dir)
    item_index = ItemIndex.from_path(data.index_dir)
    draws, valid = build_mixes(data, dataset, item_index, seed=args.seed, num_epochs=lambda rows: training_epochs(args, rows))
    titles = {int(i): t for i, t in zip(dataset["items"]["item_id"], dataset["items"]["title"])}
    tokenizer, model = build_tokenizer_and_model(model_options, item_index, titles, scratch_tokenizer_texts(draws[0], dataset["items"]))
    model.config.max_history = data.max_history  # recommend() truncates histories as training did

    draws = [tokenize_prompt_completion(draw, tokenizer, args.max_length, name=f"train draw {i}") for i, draw in enumerate(draws)]
    valid = tokenize_prompt_completion(valid, tokenizer, args.max_length, name="validation")
    peft_config = build_lora_config(model, lora) if lora.use_lora else None

    trainer = LCRecSFTTrainer(
        model=model,
        args=args,
        train_dataset=concatenate_datasets(draws),
        eval_dataset=valid,
        processing_class=tokenizer,
        peft_config=peft_config,
        draw_sizes=[len(draw) for draw in draws],
    )
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    logger.info("training %.2fM of %.2fM parameters (%s)", trainable / 1e6, trainer.model.num_parameters() / 1e6, "LoRA" if lora.use_lora else "full")
    result = trainer.train(resume_from_checkpoint=resume_argument(args.resume_from_checkpoint))
    output_dir = save_model_folder(trainer, Path(args.output_dir), use_lora=lora.use_lora)
    if trainer.is_world_process_zero():
        write_json(
            output_dir / TRAINING_RESULTS,
            {
                "base_model": model_options.base_model,
                "use_lora": lora.use_lora,
                "tasks": list(data.tasks),
                "train_rows_per_draw": [len(draw) for draw in draws],
                "valid_rows": len(valid),
                "best_checkpoint": trainer.state.best_model_checkpoint,
                "best_eval_loss": trainer.state.best_metric,
                "metrics": result.metrics,
                "log_history": trainer.state.log_history,
                "seconds": round(time.perf_counter() - started, 1),
            },
        )
    return output_dir


def save_model_folder(trainer, output_dir: Path, use_lora: bool) -> Path:
    """Write the final model folder (AutoModel.from_pretrained loads it). A LoRA run saves the merged weights, and
    for a pretrained base also `adapter/`: LoRA + index-token rows only, which AutoModel loads onto the base.

    Files are written to a staging folder first and each is renamed into place, so a reader never sees a
    half-written file; checkpoints already in `output_dir` stay.
    """
    staging = output_dir / ".final.tmp"
    if trainer.is_world_process_zero() and staging.exists():
        shutil.rmtree(staging)
    if use_lora:
        if trainer.is_world_process_zero():
            peft_model = trainer.accelerator.unwrap_model(trainer.model)
            if peft_model.get_base_model().config.base_model_name_or_path:
                save_adapter(peft_model, staging / "adapter")
            # an LCRecForCausalLM saves its tokenizer (with the index) too
            peft_model.merge_and_unload().save_pretrained(staging)
    else:
        trainer.save_model(str(staging))  # gathers sharded weights under DeepSpeed ZeRO-3 / FSDP
    if trainer.is_world_process_zero():
        # The Trainer's pickled arguments stay in the checkpoints (for resuming), not in the model folder.
        (staging / "training_args.bin").unlink(missing_ok=True)
        for entry in sorted(staging.iterdir()):
            target = output_dir / entry.name
            if entry.is_dir() and target.exists():
                shutil.rmtree(target)
            os.replace(entry, target)
        staging.rmdir()
        logger.info("saved the model folder %s", output_dir)
    trainer.accelerator.wait_for_everyone()
    return output_dir
