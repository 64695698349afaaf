"""`lcrec baseline --model sasrec|pop --data DIR`: a classic baseline on the same split and metric code as LC-Rec."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="train and evaluate a baseline (most-popular or SASRec) with full ranking on the test users",
        description="Fit on the train split (SASRec: early stopping on valid NDCG@10) and evaluate on the test split "
        "with the same metrics, users (--max-users/--user-seed) and history exclusion as `lcrec evaluate`.",
    )
    parser.add_argument("--model", required=True, choices=("sasrec", "pop", "most_popular"), help="which baseline")
    parser.add_argument("--data", required=True, help="prepared dataset folder (`lcrec prepare --out`)")
    parser.add_argument("--out", help="metrics JSON path (default: print only)")
    parser.add_argument("--save-model", help="folder for SASRec weights (sasrec.safetensors + sasrec_config.json)")
    parser.add_argument("--max-users", type=int, help="evaluate a seeded sample of this many test users (default all)")
    parser.add_argument("--user-seed", type=int, default=0, help="seed of the --max-users sample (default 0)")
    parser.add_argument("--exclude-history", action="store_true", help="drop items the user already has from the ranking")
    sasrec = parser.add_argument_group("SASRec")
    sasrec.add_argument("--loss", choices=("ce", "bce"), default="ce", help="ce: softmax over all items (default); bce: one sampled negative")
    sasrec.add_argument("--max-len", type=int, default=50, help="most recent items the model reads (default 50)")
    sasrec.add_argument("--hidden-size", type=int, default=64)
    sasrec.add_argument("--num-layers", type=int, default=2)
    sasrec.add_argument("--dropout", type=float, default=0.3)
    sasrec.add_argument("--lr", type=float, default=1e-3)
    sasrec.add_argument("--max-epochs", type=int, default=200)
    sasrec.add_argument("--patience", type=int, default=5, help="epochs without a better valid NDCG@10 before stopping")
    sasrec.add_argument("--max-seconds", type=float, help="training time budget")
    sasrec.add_argument("--seed", type=int, default=42)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lcrec.data import load_prepared
    from lcrec.evaluation.baselines import SASRecConfig, run_baseline
    from lcrec.evaluation.report import format_table
    from lcrec.io_utils import write_json

    dataset = load_prepared(args.data)
    config = SASRecConfig(
        loss=args.loss,
        max_len=args.max_len,
        hidden_size=args.hidden_size,
        num_layers=args.num_layers,
        dropout=args.dropout,
        learning_rate=args.lr,
        max_epochs=args.max_epochs,
        patience=args.patience,
        max_seconds=args.max_seconds,
        seed=args.seed,
    )
    record = run_baseline(
        args.model,
        dataset,
        max_users=args.max_users,
        user_seed=args.user_seed,
        exclude_history=args.exclude_history,
        sasrec_config=config,
        model_dir=args.save_model,
    )
    print(format_table({record["method"]: record}))
    if args.out:
        write_json(args.out, record)
        print(f"wrote {args.out}")
    return 0
