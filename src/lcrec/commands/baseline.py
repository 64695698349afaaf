"""`lcrec baseline --model sasrec|pop --data DIR`: a classic baseline on the same split and metric code as LC-Rec.

Fits on the train split (SASRec: early stopping on the validation split's NDCG@10) and evaluates on --split with
the same metrics, users (--max_users/--user_seed) and history exclusion as `lcrec evaluate`. The distillation
teacher of the CPU presets is a SASRec as well: `--item_text INDEX --early_stopping false --max_epochs 16
--save_model DIR` (item text vectors in its item table, a fixed schedule; see `lcrec.training.teacher`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from . import command_parser

if TYPE_CHECKING:
    from ..evaluation.baselines import SASRecConfig
    from ..evaluation.config import UserSelection

HELP = "train and evaluate a baseline (most-popular or SASRec) with full ranking"
SAVE_COMMAND = "baseline"


@dataclass
class BaselineArguments:
    """Which baseline, on which dataset, and where its record and weights go (SASRec's settings: SASRecConfig)."""

    model: Literal["sasrec", "pop", "most_popular"] = field(metadata={"help": "which baseline"})
    data: str = field(metadata={"help": "prepared dataset folder (`lcrec prepare --out`)"})
    out: str | None = field(default=None, metadata={"help": "metrics JSON path (None: print only)"})
    save_model: str | None = field(default=None, metadata={"help": "folder for the SASRec weights (None: not saved)"})
    item_text: str | None = field(
        default=None,
        metadata={
            "help": "SASRec only: an `lcrec index` folder (or its embeddings.safetensors) whose item text vectors "
            "join the item table while training, as the distillation teacher of the CPU presets is trained "
            "(None: item ids alone, the reported baseline)"
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "replace a non-empty --save_model folder or an --out file that `lcrec baseline` did not write"
        },
    )


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from ..evaluation.baselines import SASRecConfig
    from ..evaluation.config import UserSelection

    dataclass_types = (BaselineArguments, UserSelection, SASRecConfig)
    return command_parser(subparsers, "baseline", HELP, __doc__, dataclass_types, prog=prog)


def run(arguments: BaselineArguments, users: UserSelection, config: SASRecConfig) -> int:
    from ..data import load_prepared
    from ..evaluation.baselines import run_baseline
    from ..evaluation.baselines.sasrec import CONFIG_NAME, WEIGHTS_NAME
    from ..evaluation.report import format_table, is_metrics_record
    from ..io_utils import check_output_dir, check_output_file, write_json

    if arguments.out is not None:
        check_output_file(
            arguments.out,
            inputs=[arguments.data],
            command="baseline",
            is_ours=is_metrics_record,
            overwrite=arguments.overwrite,
        )
    if arguments.save_model is not None:
        # A folder holding a saved SASRec (both files) is a previous output and may be replaced.
        check_output_dir(
            arguments.save_model,
            SAVE_COMMAND,
            inputs=[arguments.data],
            overwrite=arguments.overwrite,
            signature=(CONFIG_NAME, WEIGHTS_NAME),
        )
    dataset = load_prepared(arguments.data)
    item_text = None
    if arguments.item_text is not None:
        from ..indexing.embedding import read_item_embeddings

        item_text = read_item_embeddings(arguments.item_text, len(dataset["items"]))
    record = run_baseline(
        arguments.model, dataset, users, sasrec_config=config, model_dir=arguments.save_model, item_text=item_text
    )
    print(format_table({record["method"]: record}))
    if arguments.out:
        write_json(arguments.out, record)
        print(f"wrote {arguments.out}")
    return 0
