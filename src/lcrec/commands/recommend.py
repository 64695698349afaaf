"""`lcrec recommend --model DIR --history 1 2 3`: the top items for one item-id history, with titles.

Loads an LC-Rec model folder (or adapter folder, or Hub id) and prints the ranked next items of the history
(trie-constrained beam search, so every item exists).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field

from . import command_parser, library_default

HELP = "recommend the next items for one item-id history (trie-constrained beam search)"
# Item ids as typed: ASCII digits only (Python's int() would also take "1_000", " 7" or full-width digits).
_ITEM_ID = re.compile(r"[0-9]+")


@dataclass
class RecommendArguments:
    """The model, the history and how many items to return."""

    model: str = field(metadata={"help": "LC-Rec model folder (save_pretrained output), adapter folder or Hub id"})
    history: list[str] = field(metadata={"help": "item ids (digits), oldest first"})
    top_k: int = field(default=10, metadata={"help": "items to return"})
    num_beams: int | None = field(
        default=None, metadata={"help": "beam width, at least top_k (None: the model's generation_config.num_beams)"}
    )
    template: int = field(
        default_factory=library_default("lcrec.prompts", "DEFAULT_SEQREC_TEMPLATE"),
        metadata={"help": "seqrec template id of the prompt"},
    )
    skip_unknown: bool = field(
        default=False, metadata={"help": "drop unknown item ids from the history (with a warning) instead of failing"}
    )

    def __post_init__(self) -> None:
        for position, value in enumerate(self.history):
            if not isinstance(value, int) and not _ITEM_ID.fullmatch(value):
                raise ValueError(f"--history: {value!r} (position {position}) is not an item id; ids are digits 0-9")
        self.history = [int(value) for value in self.history]
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.num_beams is not None and self.num_beams < self.top_k:
            raise ValueError(f"num_beams ({self.num_beams}) must be at least top_k ({self.top_k})")
        if self.template < 0:
            raise ValueError(f"template must be >= 0, got {self.template}")


def make_parser(subparsers: argparse._SubParsersAction | None = None, prog: str | None = None):
    return command_parser(subparsers, "recommend", HELP, __doc__, (RecommendArguments,), prog=prog)


def run(arguments: RecommendArguments) -> int:
    from ..modeling_lcrec import LCRecForCausalLM
    from .checks import require_pretrained

    model = LCRecForCausalLM.from_pretrained(require_pretrained(arguments.model)).eval()
    if model.tokenizer is None:
        raise FileNotFoundError(f"{arguments.model}: no index.json / tokenizer files beside the model")
    (ranked,) = model.recommend(
        [arguments.history],
        top_k=arguments.top_k,
        num_beams=arguments.num_beams,
        template=arguments.template,
        skip_unknown=arguments.skip_unknown,
    )
    tokenizer = model.tokenizer
    known = [item for item in arguments.history if item in tokenizer.item_index]
    print(f"history: {', '.join(f'{item} ({tokenizer.title(item)})' for item in known)}")
    print(f"{'rank':>4}  {'item':>8}  {'log-prob':>9}  {'index':<24}  title")
    for rank, (item, score) in enumerate(ranked, start=1):
        print(f"{rank:>4}  {item:>8}  {score:>9.3f}  {tokenizer.item_tokens(item):<24}  {tokenizer.title(item)}")
    return 0
