"""Ablation on Scientific (validation split): each change of the CPU preset, measured on the same users and data.

    .venv/bin/python bench/ablation.py                                  # every variant, all validation users
    .venv/bin/python bench/ablation.py --variants "paper mix;sequence;+letter index" --seed 43

Each variant is the `scientific-cpu` preset with some options changed (SFT options and the index recipe), trained
once and evaluated on the validation split (options are chosen there; the test split is run once, with
bench/quality.py). Variants that share an index recipe share the index folder; all share the prepared data. The
table gives HR@10 / NDCG@10, the SFT CPU time (training process, one torch thread) and the option changed.
Artifacts go to bench/out/ablation/.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

PAPER_MIX = ["seqrec", "item2index", "index2item", "fusionseqrec"]
# The variants before distillation: no teacher, 8 epochs, the checkpoint chosen on 1,000 validation users (the preset
# now distils for 24 epochs with drawn items and chooses on up to 3,000 users).
UNDISTILLED = {"teacher_dir": None, "num_train_epochs": 8, "ranking_eval_users": 1000}
# The first distilled variants: no drawn items, the checkpoint chosen on 1,000 users.
DISTILLED = {"teacher_sampling": 0.0, "ranking_eval_users": 1000}
SEQUENCE = {"tasks": ["sequence"], "max_history": 20, **UNDISTILLED}
# The teacher of a distilled variant: the run's early-stopped SASRec baseline ("id") or the item-text SASRec of
# lcrec.training.teacher trained N epochs ("text", N).
ID_TEACHER = ("id", None)
TEXT_TEACHER = ("text", None)  # None: lcrec.training.teacher's TEACHER_EPOCHS
# variant -> (index recipe: None = text only, or the collaborative mode; SFT overrides of the preset; teacher)
VARIANTS = {
    "paper mix": (
        None,
        {**UNDISTILLED, "tasks": PAPER_MIX, "num_train_epochs": 4, "fusionseqrec_samples": 5000},
        ID_TEACHER,
    ),
    "sequence + alignment": (None, {**SEQUENCE, "tasks": ["sequence", "item2index", "index2item"]}, ID_TEACHER),
    "sequence": (None, SEQUENCE, ID_TEACHER),
    "+letter index": ("letter", SEQUENCE, ID_TEACHER),
    "+concat index": ("concat", SEQUENCE, ID_TEACHER),
    "+only index": ("only", SEQUENCE, ID_TEACHER),
    "letter, 6 epochs": ("letter", {**SEQUENCE, "num_train_epochs": 6}, ID_TEACHER),
    "letter, lr 5e-3": ("letter", {**SEQUENCE, "learning_rate": 5.0e-3}, ID_TEACHER),
    "letter, 3M model": (
        "letter",
        {**SEQUENCE, "scratch_hidden_size": 256, "scratch_num_layers": 3, "scratch_intermediate_size": 768},
        ID_TEACHER,
    ),
    "letter, sequence + seqrec": (
        "letter",
        {**SEQUENCE, "tasks": ["sequence", "seqrec"], "seqrec_format": "sequence"},
        ID_TEACHER,
    ),
    # Distilled from the SASRec baseline of the variant's own run (trained first): the previous preset, and before
    # its drawn items and checkpoint choice on all users.
    "letter, distilled, 8 epochs": ("letter", {**DISTILLED, "num_train_epochs": 8}, ID_TEACHER),
    "letter, distilled, 16 epochs": ("letter", {**DISTILLED, "num_train_epochs": 16}, ID_TEACHER),
    "letter, distilled, 16 epochs, checkpoint on all users": (
        "letter",
        {"teacher_sampling": 0.0, "num_train_epochs": 16},
        ID_TEACHER,
    ),
    "letter, distilled, drawn items 0.5, 24 epochs (the previous preset)": ("letter", {}, ID_TEACHER),
    # Tried against the previous preset, not kept (README Ablation).
    "the previous preset, 36 epochs": ("letter", {"num_train_epochs": 36}, ID_TEACHER),
    "the previous preset, 1.55M model (192 wide)": (
        "letter",
        {"scratch_hidden_size": 192, "scratch_intermediate_size": 576},
        ID_TEACHER,
    ),
    "the previous preset, 2.5M model (256 wide)": (
        "letter",
        {"scratch_hidden_size": 256, "scratch_intermediate_size": 768},
        ID_TEACHER,
    ),
    # The preset: the teacher has item text in its item table and a fixed schedule; and that teacher's schedule.
    "text teacher, 16 epochs (the preset)": ("letter", {}, TEXT_TEACHER),
    "text teacher, 10 epochs": ("letter", {}, ("text", 10)),
    "text teacher, 24 epochs": ("letter", {}, ("text", 24)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="../shared/data/scientific", help="dataset (default: Scientific)")
    parser.add_argument("--config", default="scientific-cpu", help="SFT preset name or YAML file")
    parser.add_argument("--out", default="bench/out/ablation")
    parser.add_argument(
        "--variants",
        default=";".join(VARIANTS),
        help="';'-separated (names hold commas) among: " + "; ".join(VARIANTS),
    )
    parser.add_argument("--eval-users", default="all", help="'all' or a seeded sample size")
    parser.add_argument("--seed", type=int, default=42, help="seed of the index and SFT (repeat with others)")
    parser.add_argument("--reuse", action="store_true", help="reuse models already trained under --out")
    parser.add_argument(
        "--split",
        default="validation",
        choices=("test", "validation", "valid"),
        help="users to evaluate (default validation: an ablation chooses options)",
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.variants.split(";") if name.strip()]
    unknown = [name for name in chosen if name not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {'; '.join(VARIANTS)}")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from lcrec.evaluation import EvaluationConfig
    from lcrec.workflows import QuickstartOptions, run_quickstart
    from lcrec.workflows.quickstart import SFT_STAGE

    out = Path(args.out)
    results = {}
    max_users = None if args.eval_users == "all" else int(args.eval_users)
    evaluation = EvaluationConfig(split=args.split, max_users=max_users)
    for variant in chosen:
        mode, overrides, (teacher, teacher_epochs) = VARIANTS[variant]
        slug = "".join(char if char.isalnum() else "_" for char in variant).strip("_")
        options = QuickstartOptions(
            source=args.source,
            name=f"Scientific ({variant})",
            out=str(out / f"{slug}_s{args.seed}"),
            preset=args.config,
            baselines=False,  # a distilled variant still trains its teacher
            teacher_item_text=teacher == "text",
            **({"teacher_epochs": teacher_epochs} if teacher_epochs else {}),
            data_dir=str(out / "data"),
            index_dir=str(out / f"index_{mode or 'text'}_s{args.seed}"),
            collaborative="sasrec" if mode else None,
            collaborative_mode=mode or "letter",
            seed=args.seed,
            reuse=args.reuse,
            examples=0,
        )
        record = run_quickstart(options, evaluation, sft_overrides=overrides)["LC-Rec"]
        pipeline = json.loads((Path(options.out) / "pipeline.json").read_text())
        results[variant] = (record, pipeline["stage_cpu_seconds"].get(SFT_STAGE), mode, overrides)

    print(f"\nScientific ablation, preset {args.config}, seed {args.seed}, all {evaluation.split} users, template 0")
    print("| variant | index | SFT changes | HR@10 | NDCG@10 | SFT CPU min | users |")
    print("|---|---|---|---|---|---|---|")
    for variant, (r, cpu, mode, overrides) in results.items():
        minutes = f"{cpu / 60:.1f}" if cpu is not None else "reused"
        changes = ", ".join(f"{key}={value}" for key, value in overrides.items())
        print(
            f"| {variant} | {mode or 'text'} | {changes} | {r['HR@10']:.4f} | {r['NDCG@10']:.4f} | {minutes} "
            f"| {r['num_users']} |"
        )


if __name__ == "__main__":
    main()
