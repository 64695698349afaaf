"""LC-Rec against a saved SASRec on the same users, paired: intervals for the difference and the ratio.

    .venv/bin/python bench/paired.py --model bench/out/quality/scientific/model \
        --sasrec bench/out/quality/scientific/baselines/sasrec --data bench/out/quality/scientific/data --split test

Both methods rank every user of the split (LC-Rec: trie-constrained beam search, the model's beams; SASRec: full
catalogue scores), with the metric code `lcrec evaluate` uses. The table gives each method's mean, LC-Rec - SASRec
and LC-Rec / SASRec with bootstrap intervals over users, and for HR@10 the exact McNemar test on the users only one
method hits. It says whether a gap of a few percent is larger than the split's noise.
"""

from __future__ import annotations

import argparse
import os

METRICS = ("HR@10", "NDCG@10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="LC-Rec model folder")
    parser.add_argument("--sasrec", required=True, help="SASRec folder (`lcrec baseline --save_model`)")
    parser.add_argument("--data", required=True, help="prepared dataset folder both were trained on")
    parser.add_argument("--split", default="test", choices=("test", "validation"))
    parser.add_argument("--resamples", type=int, help="bootstrap resamples (default: lcrec's, 10,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import numpy as np

    from lcrec import LCRecForCausalLM
    from lcrec.data import load_prepared
    from lcrec.evaluation import EvaluationConfig, check_catalogue, mcnemar_exact, paired_bootstrap
    from lcrec.evaluation.baselines.evaluate import split_rows
    from lcrec.evaluation.baselines.sasrec import SASRec
    from lcrec.evaluation.metrics import user_metrics
    from lcrec.evaluation.paired import DEFAULT_RESAMPLES
    from lcrec.evaluation.ranking import rank_by_scores
    from lcrec.evaluation.runner import rank_users
    from lcrec.generation import resolve_num_beams

    dataset = load_prepared(args.data)
    histories, targets = split_rows(dataset, args.split)
    catalogue = set(int(item) for item in dataset["items"]["item_id"])

    model = LCRecForCausalLM.from_pretrained(args.model)
    check_catalogue(model.tokenizer, dataset)
    model.eval()
    beams = resolve_num_beams(model, None, 10)
    config = EvaluationConfig(split=args.split)
    ranked = rank_users(model, histories, range(len(histories)), [0], beams, config, catalogue, show_progress=True)
    lcrec_ranked = [items for _, _, items in ranked]
    sasrec = SASRec.from_pretrained(args.sasrec)
    sasrec_ranked = rank_by_scores(sasrec.score, histories, 10, exclude_history=False)

    per_user = {}
    for method, ranked in (("LC-Rec", lcrec_ranked), ("SASRec", sasrec_ranked)):
        rows = [user_metrics(items, target, METRICS) for items, target in zip(ranked, targets)]
        per_user[method] = {name: np.array([row[name] for row in rows]) for name in METRICS}
    resamples = args.resamples or DEFAULT_RESAMPLES
    print(f"{args.split} split, {len(targets)} users; {resamples} resamples of users (seed {args.seed})")
    print("| metric | LC-Rec | SASRec | LC-Rec - SASRec [95% interval] | LC-Rec / SASRec [95% interval] |")
    print("|---|---|---|---|---|")
    for name in METRICS:
        result = paired_bootstrap(per_user["LC-Rec"][name], per_user["SASRec"][name], resamples, seed=args.seed)
        print(
            f"| {name} | {result.mean_a:.4f} | {result.mean_b:.4f} | {result.difference:+.4f} "
            f"[{result.difference_low:+.4f}, {result.difference_high:+.4f}] | {result.ratio:.3f}x "
            f"[{result.ratio_low:.3f}, {result.ratio_high:.3f}] |"
        )
    only_lcrec, only_sasrec, p_value = mcnemar_exact(per_user["LC-Rec"]["HR@10"], per_user["SASRec"]["HR@10"])
    both = int((per_user["LC-Rec"]["HR@10"] * per_user["SASRec"]["HR@10"]).sum())
    print(
        f"HR@10: both hit {both} users, only LC-Rec {only_lcrec}, only SASRec {only_sasrec}; "
        f"exact McNemar two-sided p = {p_value:.3f}"
    )


if __name__ == "__main__":
    main()
