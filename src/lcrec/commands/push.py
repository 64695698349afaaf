"""`lcrec push dataset|model`: publish a prepared dataset (+ index, + task mix) or a model folder to the Hub.

The repo is staged in a temporary folder and uploaded as one commit: a failed push changes nothing remotely and
can be rerun (an unchanged rerun commits nothing). `--dry_run DIR` writes the folder that would be uploaded instead.
The token comes from HF_TOKEN or `hf auth login`, never from the command line, and is never printed.

  lcrec push dataset --data runs/data --index runs/index --tasks runs/tasks --repo_id org/lcrec-ml-100k
  lcrec push model --model runs/model --dataset_repo org/lcrec-ml-100k --repo_id org/lcrec-ml-100k-model
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields

from . import CommandHelpFormatter, command_parser

HELP = "publish a dataset or model repo to the Hugging Face Hub (or --dry_run it into a folder)"
# Same as lcrec.hub.model_repo.WEIGHT_CHOICES (tests/test_hub.py checks), so `lcrec --help` imports no Hub code.
WEIGHT_CHOICES = ("auto", "merged", "adapter", "both")


@dataclass
class PushDatasetArguments:
    """`lcrec push dataset`: the folders that make up a dataset repo."""

    data: str = field(metadata={"help": "prepared dataset folder (`lcrec prepare --out`)"})
    index: str | None = field(
        default=None,
        metadata={"help": "item index folder (`lcrec index --out`), published under index/ (None: no index)"},
    )
    tasks: str | None = field(
        default=None,
        metadata={"help": "task mix folder (`lcrec tasks --out`), published as the `tasks` config (None: none)"},
    )


@dataclass
class PushModelArguments:
    """`lcrec push model`: a model folder and what its card and checks use."""

    model: str = field(metadata={"help": "model folder (save_pretrained / `lcrec train` output)"})
    weights: str = field(
        default="auto",
        metadata={
            "help": "merged weights, the LoRA adapter, or both (auto: whatever the folder has)",
            "choices": WEIGHT_CHOICES,
        },
    )
    metrics: str | None = field(
        default=None,
        metadata={"help": "metrics.json of `lcrec evaluate` for the card (None: the folder's metrics.json, if any)"},
    )
    index: str | None = field(
        default=None,
        metadata={
            "help": "the dataset's index folder: refuse the push unless the model's index matches it; its "
            "stats go in the card (None: no such check)"
        },
    )
    dataset_repo: str | None = field(
        default=None,
        metadata={
            "help": "dataset repo the model was trained on (card metadata; its index is checked when --index "
            "is not given; None: not named)"
        },
    )


@dataclass
class PushTargetArguments:
    """Where a push goes and what the card's metadata says."""

    repo_id: str = field(metadata={"help": "target repo, e.g. org/lcrec-beauty"})
    revision: str | None = field(
        default=None, metadata={"help": "branch to commit to, created from main when missing (None: main)"}
    )
    private: bool = field(
        default=False, metadata={"help": "create the repo private (an existing repo keeps its visibility)"}
    )
    license: str | None = field(
        default=None, metadata={"help": "Hub license id for the card, e.g. apache-2.0 (None: the card says unknown)"}
    )
    reproduce: list[str] = field(
        default_factory=list,
        metadata={
            "help": "commands for the card's Reproduce section, after those the folders recorded (quote each one)"
        },
    )
    dry_run: str | None = field(
        default=None,
        metadata={
            "help": "write the folder that would be uploaded into this folder and upload nothing (None: upload)"
        },
    )
    overwrite: bool = field(
        default=False, metadata={"help": "let --dry_run replace a non-empty folder that `lcrec push` did not write"}
    )

    def __post_init__(self) -> None:
        from huggingface_hub.errors import HFValidationError
        from huggingface_hub.utils import validate_repo_id

        try:
            validate_repo_id(self.repo_id)
        except HFValidationError as error:
            raise ValueError(f"--repo_id {self.repo_id}: not a valid Hub repo id ({error})") from None


