"""A data-derived CPU preset: SFT settings computed from a prepared dataset, its item index and a CPU budget.

A preset tuned on one dataset breaks on another (the old Scientific preset fell to a quarter of SASRec on an Amazon
category outside this repo, and dropped rows at its `max_length`). The rules come from the validation-split runs in
the README's Results (Amazon Scientific and MovieLens-100K, the 0.7M scratch Llama, one torch thread):

- tasks: the `sequence` task (every next item of a user's sequence in one row) matched or beat the paper's mix on
  both datasets at a fraction of the CPU time; item2index/index2item join only with `alignment=True` (they helped
  MovieLens NDCG@10 a little and Scientific not at all).
- max_history (also the sequence window): the 90th percentile of training-sequence lengths, within [20, 50].
- max_length / scratch_max_positions: the longest row the data can make (instruction + window + EOS, or an
  alignment row with the longest title), so no row is ever dropped.
- epochs: both datasets peaked at about TARGET_EPOCHS passes over their training targets under a cosine schedule
  (16 over-fitted Scientific); fewer when the CPU budget cannot pay for them, at the throughput measured for the
  0.7M model (3M was worse at these data sizes).
- distillation (with a SASRec teacher, `teacher_dir`): the soft targets alone (weight 1.0) and about
  DISTILLED_TARGET_EPOCHS passes, since the teacher's targets keep the model from over-fitting the one-hot ones
  (Scientific, two seeds each: 8 / 12 / 16 / 24 epochs, README Results); a step costs what a plain one does.
  When the budget pays for SAMPLED_TARGET_EPOCHS, half the distilled items are drawn from the teacher
  (`teacher_sampling`), which kept Scientific improving up to epochs 22-23 and beat 16 epochs without drawing on all
  three seeds; with fewer epochs drawing did not help (16 epochs at 0.3: level), so a tighter budget does not draw.
- checkpoint: validation NDCG@10 on up to RANKING_EVAL_USERS seeded users at every epoch picks the checkpoint, as
  SASRec's early stopping does (on Scientific all 2,843 users chose better checkpoints than 1,000: a flat curve
  read on a small sample picks a noisy early peak).
The index is built separately; the README recommends `lcrec index --collaborative sasrec` (LETTER alignment).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..prompts import SEQUENCE_INSTRUCTION
from .options import DEFAULT_TEACHER_WEIGHT

logger = logging.getLogger(__name__)

# The cost model, fitted to the SFT CPU time of runs of the 0.7M model on the 2-core machine (one torch thread,
# ranking evaluation after every epoch): Scientific (window 20, 8 epochs, 1,000 ranked users, 133 s; 24 epochs,
# 2,843 users, 433 s), Amazon Beauty (window 20, 5 epochs, 1,000 users, 575 s), a 4,182-user Beauty sample
# (bench/heldout.py: 16 epochs, 3,000 users, 458 s) and MovieLens-100K (window 50, 6 epochs, 484 s). Training runs
# at about 10,900 non-padding tokens per CPU second with 21-item windows and 6,000 with 51-item ones (attention
# grows with the row), linear in between. Each epoch's evaluation costs about 4.9 s whatever its size (the loss
# pass, the checkpoint) plus 0.7 ms per ranked validation user: 1,000 users cost 5.6 s, 3,000 users 7 s.
TOKENS_PER_CPU_SECOND_BY_WINDOW = ((20, 10_900), (50, 6_000))
EPOCH_OVERHEAD_CPU_SECONDS = 4.9
RANKING_SECONDS_PER_USER = 0.0007
TARGET_EPOCHS = 8
DISTILLED_TARGET_EPOCHS = 16
SAMPLED_TARGET_EPOCHS = 24
TEACHER_SAMPLING = 0.5
# The first words of every preset `lcrec preset` writes (how it recognises its own earlier output).
PRESET_HEADER = "# Derived by `lcrec preset`"
MIN_HISTORY, MAX_HISTORY = 20, 50
DEFAULT_CPU_MINUTES = 15.0
SEQUENCE_PROMPT_TOKENS = 18  # the sequence instruction in the scratch tokenizer (measured on both datasets)
ALIGNMENT_PROMPT_TOKENS = 40  # an item2index/index2item template without its title
CHARS_PER_TOKEN = 3.0  # byte-level BPE of a 1-2k vocabulary on English titles
RANKING_EVAL_USERS = 3000
VALIDATION_SAMPLES = 500


@dataclass
class DataProfile:
    """What the derivation reads from a prepared dataset and its index."""

    users: int
    items: int
    train_targets: int
    p90_length: int
    levels: int
    mean_title_chars: float
    max_title_chars: int

    @classmethod
    def from_dataset(cls, dataset, levels: int) -> DataProfile:
        """The profile of a prepared DatasetDict (train and items splits) for an index of `levels` levels."""
        train = dataset["train"]
        lengths = np.asarray([len(history) + 1 for history in train["history"]])
        titles = [len(title or "") for title in dataset["items"]["title"]]
        return cls(
            users=len(train),
            items=len(dataset["items"]),
            train_targets=int(np.maximum(lengths - 1, 0).sum()),
            p90_length=int(np.percentile(lengths, 90)) if len(lengths) else 1,
            levels=levels,
            mean_title_chars=float(np.mean(titles)) if titles else 0.0,
            max_title_chars=max(titles, default=0),
        )


def training_tokens_per_cpu_second(window: int) -> float:
    """The cost model's training throughput for sequence windows of `window` items (linear between the two
    measured windows, held at the nearer one outside them)."""
    (low_window, low_rate), (high_window, high_rate) = TOKENS_PER_CPU_SECOND_BY_WINDOW
    share = min(1.0, max(0.0, (window - low_window) / (high_window - low_window)))
    return low_rate + share * (high_rate - low_rate)


def epoch_cpu_seconds(profile: DataProfile, window: int, alignment: bool) -> float:
    """Estimated CPU seconds (one torch thread) of one epoch: training plus the evaluation after it."""
    evaluation = EPOCH_OVERHEAD_CPU_SECONDS + RANKING_SECONDS_PER_USER * min(RANKING_EVAL_USERS, profile.users)
    return epoch_tokens(profile, window, alignment) / training_tokens_per_cpu_second(window) + evaluation


def epoch_tokens(profile: DataProfile, window: int, alignment: bool) -> int:
    """Estimated non-padding tokens of one epoch of the mix."""
    rows = profile.train_targets / window + profile.users  # windows per user: ceil((n - 1) / window)
    tokens = rows * (SEQUENCE_PROMPT_TOKENS + 1) + (profile.train_targets + rows) * profile.levels
    if alignment:
        title_tokens = profile.mean_title_chars / CHARS_PER_TOKEN
        tokens += 2 * profile.items * (ALIGNMENT_PROMPT_TOKENS + title_tokens + profile.levels + 1)
    return int(tokens)


def derive_preset(
    profile: DataProfile,
    cpu_minutes: float = DEFAULT_CPU_MINUTES,
    alignment: bool = False,
    teacher_dir: str | None = None,
) -> dict:
    """SFT options (TrlParser keys, as in a YAML preset) for the scratch CPU model within `cpu_minutes` of training;
    with `teacher_dir` (a SASRec folder) the model is distilled from that SASRec.

    The key `_estimate` holds the profile and the cost estimate (`write_derived_preset` turns it into comments).
    """
    if not cpu_minutes > 0:
        raise ValueError(f"cpu_minutes must be positive, got {cpu_minutes}")
    if profile.train_targets < 1:
        raise ValueError("the train split has no sequence of two or more items: nothing to train on")
    window = int(min(MAX_HISTORY, max(MIN_HISTORY, profile.p90_length)))
    per_epoch = epoch_cpu_seconds(profile, window, alignment)
    affordable = cpu_minutes * 60 / per_epoch
    sampling = TEACHER_SAMPLING if teacher_dir and affordable >= SAMPLED_TARGET_EPOCHS else 0.0
    target = SAMPLED_TARGET_EPOCHS if sampling else DISTILLED_TARGET_EPOCHS if teacher_dir else TARGET_EPOCHS
    epochs = max(1, min(target, math.floor(affordable)))
    if affordable < 1:
        logger.warning(
            "cpu_minutes %g pays for %.2f of an epoch (%.2f CPU minutes each); the preset plans one epoch anyway",
            cpu_minutes,
            affordable,
            per_epoch / 60,
        )
    longest = SEQUENCE_PROMPT_TOKENS + (window + 1) * profile.levels + 1
    if alignment:
        longest = max(longest, ALIGNMENT_PROMPT_TOKENS + math.ceil(profile.max_title_chars / 2) + profile.levels + 1)
    max_length = 32 * math.ceil(longest / 32)
    # Rows of short sequences (Scientific, ~38 tokens) trained best at 64 per batch, long windows (MovieLens) at 32.
    rows = profile.train_targets / window + profile.users
    batch = 64 if epoch_tokens(profile, window, alignment=False) / rows <= 64 else 32
    teacher = (
        {"teacher_dir": teacher_dir, "teacher_weight": DEFAULT_TEACHER_WEIGHT, "teacher_sampling": sampling}
        if teacher_dir
        else {}
    )
    return {
        "tasks": ["sequence", "item2index", "index2item"] if alignment else ["sequence"],
        "max_history": window,
        **teacher,
        "validation_samples": min(VALIDATION_SAMPLES, profile.users),
        "ranking_eval_users": min(RANKING_EVAL_USERS, profile.users),
        "base_model": "scratch",
        "scratch_hidden_size": 128,
        "scratch_num_layers": 2,
        "scratch_num_heads": 4,
        "scratch_intermediate_size": 384,
        "scratch_max_positions": max_length,
        "max_length": max_length,
        "num_train_epochs": epochs,
        "per_device_train_batch_size": batch,
        "learning_rate": 3.0e-3,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0.02,
        "weight_decay": 0.01,
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "load_best_model_at_end": True,
        "metric_for_best_model": "NDCG@10",
        "greater_is_better": True,
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,
        "report_to": "none",
        "_estimate": {
            "cpu_minutes_per_epoch": round(per_epoch / 60, 2),
            "affordable_epochs": round(affordable, 1),
            "profile": asdict(profile),
        },
    }


def write_derived_preset(
    dataset_dir: str | os.PathLike,
    index_dir: str | os.PathLike,
    out: str | os.PathLike,
    cpu_minutes: float = DEFAULT_CPU_MINUTES,
    alignment: bool = False,
    teacher_dir: str | os.PathLike | None = None,
) -> dict:
    """Derive a preset for a prepared dataset and its index and write it as YAML (profile and estimate as comments).

    Returns the options written (without the estimate).
    """
    import yaml

    from ..data import load_prepared
    from ..indexing import ItemIndex, check_index_covers_dataset
    from ..io_utils import write_text

    index = ItemIndex.from_path(index_dir)
    dataset = load_prepared(dataset_dir)
    check_index_covers_dataset(index, dataset)
    profile = DataProfile.from_dataset(dataset, index.levels)
    if teacher_dir is not None:
        from ..evaluation.baselines.sasrec import SASRec

        teacher = SASRec.from_pretrained(teacher_dir)  # a readable SASRec folder that knows this catalogue
        if teacher.config.num_items != profile.items:
            raise ValueError(
                f"--teacher {teacher_dir}: a SASRec of {teacher.config.num_items} items, but the dataset has "
                f"{profile.items}: train it on this dataset (`lcrec baseline sasrec --save_model DIR`)"
            )
        teacher_dir = str(teacher_dir)
    options = derive_preset(profile, cpu_minutes, alignment, teacher_dir)
    estimate = options.pop("_estimate")
    options = {"dataset_dir": str(dataset_dir), "index_dir": str(index_dir), **options}
    header = [
        f"{PRESET_HEADER} for {dataset_dir} (index {index_dir}) within {cpu_minutes:g} CPU minutes "
        "of training (one torch thread).",
        f"# Data: {profile.users:,} users, {profile.items:,} items, {profile.train_targets:,} training targets, "
        f"90th-percentile sequence length {profile.p90_length}, {profile.levels} index levels.",
        f"# Estimate: {estimate['cpu_minutes_per_epoch']:.2f} CPU minutes per epoch, "
        f"{estimate['affordable_epochs']:g} epochs affordable; {options['num_train_epochs']} planned, the epoch with "
        "the best validation NDCG@10 is kept.",
        f"# Prompt of the sequence task: {SEQUENCE_INSTRUCTION!r} followed by the items' index tokens.",
        "#   accelerate launch recipes/sft.py --config THIS_FILE --output_dir runs/NAME/model",
    ]
    write_text(Path(out), "\n".join(header) + "\n\n" + yaml.safe_dump(options, sort_keys=False))
    return options


def is_derived_preset(path: str | os.PathLike) -> bool:
    """True when `path` is a preset `lcrec preset` wrote (it may replace it; any other file at --out is kept)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().startswith(PRESET_HEADER)
    except (OSError, UnicodeDecodeError):
        return False


__all__ = [
    "PRESET_HEADER",
    "DataProfile",
    "derive_preset",
    "epoch_tokens",
    "is_derived_preset",
    "write_derived_preset",
]
