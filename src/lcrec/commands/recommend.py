"""`lcrec recommend --model DIR --history 1 2 3`: the top items for one history, with titles."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recommend",
        help="recommend the next items for one item-id history (trie-constrained beam search)",
        description="Load an LC-Rec model folder (or adapter folder, or hub id) and print the ranked next items for a history.",
    )
    parser.add_argument("--model", required=True, help="LC-Rec model folder (save_pretrained output), adapter folder or hub id")
    parser.add_argument("--history", required=True, nargs="+", type=int, help="item ids, oldest first")
    parser.add_argument("--top-k", type=int, default=10, help="items to return (default 10)")
    parser.add_argument("--num-beams", type=int, help="beam width (default: top-k)")
    parser.add_argument("--template", type=int, default=0, help="seqrec template id for the prompt (default 0)")
    parser.add_argument("--skip-unknown", action="store_true", help="drop unknown item ids from the history (with a warning) instead of failing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lcrec.modeling_lcrec import LCRecForCausalLM

    model = LCRecForCausalLM.from_pretrained(args.model).eval()
    if model.tokenizer is None:
        raise FileNotFoundError(f"{args.model}: no index.json / tokenizer files beside the model")
    (ranked,) = model.recommend([args.history], top_k=args.top_k, num_beams=args.num_beams, template=args.template, skip_unknown=args.skip_unknown)
    tokenizer = model.tokenizer
    print(f"history: {', '.join(f'{item} ({tokenizer.title(item)})' for item in args.history if item in tokenizer.item_index)}")
    print(f"{'rank':>4}  {'item':>8}  {'log-prob':>9}  {'index':<24}  title")
    for rank, (item, score) in enumerate(ranked, start=1):
        print(f"{rank:>4}  {item:>8}  {score:>9.3f}  {tokenizer.item_tokens(item):<24}  {tokenizer.title(item)}")
    return 0
