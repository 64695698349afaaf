"""`lcrec quickstart` (what `make quickstart` runs): MovieLens-100K end to end on CPU, with baselines.

The whole pipeline on MovieLens-100K on CPU: prepare, index, train (the ml-100k-cpu preset), evaluate, and compare
with SASRec and most-popular on the same users. Prints each stage's time, a results table and example
recommendations; artifacts go to --out. Choose options with `--split validation`; report the test split once.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from . import command_line, command_parser

if TYPE_CHECKING:
    from ..evaluation.config import EvaluationConfig
    from ..workflows.quickstart import QuickstartOptions

HELP = "MovieLens-100K: prepare, index, train (CPU preset), evaluate, and compare with SASRec and most-popular"


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from ..evaluation.config import EvaluationConfig
    from ..workflows.quickstart import QuickstartOptions

    return command_parser(subparsers, "quickstart", HELP, __doc__, (QuickstartOptions, EvaluationConfig), prog=prog)


def run(options: QuickstartOptions, evaluation: EvaluationConfig) -> int:
    from ..workflows.quickstart import run_quickstart

    run_quickstart(options, evaluation, command=command_line())
    return 0
