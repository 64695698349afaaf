"""Task ablation on Scientific: which LC-Rec tasks help, at one CPU budget (same steps for every variant).

    .venv/bin/python bench/ablation.py                       # 4 variants, preset model, --max-steps 600
    .venv/bin/python bench/ablation.py --max-steps 3000 --eval-users all

Variants: seqrec only; + item2index/index2item; + fusionseqrec; all tasks (itemsearch/preferenceobtain
train only where per-user text exists, otherwise the SFT pipeline skips them and says so). Every variant
uses the same prepared data, the same item index, the same number of optimizer steps and the same test
users. Artifacts go to bench/out/ablation/.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

VARIANTS = {
    "seqrec": ["seqrec"],
    "+alignment": ["seqrec", "item2index", "index2item"],
    "+fusionseqrec": ["seqrec", "item2index", "index2item", "fusionseqrec"],
    "all tasks": ["seqrec", "item2index", "index2item", "fusionseqrec", "itemsearch", "preferenceobtain"],
}


def _needs_user_text(tasks: list[str]) -> bool:
    return bool({"itemsearch", "preferenceobtain"} & set(tasks))


def _has_user_text(data_dir: Path) -> bool:
    from lcrec.data import load_prepared

    return (data_dir / "stats.json").is_file() and "users" in load_prepared(data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="../shared/data/scientific", help="dataset source (default: Scientific, UniSRec layout)")
    parser.add_argument("--config", default="scientific-cpu", help="SFT preset name or YAML file")
    parser.add_argument("--out", default="bench/out/ablation")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated among: " + ", ".join(VARIANTS))
    parser.add_argument("--max-steps", type=int, default=600, help="SFT steps, the same for every variant (default 600)")
    parser.add_argument("--eval-users", default="500", help="'all' or a seeded sample size (default 500)")
    parser.add_argument("--templates", default="0")
    parser.add_argument("--reuse", action="store_true", help="reuse models already trained under --out")
    parser.add_argument(
        "--split", default="validation", choices=("test", "validation", "valid"),
        help="users to evaluate (default validation: an ablation chooses options)",
    )
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lcrec.evaluation import EvaluationConfig
    from lcrec.workflows import QuickstartOptions, run_quickstart

    out = Path(args.out)
    results = {}
    max_users = None if args.eval_users == "all" else int(args.eval_users)
    evaluation = EvaluationConfig(split=args.split, max_users=max_users, templates=args.templates)
    for variant in args.variants.split(","):
        options = QuickstartOptions(
            source=args.source,
            name=f"Scientific ({variant})",
            out=str(out / variant.strip("+").replace(" ", "_")),
            preset=args.config,
            tasks=VARIANTS[variant],
            max_steps=args.max_steps,
            baselines=False,
            data_dir=str(out / "data"),
            index_dir=str(out / "index"),
            reuse=args.reuse,
            examples=0,
        )
        if _needs_user_text(VARIANTS[variant]) and not _has_user_text(out / "data"):
            print(f"\n{variant}: skipped, the dataset has no per-user text (itemsearch/preferenceobtain need it; see `lcrec augment`)")
            continue
        record = run_quickstart(options, evaluation)["LC-Rec"]
        trained = json.loads((Path(options.out) / "model" / "training_results.json").read_text())
        results[variant] = (record, trained.get("tasks"), trained.get("train_rows_per_draw"))

    steps = f"{args.max_steps} SFT steps per variant (preset {args.config})"
    print(f"\nScientific, {steps}, same {evaluation.split} users and index")
    print("| variant | tasks trained | HR@5 | HR@10 | NDCG@5 | NDCG@10 | users |")
    print("|---|---|---|---|---|---|---|")
    for variant, (r, tasks, rows) in results.items():
        print(f"| {variant} | {','.join(tasks or [])} ({rows} rows) | {r['HR@5']:.4f} | {r['HR@10']:.4f} | {r['NDCG@5']:.4f} | {r['NDCG@10']:.4f} | {r['num_users']} |")


if __name__ == "__main__":
    main()
