"""The `sequence` task: a user's chronological items as one row, a next-item target at every item after the first.

A seqrec row teaches one next item per forward pass; SASRec learns every next item of a sequence at once. A
`sequence` row does the same for LC-Rec: the prompt is a fixed instruction followed by the first item's index
tokens, and the completion is the index tokens of every following item, concatenated (an item is exactly
`levels` tokens, one per level, so no separator is needed). A user's training sequence is cut, from its end,
into windows of `window + 1` items overlapping by one, so every consecutive (item, next item) pair of the
training split is a target exactly once per epoch and no target ever sees more than `window` items before it.

A model trained this way is asked in the same format (`lcrec.prompts.sequence_prompt`: the instruction, then the
last `window` history items), and the next `levels` generated tokens are the item; `LCRecConfig.seqrec_format =
"sequence"` tells recommend() so.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..prompts import INSTRUCTION_FORMAT, SEQUENCE_FORMAT, sequence_prompt
from .templates import TASKS

SEQUENCE_TASK = SEQUENCE_FORMAT
# Every task a mix may hold: the paper's six (the default mix) plus `sequence`.
MIX_TASKS: tuple[str, ...] = (*TASKS, SEQUENCE_TASK)
# The `template_id` of sequence rows: the task has one fixed wording, which inference reproduces exactly.
SEQUENCE_TEMPLATE_ID = 0


def mix_prompt_format(tasks: Sequence[str]) -> str:
    """The format a model trained on `tasks` is asked in: `sequence` when the mix has the sequence task and not
    seqrec (the model never saw a seqrec instruction), else the seqrec instructions."""
    return SEQUENCE_FORMAT if SEQUENCE_TASK in tasks and "seqrec" not in tasks else INSTRUCTION_FORMAT


def sequence_windows(sequence: Sequence[int], window: int) -> list[list[int]]:
    """Windows of at most `window + 1` consecutive items cut from the end, overlapping by one item.

    Each window's first item is context only; each later item is a target. Every position >= 1 of `sequence`
    is the target of exactly one window, and sees at most `window` items of its own window before it.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    windows = []
    end = len(sequence)
    while end >= 2:
        windows.append(list(sequence[max(0, end - window - 1) : end]))
        end -= window
    windows.reverse()
    return windows


class SequenceSamples:
    """The `sequence` task's rows for a task mix: one per window of every training sequence (the same each epoch)."""

    task = SEQUENCE_TASK

    def __init__(self, windows: list[list[int]], tokens: Sequence[str]):
        self.windows = windows
        self.tokens = tokens

    @classmethod
    def build(cls, sequences: Sequence[Sequence[int]], tokens: Sequence[str], window: int) -> SequenceSamples:
        """Windows of every sequence with two or more items; `tokens[item]` is an item's index-token string."""
        return cls([piece for sequence in sequences for piece in sequence_windows(sequence, window)], tokens)

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def num_targets(self) -> int:
        """Next-item targets over all rows (the number of seqrec rows the same data would make)."""
        return sum(len(piece) - 1 for piece in self.windows)

    def render(self, columns: dict[str, list]) -> None:
        """Append this task's prompt/completion rows to `columns` (one fixed wording: no template draw)."""
        for piece in self.windows:
            columns["prompt"].append(sequence_prompt([self.tokens[piece[0]]]))
            columns["completion"].append("".join(self.tokens[item] for item in piece[1:]))
            columns["task"].append(SEQUENCE_TASK)
            columns["template_id"].append(SEQUENCE_TEMPLATE_ID)


__all__ = [
    "MIX_TASKS",
    "SEQUENCE_TASK",
    "SEQUENCE_TEMPLATE_ID",
    "SequenceSamples",
    "mix_prompt_format",
    "sequence_windows",
]
