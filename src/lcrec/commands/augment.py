"""`lcrec augment --data DIR --out FILE`: write per-user preference/intention texts with a local instruct model."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "augment",
        help="write per-user preference and intention texts with a local instruct model (resumable)",
        description="Generate the per-user texts the itemsearch and preferenceobtain tasks need. Appends JSON lines "
        "as it goes; rerunning continues where it stopped. Use the file with `lcrec tasks --user-texts FILE`.",
    )
    parser.add_argument("--data", required=True, help="prepared dataset folder (`lcrec prepare --out`)")
    parser.add_argument("--out", required=True, help="JSON-lines output, e.g. DIR/users.jsonl (appended; a rerun resumes)")
    parser.add_argument("--model", help="instruct model folder or Hub id (default: the offline SmolLM2-135M-Instruct)")
    parser.add_argument("--batch-size", type=int, default=8, help="users per generation batch (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="tokens generated per text (default 64)")
    parser.add_argument("--max-history", type=int, default=20, help="most recent item titles shown to the model (default 20)")
    parser.add_argument("--max-users", type=int, help="stop once the file holds this many users (default: all)")
    parser.add_argument("--device", default="auto", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="torch seed (decoding is greedy)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lcrec.data import load_prepared
    from lcrec.tasks.augment import augment_user_texts

    if args.model is None:
        from lcrec.assets import smollm2_path

        args.model = str(smollm2_path())
    torch.manual_seed(args.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    dataset = load_prepared(args.data)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model).to(device)
    written = augment_user_texts(
        dataset,
        model,
        tokenizer,
        args.out,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        max_history=args.max_history,
        max_users=args.max_users,
        model_name=args.model,
    )
    print(f"wrote texts for {written} users to {args.out}")
    return 0
