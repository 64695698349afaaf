"""`lcrec tasks --data DIR --index DIR --out DIR`: write the task mix (train), the seqrec validation mix (valid) and mix_info.json."""

from __future__ import annotations

import argparse

from lcrec.tasks.templates import TASKS as TASK_NAMES


def _sample_cap(text: str) -> tuple[str, int]:
    task, _, count = text.partition("=")
    if task not in TASK_NAMES or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"expected TASK=COUNT with TASK among {', '.join(TASK_NAMES)} and COUNT >= 1, got {text!r}")
    return task, int(count)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tasks",
        help="build the six-task instruction mix (prompt/completion rows) as a DatasetDict",
        description="Render the LC-Rec tasks into prompt/completion rows with task and template_id columns; "
        "writes a DatasetDict (train: the mix, valid: seqrec on the validation targets) and prints counts per task.",
    )
    parser.add_argument("--data", required=True, help="prepared dataset folder (`lcrec prepare --out`)")
    parser.add_argument("--index", required=True, help="item index folder (`lcrec index --out`) or its index.json")
    parser.add_argument("--out", required=True, help="output folder (replaced atomically)")
    parser.add_argument("--tasks", nargs="+", default=list(TASK_NAMES), choices=TASK_NAMES, metavar="TASK", help=f"tasks to include (default: all of {', '.join(TASK_NAMES)})")
    parser.add_argument("--samples", type=_sample_cap, action="append", default=[], metavar="TASK=COUNT", help="cap a task at a random subset (repeatable); fusionseqrec defaults to 20000")
    parser.add_argument("--user-texts", help="per-user texts: `lcrec augment` .jsonl or LC-Rec D.user.json (default: the dataset's users split)")
    parser.add_argument("--max-history", type=int, default=20, help="most recent items shown in a history (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample selection and template draws")
    parser.add_argument("--epochs", type=int, default=1, help="template draws to materialise one after another in train (default 1)")
    parser.add_argument("--strict", action="store_true", help="fail instead of skipping a task whose data is missing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datasets import DatasetDict

    from lcrec.data import load_prepared
    from lcrec.io_utils import atomic_dir, write_json
    from lcrec.tasks import TaskMix, build_validation_mix
    from lcrec.indexing import ItemIndex

    dataset = load_prepared(args.data)
    item_index = ItemIndex.from_path(args.index)
    mix = TaskMix.build(
        dataset,
        item_index,
        args.tasks,
        samples_per_task=dict(args.samples),
        seed=args.seed,
        max_history=args.max_history,
        user_texts=args.user_texts,
        strict=args.strict,
    )
    train = mix.render_epochs(args.epochs)
    valid = build_validation_mix(dataset, item_index, seed=args.seed, max_history=args.max_history)
    skipped = [task for task in args.tasks if task not in mix.tasks]
    info = {
        "counts": mix.counts,
        "skipped": skipped,
        "seed": args.seed,
        "max_history": args.max_history,
        "epochs": args.epochs,
        "samples_per_task": dict(args.samples),
        "user_texts": args.user_texts,
        "rows": {"train": len(train), "valid": len(valid)},
    }
    with atomic_dir(args.out) as tmp:
        DatasetDict({"train": train, "valid": valid}).save_to_disk(str(tmp))
        write_json(tmp / "mix_info.json", info)
    print(f"{'task':<18}{'samples':>10}")
    for task, count in mix.counts.items():
        print(f"{task:<18}{count:>10}")
    print(f"{'train rows':<18}{len(train):>10}  ({args.epochs} template draw{'s' if args.epochs > 1 else ''})")
    print(f"{'valid rows':<18}{len(valid):>10}  (seqrec on validation targets)")
    if skipped:
        print(f"skipped (data missing, see the log): {', '.join(skipped)}")
    print(f"wrote {args.out}")
    return 0
