"""`lcrec preset --data DIR --index DIR --out FILE.yaml`: a CPU SFT preset derived from your own data.

Reads the prepared dataset and its item index and writes a YAML preset for `recipes/sft.py --config` /
`lcrec train --config`: the `sequence` task with a window from the sequence lengths, `max_length` from the longest
row (no row is dropped), epochs within `--cpu_minutes` (one torch thread), the checkpoint with the best
validation NDCG@10, and with `--teacher` distillation from a SASRec trained on the same data. The rules and the
validation runs behind them are in the README (Results) and `lcrec.training.derive`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from . import command_parser, library_default

HELP = "derive an SFT preset (YAML) for your own data: history window, max_length, epochs within a CPU budget"


@dataclass
class PresetArguments:
    """The prepared dataset and index the preset is derived from, the CPU budget, and the YAML file to write."""

    data: str = field(metadata={"help": "prepared dataset folder (`lcrec prepare --out`)"})
    index: str = field(metadata={"help": "item index folder (`lcrec index --out`) or an index.json"})
    out: str = field(metadata={"help": "YAML file to write (replaced atomically)"})
    overwrite: bool = field(
        default=False, metadata={"help": "replace an existing --out file that `lcrec preset` did not write"}
    )
    cpu_minutes: float = field(
        default_factory=library_default("lcrec.training.derive", "DEFAULT_CPU_MINUTES"),
        metadata={"help": "SFT budget in CPU minutes of one torch thread"},
    )
    alignment: bool = field(
        default=False, metadata={"help": "add item2index/index2item to the mix (default: the sequence task alone)"}
    )
    teacher: str | None = field(
        default=None,
        metadata={
            "help": "a SASRec folder trained on this dataset (`lcrec baseline sasrec --save_model DIR`): distil "
            "from it (None: no teacher)"
        },
    )

    def __post_init__(self) -> None:
        if not self.cpu_minutes > 0:
            raise ValueError(f"cpu_minutes must be positive, got {self.cpu_minutes}")
        if not self.out.endswith((".yaml", ".yml")):
            raise ValueError(f"--out must name a .yaml file, got {self.out!r}")


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    return command_parser(subparsers, "preset", HELP, __doc__, (PresetArguments,), prog=prog)


def run(arguments: PresetArguments) -> int:
    from ..io_utils import check_output_file
    from ..training.derive import is_derived_preset, write_derived_preset

    for path, option in ((arguments.data, "--data"), (arguments.index, "--index"), (arguments.teacher, "--teacher")):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{option} {path}: no such file or folder")
    check_output_file(
        arguments.out,
        inputs=[arguments.data, arguments.index, arguments.teacher],
        command="preset",
        is_ours=is_derived_preset,
        overwrite=arguments.overwrite,
    )
    options = write_derived_preset(
        arguments.data,
        arguments.index,
        arguments.out,
        cpu_minutes=arguments.cpu_minutes,
        alignment=arguments.alignment,
        teacher_dir=arguments.teacher,
    )
    print(
        f"preset -> {arguments.out}: tasks {options['tasks']}, max_history {options['max_history']}, "
        f"max_length {options['max_length']}, {options['num_train_epochs']} epochs of batch "
        f"{options['per_device_train_batch_size']}"
        + (f", distilled from {arguments.teacher}" if arguments.teacher else "")
        + (f" (teacher_sampling {options['teacher_sampling']})" if options.get("teacher_sampling") else "")
    )
    return 0
