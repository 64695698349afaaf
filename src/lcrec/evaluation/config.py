"""Evaluation options: which users every method of a comparison is scored on, and how LC-Rec ranks for them.

Plain dataclasses with `help` metadata: `lcrec evaluate`, `lcrec baseline` and `lcrec quickstart` parse them
directly (HfArgumentParser), so each default is written here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..data.prepared import LEGACY_SPLIT_NAMES
from ..prompts import DEFAULT_SEQREC_TEMPLATE
from .metrics import METRIC_NAMES, max_cutoff

# The splits a method is scored on (the third, train, is what it learns from).
SPLITS = ("test", "validation")
ALL_TEMPLATES = "all"


def canonical_split(split: str) -> str:
    """`test` or `validation` (`valid` accepted); anything else is refused."""
    name = LEGACY_SPLIT_NAMES.get(split, split)  # old folders and scripts say `valid` (CONTRACTS 1)
    if name not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} (or valid), got {split!r}")
    return name


@dataclass
class UserSelection:
    """Which users are evaluated and how a ranking is cut: the same for every method of one comparison."""

    split: str = field(
        default="test",
        metadata={
            "help": "targets to predict: test, or validation (`valid` accepted) to choose options without the test set"
        },
    )
    max_users: int | None = field(
        default=None, metadata={"help": "evaluate a seeded sample of this many users (None: every user of the split)"}
    )
    user_seed: int = field(default=0, metadata={"help": "seed of the --max_users sample"})
    exclude_history: bool = field(
        default=False, metadata={"help": "drop items the user already has from the ranking (the paper does not)"}
    )

    def __post_init__(self) -> None:
        self.split = canonical_split(self.split)
        if self.max_users is not None and (isinstance(self.max_users, bool) or self.max_users < 1):
            raise ValueError(f"max_users must be a positive number of users or None (all), got {self.max_users!r}")


@dataclass
class EvaluationConfig(UserSelection):
    """How LC-Rec is evaluated: seqrec templates, beams and batch size, on the users `UserSelection` picks."""

    templates: str = field(
        default=str(DEFAULT_SEQREC_TEMPLATE),
        metadata={"help": "seqrec templates: ids like 0,1, or `all` (the paper's mean over every template)"},
    )
    num_beams: int | None = field(
        default=None,
        metadata={
            "help": "beams = ranked items per user, at least 10 (None: the model's generation_config.num_beams)"
        },
    )
    batch_size: int | None = field(
        default=None, metadata={"help": "users per prefill and decoding loop (None: the decoder's choice, by memory)"}
    )
    max_history: int | None = field(
        default=None, metadata={"help": "most recent history items in a prompt (None: the model's setting)"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.templates, str):
            self.templates = ",".join(str(int(template)) for template in self.templates)
        template_ids(self.templates)  # the syntax; the ids are checked against the model in evaluate_model
        needed = max_cutoff(METRIC_NAMES)
        if self.num_beams is not None and self.num_beams < needed:
            raise ValueError(
                f"num_beams ({self.num_beams}) is smaller than the largest cut-off K={needed}: "
                f"the top-{needed} needs at least {needed} beams"
            )
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")
        if self.max_history is not None and self.max_history < 1:
            raise ValueError(f"max_history must be >= 1 or None, got {self.max_history}")


def template_ids(spec: str | Sequence[int], num_templates: int | None = None) -> list[int] | None:
    """`"all"`, `"0,3"` or a list of ints -> sorted template ids (None for `all` without `num_templates`).

    With `num_templates` (the model's seqrec template count) every id must exist.
    """
    if isinstance(spec, str):
        if spec.strip().lower() == ALL_TEMPLATES:
            return None if num_templates is None else list(range(num_templates))
        try:
            spec = [int(part) for part in spec.split(",") if part.strip()]
        except ValueError:
            raise ValueError(
                f"templates must be '{ALL_TEMPLATES}' or comma-separated ids like '0,1', got {spec!r}"
            ) from None
    ids = sorted(set(int(template) for template in spec))
    if not ids:
        raise ValueError("no templates chosen")
    if num_templates is not None:
        bad = [template for template in ids if not 0 <= template < num_templates]
        if bad:
            raise ValueError(
                f"templates {bad} do not exist: the model has {num_templates} seqrec templates "
                f"(0..{num_templates - 1})"
            )
    elif any(template < 0 for template in ids):
        raise ValueError(f"template ids must be >= 0, got {ids}")
    return ids
