"""The TrlParser shared by `recipes/sft.py` and `lcrec train`: our option dataclasses plus TRL's SFTConfig."""

from __future__ import annotations

from collections.abc import Sequence

from .options import DataOptions, LoraOptions, ModelOptions


def make_sft_parser(prog: str | None = None):
    """TrlParser over (DataOptions, ModelOptions, LoraOptions, SFTConfig); `--config YAML` sets defaults."""
    from trl import SFTConfig, TrlParser

    return TrlParser((DataOptions, ModelOptions, LoraOptions, SFTConfig), prog=prog)


def parse_sft_args(argv: Sequence[str] | None = None, prog: str | None = None):
    """(DataOptions, ModelOptions, LoraOptions, SFTConfig) from `argv`; unknown config keys or flags raise ValueError."""
    return make_sft_parser(prog).parse_args_and_config(args=argv)
