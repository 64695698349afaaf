"""`lcrec evaluate --model DIR --data DIR`: full-ranking HR/NDCG of an LC-Rec model, written to metrics.json."""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="full-ranking evaluation (trie-constrained beam search) of an LC-Rec model on the test users",
        description="Evaluate model.recommend on every test user once (HR@1/5/10, NDCG@5/10), over all or some seqrec "
        "templates. Multi-process: `accelerate launch -m lcrec.cli evaluate ...` splits the users across processes.",
    )
    parser.add_argument("--model", required=True, help="LC-Rec model folder (save_pretrained output) or hub id")
    parser.add_argument("--data", required=True, help="prepared dataset folder (`lcrec prepare --out`)")
    parser.add_argument("--templates", default="all", help="'all' (mean, min, max and per template) or ids like 0,1 (default all)")
    parser.add_argument("--num-beams", type=int, default=20, help="beams = ranked items per user (default 20, must be >= 10)")
    parser.add_argument("--batch-size", type=int, default=8, help="users per generate() call (default 8)")
    parser.add_argument("--max-users", type=int, help="evaluate a seeded sample of this many users (default all)")
    parser.add_argument("--user-seed", type=int, default=0, help="seed of the --max-users sample (default 0)")
    parser.add_argument("--split", default="test", choices=("test", "valid"), help="which targets to predict (default test)")
    parser.add_argument("--exclude-history", action="store_true", help="drop items the user already has from the ranking (the paper does not)")
    parser.add_argument("--out", help="metrics.json path (default MODEL/metrics.json when MODEL is a folder)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lcrec.data import load_prepared
    from lcrec.evaluation.runner import EvaluationConfig, evaluate_model
    from lcrec.evaluation.report import format_table
    from lcrec.modeling_lcrec import LCRecForCausalLM

    config = EvaluationConfig(
        templates=args.templates,
        num_beams=args.num_beams,
        batch_size=args.batch_size,
        split=args.split,
        max_users=args.max_users,
        user_seed=args.user_seed,
        exclude_history=args.exclude_history,
    )
    dataset = load_prepared(args.data)
    model = LCRecForCausalLM.from_pretrained(args.model)
    out = args.out or (os.path.join(args.model, "metrics.json") if os.path.isdir(args.model) else "metrics.json")
    record = evaluate_model(model, dataset, config, output_file=out)
    from accelerate import PartialState

    if PartialState().is_main_process:
        print(format_table({"LC-Rec": record}))
        if len(record["per_template"]) > 1:
            print(f"templates {record['templates']}: HR@10 min {record['template_min']['HR@10']:.4f} max {record['template_max']['HR@10']:.4f}")
        print(f"invalid_rate {record['invalid_rate']:.4f}, {record['users_per_second']:.2f} users/s, exclude_history={record['exclude_history']}")
        print(f"wrote {out}")
    return 0
