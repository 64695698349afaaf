"""The TrlParser shared by `recipes/sft.py` and `lcrec train`: our option dataclasses plus TRL's SFTConfig."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence

from trl import SFTConfig, TrlParser

from ..presets import resolve_config_argument
from .options import DataOptions, LoraOptions, ModelOptions


class SFTParser(TrlParser):
    """TrlParser whose `--config` takes a packaged preset name (`ml-100k-cpu`) as well as a YAML path."""

    def parse_args_and_config(self, args: Iterable[str] | None = None, **kwargs):
        argv = list(args) if args is not None else sys.argv[1:]
        return super().parse_args_and_config(args=resolve_config_argument(argv), **kwargs)


SFT_DATACLASSES = (DataOptions, ModelOptions, LoraOptions, SFTConfig)
HELP = "fine-tune an LC-Rec model with TRL's SFTTrainer"


def make_sft_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None) -> TrlParser:
    """The parser over (DataOptions, ModelOptions, LoraOptions, SFTConfig); `--config NAME|YAML` sets defaults.

    TRL's `make_parser` signature: with `subparsers`, a `train` subcommand of their parser class is added instead.
    """
    if subparsers is not None:
        return subparsers.add_parser("train", help=HELP, dataclass_types=SFT_DATACLASSES)
    return SFTParser(SFT_DATACLASSES, prog=prog)


def parse_sft_args(argv: Sequence[str] | None = None, prog: str | None = None):
    """(DataOptions, ModelOptions, LoraOptions, SFTConfig) from `argv`; unknown keys or flags raise ValueError."""
    return make_sft_parser(prog).parse_args_and_config(argv)
