"""LC-Rec vs SASRec vs most-popular on Scientific and MovieLens-100K (full ranking, same test users).

    .venv/bin/python bench/quality.py --split validation              # choose options on validation users
    .venv/bin/python bench/quality.py                                  # the test split, once, for the report
    .venv/bin/python bench/quality.py --datasets ml-100k --max-steps 3000 --eval-users all --templates all
    .venv/bin/python bench/quality.py --split validation --datasets scientific --set num_train_epochs=6 --seed 43

Each dataset runs the `lcrec quickstart` workflow (lcrec.workflows.quickstart) with its CPU preset and its index
recipe (Scientific: `--collaborative sasrec`, LETTER alignment; MovieLens-100K: text only) and prints a table that
states data, split, model, training steps with their wall and CPU time, hardware and the number of users; README
numbers come from here. SASRec is trained in the same run (cross-entropy, early stopping on validation NDCG@10,
--sasrec-seconds budget). Artifacts go to bench/out/quality/<dataset>/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

# name, source, SFT preset, index recipe (collaborative source or None: text only), teacher with item text
DATASETS = {
    "scientific": ("Amazon Scientific", "../shared/data/scientific", "scientific-cpu", "sasrec", True),
    "ml-100k": ("MovieLens-100K", "ml-100k", "ml-100k-cpu", None, False),
}


def hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    cores = len(os.sched_getaffinity(0))
    return f"{platform.processor() or platform.machine()} CPU, {cores} cores, {torch.get_num_threads()} torch threads"


def training_steps(model_dir: Path) -> str:
    """Optimizer steps and model size from the training record the SFT pipeline writes."""
    path = model_dir / "training_results.json"
    if not path.is_file():
        return "?"
    results = json.loads(path.read_text())
    steps = max((entry.get("step", 0) for entry in results.get("log_history", [])), default=0)
    return f"{steps} steps ({results.get('base_model')}, tasks {','.join(results.get('tasks', []))})"


def parse_overrides(entries: list[str]) -> dict:
    """`KEY=VALUE` SFT overrides, the value read as YAML (numbers, booleans, lists such as [sequence, seqrec])."""
    import yaml

    overrides = {}
    for entry in entries:
        key, separator, value = entry.partition("=")
        if not separator or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {entry!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--datasets", default="scientific,ml-100k", help="comma-separated among " + ", ".join(DATASETS)
    )
    parser.add_argument("--out", default="bench/out/quality")
    parser.add_argument("--max-steps", type=int, help="SFT steps (default: each preset's schedule)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the index, SFT and SASRec")
    parser.add_argument("--eval-users", default="all", help="'all' or a seeded sample size")
    parser.add_argument("--templates", default="0", help="LC-Rec seqrec templates: ids or 'all'")
    parser.add_argument("--sasrec-seconds", type=float, default=600.0)
    parser.add_argument("--exclude-history", action="store_true")
    parser.add_argument(
        "--split",
        default="test",
        choices=("test", "validation", "valid"),
        help="users to evaluate: choose options on validation, report the test split once",
    )
    parser.add_argument("--reuse", action="store_true", help="reuse data/index/model folders already under --out")
    parser.add_argument("--config", help="SFT preset for every dataset (default: each dataset's CPU preset)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override an SFT option of the preset"
    )
    parser.add_argument(
        "--collaborative",
        choices=("default", "none", "letter", "concat", "only"),
        default="default",
        help="index recipe: each dataset's (default), text only (none), or SASRec vectors in this mode",
    )
    parser.add_argument("--data-dir", help="a prepared dataset folder to reuse (one dataset only)")
    parser.add_argument("--index-dir", help="an item index folder to reuse (one dataset only)")
    args = parser.parse_args()
    if (args.data_dir or args.index_dir) and "," in args.datasets:
        parser.error("--data-dir / --index-dir name one dataset's folders: pass a single --datasets")
    overrides = parse_overrides(args.set)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lcrec.evaluation import EvaluationConfig
    from lcrec.workflows import QuickstartOptions, run_quickstart

    rows = []
    evaluation = EvaluationConfig(
        split=args.split,
        max_users=None if args.eval_users == "all" else int(args.eval_users),
        templates=args.templates,
        exclude_history=args.exclude_history,
    )
    for key in args.datasets.split(","):
        name, source, preset, collaborative, teacher_item_text = DATASETS[key]
        mode = {}
        if args.collaborative == "none":
            collaborative = None
        elif args.collaborative != "default":
            collaborative, mode = "sasrec", {"collaborative_mode": args.collaborative}
        options = QuickstartOptions(
            source=source,
            name=name,
            out=str(Path(args.out) / key),
            preset=args.config or preset,
            max_steps=args.max_steps,
            seed=args.seed,
            sasrec_seconds=args.sasrec_seconds,
            reuse=args.reuse,
            collaborative=collaborative,
            teacher_item_text=teacher_item_text,
            data_dir=args.data_dir,
            index_dir=args.index_dir,
            **mode,
        )
        records = run_quickstart(options, evaluation, sft_overrides=overrides)
        steps = training_steps(Path(options.out) / "model")
        pipeline = json.loads((Path(options.out) / "pipeline.json").read_text())
        sft = "task mix + SFT"
        wall, cpu = pipeline["stage_seconds"].get(sft), pipeline["stage_cpu_seconds"].get(sft)
        if wall is not None:
            steps += f", SFT {wall:.0f} s wall / {cpu:.0f} s CPU"
        for method, record in records.items():
            rows.append((name, method, record, steps if method == "LC-Rec" else record.get("best_epoch", "")))

    print(f"\nhardware: {hardware()} (shared machine: other jobs may run at the same time)")
    print(f"split: {args.split} (options are chosen on validation; the test split is run once at the end)")
    if overrides:
        print(f"SFT overrides: {overrides}")
    print("| data | method | split | HR@1 | HR@5 | HR@10 | NDCG@5 | NDCG@10 | users | training | exclude_history |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, method, r, training in rows:
        if method == "SASRec":
            training = f"best epoch {training} of {r.get('epochs')} ({r.get('fit_seconds')} s)"
        metrics = " | ".join(f"{r[key]:.4f}" for key in ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10"))
        users, excluded = r["num_users"], r["exclude_history"]
        print(f"| {name} | {method} | {r['split']} | {metrics} | {users} | {training} | {excluded} |")


if __name__ == "__main__":
    main()
