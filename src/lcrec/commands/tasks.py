"""`lcrec tasks --data DIR --index DIR --out DIR`: the task mix (train), seqrec on validation targets, mix_info.json.

Renders the LC-Rec tasks into prompt/completion rows with `task` and `template_id` columns and writes a DatasetDict
(train: the mix; validation: seqrec on the validation targets, in the sequence format when the mix has the `sequence`
task and not seqrec, as training does), printing the counts per task.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from . import command_line, command_parser, library_default

HELP = "build the six-task instruction mix (prompt/completion rows) as a DatasetDict"
COMMAND = "tasks"
OUTPUT_SIGNATURE = ("mix_info.json", "dataset_dict.json")


@dataclass
class TasksArguments:
    """The inputs, which tasks and how many samples, and where the mix goes."""

    data: str = field(metadata={"help": "prepared dataset folder (`lcrec prepare --out`)"})
    index: str = field(metadata={"help": "item index folder (`lcrec index --out`) or its index.json"})
    out: str = field(metadata={"help": "output folder (replaced atomically; see --overwrite)"})
    tasks: list[str] = field(
        default_factory=library_default("lcrec.tasks.templates", "TASKS"),
        metadata={"help": "tasks to include: the paper's six, and `sequence` (a user's items as one row)"},
    )
    samples: list[str] = field(
        default_factory=list,
        metadata={
            "help": "cap tasks at a random subset: TASK=COUNT ... (a task lcrec.tasks caps by default keeps its cap "
            "unless set)"
        },
    )
    user_texts: str | None = field(
        default=None,
        metadata={"help": "per-user texts: `lcrec augment` .jsonl or LC-Rec D.user.json (None: the dataset's users)"},
    )
    max_history: int = field(
        default_factory=library_default("lcrec.prompts", "DEFAULT_MAX_HISTORY"),
        metadata={"help": "most recent items shown in a history"},
    )
    seed: int = field(default=0, metadata={"help": "seed of the sample selection and template draws"})
    epochs: int = field(default=1, metadata={"help": "template draws to materialise one after another in train"})
    strict: bool = field(default=False, metadata={"help": "fail instead of skipping a task whose data is missing"})
    overwrite: bool = field(
        default=False, metadata={"help": "replace a non-empty --out folder that `lcrec tasks` did not write"}
    )

    def __post_init__(self) -> None:
        from ..tasks.sequence import MIX_TASKS

        unknown = [task for task in self.tasks if task not in MIX_TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be among {', '.join(MIX_TASKS)}, got {self.tasks}")
        self.sample_caps()
        if self.max_history < 1 or self.epochs < 1:
            raise ValueError(f"max_history and epochs must be >= 1, got {self.max_history} and {self.epochs}")

    def sample_caps(self) -> dict[str, int]:
        """--samples as {task: count}; each entry must be TASK=COUNT with a known task and COUNT >= 1."""
        from ..tasks.templates import TASKS

        caps = {}
        for entry in self.samples:
            task, _, count = entry.partition("=")
            if task not in TASKS or not count.isdigit() or int(count) < 1:
                raise ValueError(
                    f"samples: expected TASK=COUNT with TASK among {', '.join(TASKS)} and COUNT >= 1, got {entry!r}"
                )
            caps[task] = int(count)
        return caps


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    return command_parser(subparsers, COMMAND, HELP, __doc__, (TasksArguments,), prog=prog)


def run(arguments: TasksArguments) -> int:
    from datasets import DatasetDict

    from ..data import load_prepared
    from ..indexing import ItemIndex
    from ..indexing.coverage import check_index_covers_dataset
    from ..io_utils import atomic_dir, check_output_dir, write_json
    from ..tasks import TaskMix, build_validation_mix, mix_prompt_format

    inputs = [arguments.data, arguments.index, arguments.user_texts]
    out = check_output_dir(
        arguments.out, COMMAND, inputs=inputs, overwrite=arguments.overwrite, signature=OUTPUT_SIGNATURE
    )
    dataset = load_prepared(arguments.data)
    item_index = ItemIndex.from_path(arguments.index)
    check_index_covers_dataset(item_index, dataset, index_source=arguments.index, dataset_source=arguments.data)
    samples = arguments.sample_caps()
    mix = TaskMix.build(
        dataset,
        item_index,
        arguments.tasks,
        samples_per_task=samples,
        seed=arguments.seed,
        max_history=arguments.max_history,
        user_texts=arguments.user_texts,
        strict=arguments.strict,
    )
    train = mix.render_epochs(arguments.epochs)
    validation = build_validation_mix(
        dataset,
        item_index,
        seed=arguments.seed,
        max_history=arguments.max_history,
        split="validation",
        prompt_format=mix_prompt_format(mix.tasks),
    )
    skipped = [task for task in arguments.tasks if task not in mix.tasks]
    info = {
        "counts": mix.counts,
        "skipped": skipped,
        "seed": arguments.seed,
        "max_history": arguments.max_history,
        "epochs": arguments.epochs,
        "samples_per_task": samples,
        "user_texts": arguments.user_texts,
        "index_fingerprint": item_index.fingerprint,
        "rows": {"train": len(train), "validation": len(validation)},
        "command": command_line(),
    }
    with atomic_dir(out, command=COMMAND) as tmp:
        DatasetDict({"train": train, "validation": validation}).save_to_disk(str(tmp))
        write_json(tmp / "mix_info.json", info)
    print(f"{'task':<18}{'samples':>10}")
    for task, count in mix.counts.items():
        print(f"{task:<18}{count:>10}")
    draws = f"{arguments.epochs} template draw{'s' if arguments.epochs > 1 else ''}"
    print(f"{'train rows':<18}{len(train):>10}  ({draws})")
    print(f"{'validation rows':<18}{len(validation):>10}  (next item of the validation targets)")
    if skipped:
        print(f"skipped (data missing, see the log): {', '.join(skipped)}")
    print(f"wrote {out}")
    return 0
