"""`lcrec quickstart` (what `make quickstart` runs): MovieLens-100K end to end on CPU, with baselines."""

from __future__ import annotations

import argparse


def _users(text: str) -> int | None:
    if text.lower() == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of users or 'all', got {text!r}")
    return int(text)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quickstart",
        help="MovieLens-100K: prepare, index, train (CPU preset), evaluate, and compare with SASRec and most-popular",
        description="The whole pipeline on MovieLens-100K on CPU; prints each stage's time, "
        "a results table (same test users for every method) and example recommendations. Artifacts go to --out.",
    )
    parser.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    parser.add_argument("--config", default="recipes/configs/ml-100k-cpu.yaml", help="SFT preset YAML (default: the CPU preset)")
    parser.add_argument("--max-steps", type=int, help="SFT steps (default: the preset's schedule); more steps, better model")
    parser.add_argument("--eval-users", type=_users, default=None, help="test users to evaluate: a seeded sample of N, or all (default all)")
    parser.add_argument("--templates", default="0", help="seqrec templates for LC-Rec: ids like 0,1 or 'all' (default 0)")
    parser.add_argument("--num-beams", type=int, default=20, help="beams per user (default 20)")
    parser.add_argument("--sasrec-seconds", type=float, default=120.0, help="SASRec training time budget (default 120)")
    parser.add_argument("--index-epochs", type=int, help="RQ-VAE epochs (default: the index builder's CPU default)")
    parser.add_argument("--exclude-history", action="store_true", help="never recommend items the user already has (every method)")
    parser.add_argument("--reuse", action="store_true", help="keep the data, index and model already under --out instead of rebuilding them")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: small models gain little from more, and a busy machine loses a lot); 0 keeps torch's default")
    parser.add_argument("--seed", type=int, default=42)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lcrec.evaluation.pipeline import PipelineOptions, run_pipeline

    options = PipelineOptions(
        out=args.out,
        config=args.config,
        max_steps=args.max_steps,
        eval_users=args.eval_users,
        templates=args.templates,
        num_beams=args.num_beams,
        sasrec_seconds=args.sasrec_seconds,
        index_epochs=args.index_epochs,
        exclude_history=args.exclude_history,
        reuse=args.reuse,
        seed=args.seed,
        threads=args.threads or None,
    )
    run_pipeline(options)
    return 0
