"""`lcrec train --config NAME|YAML [--key value ...]`: the SFT recipe (recipes/sft.py) from the lcrec command.

Fine-tunes an LC-Rec model with TRL's SFTTrainer. The options are lcrec.training's DataOptions, ModelOptions and
LoraOptions next to TRL's SFTConfig, all settable in one YAML (`--config`: a packaged preset such as ml-100k-cpu,
or a path) with `--key value` overrides. Same options as `accelerate launch recipes/sft.py` (use that for several
GPUs).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from . import CommandHelpFormatter

if TYPE_CHECKING:
    from trl import SFTConfig

    from ..training import DataOptions, LoraOptions, ModelOptions

HELP = "fine-tune an LC-Rec model with TRL's SFTTrainer (--config PRESET|YAML, --help lists every option)"


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from ..presets import list_presets
    from ..training import make_sft_parser

    parser = make_sft_parser(subparsers, prog=prog or "lcrec train")
    parser.description = __doc__
    parser.formatter_class = CommandHelpFormatter
    # TrlParser reads --config before argparse sees it; declared here so that --help lists it.
    parser.add_argument(
        "--config",
        help=f"a packaged preset ({', '.join(list_presets())}) or a YAML file of these options; flags override it",
    )
    return parser


def run(data: DataOptions, model: ModelOptions, lora: LoraOptions, training: SFTConfig) -> int:
    from ..training import run_sft

    print(f"model folder: {run_sft(data, model, lora, training)}")
    return 0