KINDS = {"dataset": PushDatasetArguments, "model": PushModelArguments}


def _kind_description(kind: str) -> str:
    return {
        "dataset": "the prepared dataset as Parquet configs, plus the index folder and the task mix",
        "model": "the model folder with lcrec's card, its generation config and remote code",
    }[kind]


def _add_kinds(parser: argparse.ArgumentParser) -> None:
    """One sub-parser per kind, each over the kind's dataclass and the target's."""
    from transformers import HfArgumentParser

    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND", parser_class=HfArgumentParser)
    for kind, arguments in KINDS.items():
        kinds.add_parser(
            kind,
            help=_kind_description(kind),
            description=_kind_description(kind),
            dataclass_types=(arguments, PushTargetArguments),
            formatter_class=CommandHelpFormatter,
        )


def options_from_namespace(namespace: argparse.Namespace) -> list:
    """The parsed (kind arguments, target arguments) dataclasses of a `push KIND ...` namespace."""
    values = vars(namespace)
    return [
        cls(**{item.name: values[item.name] for item in fields(cls) if item.init})
        for cls in (KINDS[namespace.kind], PushTargetArguments)
    ]


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    """`lcrec push KIND`: a parser whose `parse_args_into_dataclasses` gives (kind arguments, target arguments)."""
    from transformers import HfArgumentParser

    class PushParser(HfArgumentParser):
        def parse_args_into_dataclasses(self, args=None, return_remaining_strings=False, look_for_args_file=True, **_):
            namespace, remaining = self.parse_known_args(args)
            options = options_from_namespace(namespace)
            return (*options, remaining) if return_remaining_strings else tuple(options)

    parser = command_parser(subparsers, "push", HELP, __doc__, (), prog=prog, parser_class=PushParser)
    _add_kinds(parser)
    return parser


def _push_failure(repo_id: str, error: Exception) -> Exception:
    """A one-line error for a failed upload, or `error` itself when it already says what happened."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    if isinstance(error, RepositoryNotFoundError):
        return ValueError(
            f"{repo_id}: the Hub refused access to the repo (a token with write access to it is needed: "
            f"HF_TOKEN or `hf auth login`)"
        )
    if isinstance(error, HfHubHTTPError):
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        # One commit per push: a failure leaves the repo's files as they were, so the same command can be rerun.
        return ValueError(
            f"pushing to {repo_id} failed and no files were committed; rerun the same command once the cause "
            f"is fixed: {first_line}"
        )
    return error


def run(arguments: PushDatasetArguments | PushModelArguments, target: PushTargetArguments) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    from ..hub import push_dataset, push_model

    common = {
        "revision": target.revision,
        "private": True if target.private else None,
        "dry_run_dir": target.dry_run,
        "overwrite": target.overwrite,
        "license": target.license,
        "reproduce": target.reproduce,
    }
    try:
        if isinstance(arguments, PushDatasetArguments):
            result = push_dataset(
                arguments.data, target.repo_id, index_dir=arguments.index, tasks_dir=arguments.tasks, **common
            )
        else:
            result = push_model(
                arguments.model,
                target.repo_id,
                weights=arguments.weights,
                metrics_path=arguments.metrics,
                index_dir=arguments.index,
                dataset_repo=arguments.dataset_repo,
                **common,
            )
    except HfHubHTTPError as error:
        raise _push_failure(target.repo_id, error) from None
    for path in result.files:
        print(f"  {path}")
    if result.commit_url is None:
        print(
            f"dry run: {len(result.files)} files for {result.repo_type} repo {result.repo_id} written to "
            f"{result.folder}"
        )
    else:
        print(
            f"pushed {len(result.files)} files to {result.repo_type} repo {result.repo_id} "
            f"({result.revision}): {result.commit_url}"
        )
    return 0
