"""`lcrec augment --data DIR --out FILE`: per-user preference and intention texts from a local instruct model.

Generates the per-user texts the itemsearch and preferenceobtain tasks need. Appends JSON lines as it goes; rerunning
continues where it stopped. Use the file with `lcrec tasks --user_texts FILE`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from . import command_parser, library_default

HELP = "write per-user preference and intention texts with a local instruct model (resumable)"
_AUGMENT = ("lcrec.tasks.augment", "augment_user_texts")


@dataclass
class AugmentArguments:
    """Which dataset and model, where the texts go, and how much is generated."""

    data: str = field(metadata={"help": "prepared dataset folder (`lcrec prepare --out`)"})
    out: str = field(metadata={"help": "JSON-lines output, e.g. DIR/users.jsonl (appended; a rerun resumes)"})
    model: str | None = field(
        default=None, metadata={"help": "instruct model folder or Hub id (None: the offline SmolLM2-135M-Instruct)"}
    )
    batch_size: int = field(
        default_factory=library_default(*_AUGMENT, "batch_size"), metadata={"help": "users per generation batch"}
    )
    max_new_tokens: int = field(
        default_factory=library_default(*_AUGMENT, "max_new_tokens"), metadata={"help": "tokens generated per text"}
    )
    max_history: int = field(
        default_factory=library_default("lcrec.prompts", "DEFAULT_MAX_HISTORY"),
        metadata={"help": "most recent item titles shown to the model"},
    )
    max_users: int | None = field(
        default=None, metadata={"help": "stop once the file holds this many users (None: every user)"}
    )
    device: str = field(default="auto", metadata={"help": "torch device: auto (cuda when available), cpu, cuda, ..."})
    seed: int = field(default=0, metadata={"help": "torch seed (decoding is greedy)"})

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_new_tokens", "max_history"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_users is not None and self.max_users < 1:
            raise ValueError(f"max_users must be >= 1 or None, got {self.max_users}")


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    return command_parser(subparsers, "augment", HELP, __doc__, (AugmentArguments,), prog=prog)


def run(arguments: AugmentArguments) -> int:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..data import load_prepared
    from ..io_utils import check_output_file
    from ..tasks.augment import augment_user_texts
    from .checks import require_device, require_pretrained

    check_output_file(arguments.out, inputs=[arguments.data])
    require_device(arguments.device)
    if arguments.model is None:
        from ..assets import smollm2_path

        model_name = str(smollm2_path())
    else:
        model_name = require_pretrained(arguments.model, files=("config.json",), what="instruct model")
    torch.manual_seed(arguments.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if arguments.device == "auto" else arguments.device
    dataset = load_prepared(arguments.data)
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    model = AutoModelForCausalLM.from_pretrained(model_name).to(device)
    written = augment_user_texts(
        dataset,
        model,
        tokenizer,
        arguments.out,
        batch_size=arguments.batch_size,
        max_new_tokens=arguments.max_new_tokens,
        max_history=arguments.max_history,
        max_users=arguments.max_users,
        model_name=model_name,
    )
    print(f"wrote texts for {written} users to {arguments.out}")
    return 0
