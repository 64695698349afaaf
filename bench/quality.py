"""LC-Rec vs SASRec vs most-popular on Scientific and MovieLens-100K (full ranking, same test users).

    .venv/bin/python bench/quality.py --split validation              # choose options on validation users
    .venv/bin/python bench/quality.py                                  # the test split, once, for the report
    .venv/bin/python bench/quality.py --datasets ml-100k --max-steps 3000 --eval-users all --templates all

Each dataset runs the `lcrec quickstart` workflow (lcrec.workflows.quickstart) with its CPU preset and prints
a table that states data, split, model, training steps, hardware and the number of users; README numbers come
from here. Artifacts go to bench/out/quality/<dataset>/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

DATASETS = {
    "scientific": ("Amazon Scientific", "../shared/data/scientific", "scientific-cpu"),
    "ml-100k": ("MovieLens-100K", "ml-100k", "ml-100k-cpu"),
}


def hardware() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.processor() or platform.machine()} CPU, {len(os.sched_getaffinity(0))} cores, {torch.get_num_threads()} torch threads"


def training_steps(model_dir: Path) -> str:
    """Optimizer steps and model size from the training record the SFT pipeline writes."""
    path = model_dir / "training_results.json"
    if not path.is_file():
        return "?"
    results = json.loads(path.read_text())
    steps = max((entry.get("step", 0) for entry in results.get("log_history", [])), default=0)
    return f"{steps} steps ({results.get('base_model')}, tasks {','.join(results.get('tasks', []))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="scientific,ml-100k", help="comma-separated among " + ", ".join(DATASETS))
    parser.add_argument("--out", default="bench/out/quality")
    parser.add_argument("--max-steps", type=int, help="SFT steps (default: each preset's schedule)")
    parser.add_argument("--eval-users", default="all", help="'all' or a seeded sample size")
    parser.add_argument("--templates", default="0", help="LC-Rec seqrec templates: ids or 'all'")
    parser.add_argument("--sasrec-seconds", type=float, default=600.0)
    parser.add_argument("--exclude-history", action="store_true")
    parser.add_argument(
        "--split", default="test", choices=("test", "validation", "valid"),
        help="users to evaluate: choose options on validation, report the test split once",
    )
    parser.add_argument("--reuse", action="store_true", help="reuse data/index/model folders already under --out")
    args = parser.parse_args()

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
        name, source, preset = DATASETS[key]
        options = QuickstartOptions(
            source=source,
            name=name,
            out=str(Path(args.out) / key),
            preset=preset,
            max_steps=args.max_steps,
            sasrec_seconds=args.sasrec_seconds,
            reuse=args.reuse,
        )
        records = run_quickstart(options, evaluation)
        steps = training_steps(Path(options.out) / "model")
        for method, record in records.items():
            rows.append((name, method, record, steps if method == "LC-Rec" else record.get("best_epoch", "")))

    print(f"\nhardware: {hardware()} (shared machine: other jobs may run at the same time)")
    print("| data | method | split | HR@1 | HR@5 | HR@10 | NDCG@5 | NDCG@10 | users | training | exclude_history |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, method, r, training in rows:
        if method == "SASRec":
            training = f"best epoch {training} of {r.get('epochs')} ({r.get('fit_seconds')} s)"
        metrics = " | ".join(f"{r[key]:.4f}" for key in ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10"))
        print(f"| {name} | {method} | {r['split']} | {metrics} | {r['num_users']} | {training} | {r['exclude_history']} |")


if __name__ == "__main__":
    main()
