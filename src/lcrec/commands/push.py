"""`lcrec push dataset|model ...`: publish a prepared dataset (+ index, + task mix) or a model folder to the Hub.

The token comes from `HF_TOKEN` or `hf auth login`, never from the command line, and is never printed.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "push",
        help="publish a dataset or model repo to the Hugging Face Hub (or --dry-run it into a folder)",
        description="Stage the repo in a temporary folder and upload it as one commit; a failed push changes "
        "nothing remotely and can be rerun. The token comes from HF_TOKEN or `hf auth login`.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")

    dataset = kinds.add_parser("dataset", help="prepared dataset as Parquet configs, plus the index folder and task mix")
    dataset.add_argument("data", help="prepared dataset folder (`lcrec prepare --out`)")
    dataset.add_argument("--index", help="item index folder (`lcrec index --out`), published under index/")
    dataset.add_argument("--tasks", help="task mix folder (`lcrec tasks --out`), published as the `tasks` config")

    model = kinds.add_parser("model", help="model folder with its card, generation config and remote code")
    model.add_argument("model", help="model folder (save_pretrained / `lcrec train` output)")
    model.add_argument("--weights", choices=("auto", "merged", "adapter", "both"), default="auto", help="merged weights, the LoRA adapter/ folder, or both (default auto: whatever the folder has)")
    model.add_argument("--metrics", help="metrics.json of `lcrec evaluate`: the card's results and model-index")
    model.add_argument("--index", help="the dataset's index folder: refuse the push unless the tokenizer's index matches it; its stats go in the card")
    model.add_argument("--dataset-repo", help="dataset repo id the model was trained on (card metadata; its index is checked when --index is not given)")
    model.add_argument("--num-beams", type=int, help="beam width in generation_config.json (default: metrics.json's num_beams, else 20)")
    model.add_argument("--reproduce", action="append", default=[], metavar="COMMAND", help="a command of the card's Reproduce section (repeatable, in order)")

    for sub in (dataset, model):
        sub.add_argument("--repo-id", required=True, help="target repo, e.g. org/lcrec-beauty")
        sub.add_argument("--revision", help="branch to commit to (created from main when missing)")
        sub.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its visibility)")
        sub.add_argument("--license", help="license id for the card metadata, e.g. apache-2.0")
        sub.add_argument("--dry-run", metavar="DIR", help="write the folder that would be uploaded into DIR and upload nothing")
        sub.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    from lcrec.hub import push_dataset, push_model

    common = dict(revision=args.revision, private=True if args.private else None, dry_run_dir=args.dry_run, license=args.license)
    try:
        if args.kind == "dataset":
            result = push_dataset(args.data, args.repo_id, index_dir=args.index, tasks_dir=args.tasks, **common)
        else:
            result = push_model(
                args.model, args.repo_id, weights=args.weights, metrics_path=args.metrics, index_dir=args.index,
                dataset_repo=args.dataset_repo, num_beams=args.num_beams, reproduce=args.reproduce, **common,
            )
    except HfHubHTTPError as error:
        # One commit per push: a failure leaves the repo's files as they were; the same command can be rerun.
        raise ValueError(f"pushing to {args.repo_id} failed and no files were committed; rerun the same command once the cause is fixed: {error}") from None
    for path in result.files:
        print(f"  {path}")
    if result.commit_url is None:
        print(f"dry run: {len(result.files)} files for {result.repo_type} repo {result.repo_id} written to {result.folder}")
    else:
        print(f"pushed {len(result.files)} files to {result.repo_type} repo {result.repo_id} ({result.revision}): {result.commit_url}")
    return 0
