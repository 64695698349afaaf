"""`lcrec train --config YAML [--key value ...]`: the SFT recipe (recipes/sft.py) from the lcrec command."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    # Every option belongs to the recipe's TrlParser, so this parser only collects them: with "+" as its prefix
    # character, "--key value" pairs are plain arguments here, and `lcrec train --help` shows the recipe's help.
    parser = subparsers.add_parser(
        "train",
        help="fine-tune an LC-Rec model with TRL's SFTTrainer (--help lists every option)",
        prefix_chars="+",
        add_help=False,
    )
    parser.add_argument("options", nargs=argparse.REMAINDER)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lcrec.training import make_sft_parser, run_sft

    parser = make_sft_parser(prog="lcrec train")
    if {"-h", "--help"} & set(args.options):
        parser.description = (
            "Fine-tune an LC-Rec model: `lcrec train --config recipes/configs/NAME.yaml [--key value ...]`. "
            "Same options as `accelerate launch recipes/sft.py` (use that for several GPUs)."
        )
        parser.print_help()
        return 0
    output_dir = run_sft(*parser.parse_args_and_config(args=list(args.options)))
    print(f"model folder: {output_dir}")
    return 0
