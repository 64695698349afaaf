"""`lcrec evaluate --model DIR --data DIR`: full-ranking HR/NDCG of an LC-Rec model, written to metrics.json.

Every user of the split once (HR@1/5/10, NDCG@5/10), over one or several seqrec templates. Several processes:
`accelerate launch -m lcrec.cli evaluate ...` splits the users across them. A local model folder's card
(README.md) gets the results.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..cards.model_card import METRICS_NAME
from . import command_parser

if TYPE_CHECKING:
    from ..evaluation.config import EvaluationConfig

HELP = "full-ranking evaluation (trie-constrained beam search) of an LC-Rec model"


@dataclass
class EvaluateArguments:
    """What `lcrec evaluate` reads and writes (how it evaluates is `EvaluationConfig`)."""

    model: str = field(metadata={"help": "LC-Rec model folder (save_pretrained output), adapter folder or Hub id"})
    data: str = field(metadata={"help": "prepared dataset folder (`lcrec prepare --out`)"})
    out: str | None = field(
        default=None,
        metadata={
            "help": f"metrics file (None: MODEL/{METRICS_NAME} for a folder, which also updates its model card; "
            f"else ./{METRICS_NAME})"
        },
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace an existing --out file that is not a metrics record lcrec wrote"}
    )

    def metrics_path(self) -> str:
        """Where the metrics record goes."""
        if self.out is not None:
            return self.out
        return os.path.join(self.model, METRICS_NAME) if os.path.isdir(self.model) else METRICS_NAME


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    from ..evaluation.config import EvaluationConfig

    return command_parser(subparsers, "evaluate", HELP, __doc__, (EvaluateArguments, EvaluationConfig), prog=prog)


def run(arguments: EvaluateArguments, config: EvaluationConfig) -> int:
    from accelerate import PartialState

    from ..data import load_prepared
    from ..evaluation.report import format_table, is_metrics_record
    from ..evaluation.runner import evaluate_model
    from ..io_utils import check_output_file
    from ..modeling_lcrec import LCRecForCausalLM
    from .checks import require_pretrained

    require_pretrained(arguments.model)
    out = str(
        check_output_file(
            arguments.metrics_path(),
            inputs=[arguments.data],
            command="evaluate",
            is_ours=is_metrics_record,
            overwrite=arguments.overwrite,
        )
    )
    dataset = load_prepared(arguments.data)
    model = LCRecForCausalLM.from_pretrained(arguments.model)
    record = evaluate_model(model, dataset, config, output_file=out)
    if not PartialState().is_main_process:
        return 0
    print(format_table({"LC-Rec": record}))
    if len(record["per_template"]) > 1:
        low, high = record["template_min"]["HR@10"], record["template_max"]["HR@10"]
        print(f"templates {record['templates']}: HR@10 min {low:.4f} max {high:.4f}")
    print(
        f"{record['split']} split, {record['num_beams']} beams, invalid_rate {record['invalid_rate']:.4f}, "
        f"{record['users_per_second']:.2f} users/s, exclude_history={record['exclude_history']}"
    )
    print(f"wrote {out}")
    if not os.path.isdir(arguments.model):
        return 0
    own_record = os.path.join(arguments.model, METRICS_NAME)
    if os.path.realpath(out) == os.path.realpath(own_record):
        from ..cards.model_card import update_model_card_metrics

        update_model_card_metrics(arguments.model, record)  # logs where the card is
    else:  # the folder's own record (and its card) stay as they were: --out sent this evaluation elsewhere
        print(f"{own_record} and the model card are unchanged (leave out --out to record this evaluation there)")
    return 0
