"""Supervised fine-tuning of LC-Rec models with TRL's SFTTrainer (used by `recipes/sft.py` and `lcrec train`)."""

from .options import ALL_TASKS, DataOptions, LoraOptions, ModelOptions
from .parser import make_sft_parser, parse_sft_args
from .sft import run_sft

__all__ = ["ALL_TASKS", "DataOptions", "LoraOptions", "ModelOptions", "make_sft_parser", "parse_sft_args", "run_sft"]
