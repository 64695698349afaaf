"""The SFT pipeline of `recipes/sft.py` and `lcrec train`: data -> tokenizer/model -> SFTTrainer -> model folder."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

from ..cards.model_card import TRAINING_RESULTS, write_model_card
from ..io_utils import write_json
from ..prompts import SEQUENCE_FORMAT, SEQUENCE_INSTRUCTION
from .model_folder import prepare_output_dir, save_model_folder
from .options import DataOptions, LoraOptions, ModelOptions

logger = logging.getLogger(__name__)

__all__ = ["TRAINING_RESULTS", "check_sft_config", "resume_argument", "run_sft", "training_epochs"]


def check_sft_config(args) -> None:
    """Reject SFTConfig settings this pipeline cannot honour, naming the setting."""
    if args.completion_only_loss is False:
        raise ValueError("completion_only_loss=False: LC-Rec trains on the completion only; leave it unset or true")
    if args.packing:
        raise ValueError("packing=True is not supported: each epoch samples whole rows of its own template draw")
    if args.shuffle_dataset:
        raise ValueError("shuffle_dataset=True is not needed: the per-epoch sampler shuffles every draw")


def resume_argument(value: str | bool | None) -> str | bool | None:
    """`--resume_from_checkpoint true|last`: the newest checkpoint in output_dir; a path resumes from that one."""
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


def run_sft(data: DataOptions, model_options: ModelOptions, lora: LoraOptions, args, callbacks: Sequence = ()) -> Path:
    """Train an LC-Rec model with TRL's SFTTrainer and write the model folder `args.output_dir`; returns its path.

    `args` (an SFTConfig) is not modified. `callbacks` are extra `transformers.TrainerCallback`s.
    """
    from datasets import concatenate_datasets
    from transformers import set_seed

    from ..data import load_prepared
    from ..evaluation.baselines.sasrec import SASRec
    from ..indexing import ItemIndex
    from .distillation import SASRecTeacher
    from .model_setup import build_lora_config, build_tokenizer_and_model
    from .scratch import scratch_tokenizer_texts
    from .template_draws import build_template_draws
    from .tokenize import tokenize_prompt_completion
    from .trainer import LCRecSFTTrainer

    if not data.dataset_dir or not data.index_dir:
        raise ValueError("dataset_dir and index_dir are required (the folders of `lcrec prepare` and `lcrec index`)")
    check_sft_config(args)
    output_dir = prepare_output_dir(args, data, model_options)
    started = time.perf_counter()
    # Read before the long part, and before seeding: building the SASRec module draws from torch's generator.
    teacher_model = SASRec.from_pretrained(data.teacher_dir) if data.teacher_dir else None
    set_seed(args.seed)

    dataset = load_prepared(data.dataset_dir)
    item_index = ItemIndex.from_path(data.index_dir)
    draws, validation = build_template_draws(
        data, dataset, item_index, seed=args.seed, num_epochs=lambda rows: training_epochs(args, rows)
    )
    titles = {int(i): t for i, t in zip(dataset["items"]["item_id"], dataset["items"]["title"])}
    texts = scratch_tokenizer_texts(draws[0], dataset["items"])
    tokenizer, model = build_tokenizer_and_model(model_options, item_index, titles, texts)
    model.config.max_history = data.max_history  # recommend() truncates histories as training did
    model.config.seqrec_format = data.prompt_format  # and asks in the format its validation rows had
    if data.prompt_format == SEQUENCE_FORMAT:  # one wording: the sequence instruction is the model's only template
        model.config.seqrec_templates = [SEQUENCE_INSTRUCTION]

    draws = [
        tokenize_prompt_completion(draw, tokenizer, args.max_length, name=f"train draw {i}")
        for i, draw in enumerate(draws)
    ]
    validation = tokenize_prompt_completion(validation, tokenizer, args.max_length, name="validation")
    teacher = (
        SASRecTeacher(teacher_model, tokenizer, data.teacher_temperature, data.teacher_sampling)
        if teacher_model
        else None
    )
    trainer = LCRecSFTTrainer(
        model=model,
        args=args,
        train_dataset=concatenate_datasets(draws),
        eval_dataset=validation,
        processing_class=tokenizer,
        peft_config=build_lora_config(model, lora) if lora.use_lora else None,
        callbacks=[*callbacks, *training_callbacks(data, dataset, args)],
        draw_sizes=[len(draw) for draw in draws],
        teacher=teacher,
        teacher_weight=data.teacher_weight,
    )
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    logger.info(
        "training %.2fM of %.2fM parameters (%s)",
        trainable / 1e6,
        trainer.model.num_parameters() / 1e6,
        "LoRA" if lora.use_lora else "full",
    )
    result = trainer.train(resume_from_checkpoint=resume_argument(args.resume_from_checkpoint))
    save_model_folder(trainer, output_dir, use_lora=lora.use_lora)
    if trainer.is_world_process_zero():
        state = trainer.state
        write_json(
            output_dir / TRAINING_RESULTS,
            {
                "base_model": model_options.base_model,
                "use_lora": lora.use_lora,
                "tasks": list(data.tasks),
                "train_rows_per_draw": [len(draw) for draw in draws],
                "validation_rows": len(validation),
                "best_checkpoint": _relative_checkpoint(state.best_model_checkpoint, output_dir),
                "best_eval_loss": state.best_metric,  # the best metric_for_best_model (eval_loss unless set)
                "metric_for_best_model": args.metric_for_best_model,
                "distillation": teacher.record(data.teacher_weight) if teacher else None,
                "settings": training_settings(trainer.args, lora, state),
                "metrics": result.metrics,
                "log_history": state.log_history,
                "seconds": round(time.perf_counter() - started, 1),
            },
        )
        write_model_card(output_dir, dataset_dir=data.dataset_dir, index_dir=data.index_dir)
    return output_dir


def training_callbacks(data: DataOptions, dataset, args) -> list:
    """Validation ranking metrics at each evaluation, and early stopping on `metric_for_best_model`, as `data` asks."""
    from transformers import EarlyStoppingCallback

    from .ranking_eval import RankingEvaluationCallback

    callbacks = []
    if data.ranking_eval_users:
        callbacks.append(RankingEvaluationCallback(dataset, max_users=data.ranking_eval_users, seed=args.seed))
    if data.early_stopping_patience:
        if not (args.load_best_model_at_end and args.metric_for_best_model):
            raise ValueError("early_stopping_patience needs load_best_model_at_end and metric_for_best_model")
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=data.early_stopping_patience))
    return callbacks


def training_settings(args, lora: LoraOptions, state) -> dict:
    """The settings the model card shows: JSON scalars and lists, no paths."""
    settings = {
        "learning_rate": args.learning_rate,
        "lr_scheduler_type": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "max_steps": args.max_steps,
        "num_train_epochs": state.num_train_epochs,
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "world_size": args.world_size,
        "max_length": args.max_length,
        "seed": args.seed,
        "global_step": state.global_step,
    }
    if lora.use_lora:
        settings.update(
            lora_r=lora.lora_r,
            lora_alpha=lora.lora_alpha,
            lora_dropout=lora.lora_dropout,
            lora_target_modules=list(lora.lora_target_modules),
        )
    return settings


def _relative_checkpoint(path: str | None, output_dir: Path) -> str | None:
    """The best checkpoint as a path inside output_dir (no machine paths in published records)."""
    if not path:
        return None
    try:
        return Path(path).resolve().relative_to(output_dir.resolve()).as_posix()
    except ValueError:
        return Path(path).name
