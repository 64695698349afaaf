"""The prompt format training and `recommend()` share: the history text, its truncation, the seqrec prompt.

Also the one check of recommendation histories (types, shape, catalogue), used by `recommend()`, the
`item-recommendation` pipeline and the server, so every entry point accepts and refuses the same inputs.
It ships in the remote-code bundle of every saved model (imports only io_utils).
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Container, Iterable, Sequence
from importlib import resources
from typing import Any

from .io_utils import read_json

logger = logging.getLogger(__name__)

HISTORY_SEPARATOR = ", "
# The most recent items a prompt shows; the paper truncates histories to 20.
DEFAULT_MAX_HISTORY = 20
# The seqrec template recommend(), evaluation and the quickstart use unless told otherwise.
DEFAULT_SEQREC_TEMPLATE = 0
# The wrapper every instruction is put in, for training and for recommend(): one place, so they never drift.
PROMPT_FORMAT = "### Task\n{instruction}\n\n### Answer\n"
# How recommend() asks (`LCRecConfig.seqrec_format`): a seqrec instruction with the history inside it (the paper's),
# or, for models trained on the `sequence` task (lcrec.tasks.sequence), the history as the start of an item
# sequence to continue: SEQUENCE_INSTRUCTION, then the items' index tokens back to back.
INSTRUCTION_FORMAT = "instruction"
SEQUENCE_FORMAT = "sequence"
SEQREC_FORMATS = (INSTRUCTION_FORMAT, SEQUENCE_FORMAT)
SEQUENCE_INSTRUCTION = "Continue this user's item sequence, oldest first."
# Package data of the task templates (lcrec.tasks); read here as data so the model needs no task code.
_SEQREC_TEMPLATES_RESOURCE = ("tasks", "templates", "seqrec.json")


def format_prompt(instruction: str) -> str:
    """Wrap a rendered instruction into the prompt the model sees."""
    return PROMPT_FORMAT.format(instruction=instruction)


def recent_items(items: Sequence[Any], max_history: int) -> Sequence[Any]:
    """The most recent `max_history` entries of a history (oldest first), the window every prompt shows."""
    if isinstance(max_history, bool) or not isinstance(max_history, numbers.Integral) or max_history < 1:
        raise ValueError(f"max_history must be an integer >= 1, got {max_history!r}")
    return items[-int(max_history) :]


def join_history(parts: Iterable[str]) -> str:
    """History entries (index tokens or quoted titles) joined the way every task shows them."""
    return HISTORY_SEPARATOR.join(parts)


def seqrec_prompt(instruction: str, history_tokens: Sequence[str], max_history: int = DEFAULT_MAX_HISTORY) -> str:
    """The seqrec prompt: `instruction` with `{history}` = the most recent `max_history` items' index tokens."""
    return format_prompt(instruction.format(history=join_history(recent_items(history_tokens, max_history))))


def sequence_prompt(
    item_tokens: Sequence[str], max_history: int = DEFAULT_MAX_HISTORY, instruction: str = SEQUENCE_INSTRUCTION
) -> str:
    """The `sequence` format: the instruction, then the most recent `max_history` items' index tokens in order (an
    item is exactly one token per level, so none needs a separator). Training rows continue it with later items."""
    return format_prompt(instruction) + "".join(recent_items(item_tokens, max_history))


def default_seqrec_instructions() -> list[str]:
    """The seqrec instructions lcrec's task mix trains with (package data), for models built without their own."""
    resource = resources.files(__package__).joinpath(*_SEQREC_TEMPLATES_RESOURCE)
    if not resource.is_file():  # loaded as a model folder's remote code
        raise ValueError("the default seqrec templates ship with the lcrec package: pass seqrec_templates explicitly")
    with resources.as_file(resource) as path:
        return [entry["instruction"] for entry in read_json(path, expect=list)]


def _is_array(value: object) -> bool:
    """A tensor or numpy array (anything with `ndim` and `tolist`)."""
    return hasattr(value, "ndim") and hasattr(value, "tolist")


def _is_history(value: object) -> bool:
    return isinstance(value, (list, tuple)) or (_is_array(value) and value.ndim >= 1)


def is_single_history(histories: object) -> bool:
    """True when `histories` is one history (item ids), False when it is a batch of histories.

    Raises TypeError for anything that is neither (a string, a scalar, a mix of ids and lists).
    """
    if isinstance(histories, (str, bytes)):
        raise TypeError(f"histories must be a list of item ids or a list of such lists, got the string {histories!r}")
    if _is_array(histories):
        if histories.ndim not in (1, 2):
            raise TypeError(
                f"a tensor of histories must be 1-D (one history) or 2-D (one history per row), got {histories.ndim}-D"
            )
        return histories.ndim == 1
    if not isinstance(histories, Sequence):
        raise TypeError(
            f"histories must be a list of item ids or a list of such lists, got {type(histories).__name__}"
        )
    if not histories:
        return False  # no users at all
    kinds = {_is_history(entry) for entry in histories}
    if len(kinds) > 1:
        first_list = next(i for i, entry in enumerate(histories) if _is_history(entry))
        first_id = next(i for i, entry in enumerate(histories) if not _is_history(entry))
        raise TypeError(
            f"histories mixes item ids (entry {first_id}) and lists (entry {first_list}): "
            "give one history or a list of histories"
        )
    return kinds != {True}


def _item_id(value: object, user: int, position: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        shown = repr(value) if isinstance(value, (str, bytes, float, bool)) or value is None else type(value).__name__
        raise TypeError(f"history {user}, position {position}: item ids are integers, got {shown}")
    return int(value)


def check_histories(
    histories: object, catalogue: Container[int] | None = None, skip_unknown: bool = False
) -> list[list[int]]:
    """Validate recommendation histories and return them as a list of lists of int item ids.

    Accepts one history (a list of item ids) or a list of them; a 1-D integer tensor or numpy array is one history,
    a 2-D one holds one history per row (every entry is an item id: there is no padding value). Refuses, naming the
    history and position: strings, floats (12.5 is not truncated), booleans, None, and empty histories. Ids not in
    `catalogue` raise KeyError naming them, or are dropped with a warning when `skip_unknown` is set.
    """
    if is_single_history(histories):
        histories = [histories]
    elif _is_array(histories):
        histories = histories.tolist()
    checked = []
    for user, history in enumerate(histories):
        if _is_array(history):
            if history.ndim != 1:
                raise TypeError(f"history {user}: expected a 1-D sequence of item ids, got a {history.ndim}-D tensor")
            history = history.tolist()
        if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
            raise TypeError(f"history {user}: expected a list of integer item ids, got {history!r}")
        items = list(history)
        if not all(type(value) is int for value in items):  # plain ints pass as they are; anything else is checked
            items = [_item_id(value, user, position) for position, value in enumerate(items)]
        if catalogue is not None:
            unknown = [item for item in items if item not in catalogue]
            if unknown and not skip_unknown:
                raise KeyError(f"history {user}: {len(unknown)} item ids are not in the catalogue: {unknown[:10]}")
            if unknown:
                logger.warning("history %d: skipping %d unknown item ids: %s", user, len(unknown), unknown[:10])
                items = [item for item in items if item in catalogue]
        if not items:
            raise ValueError(f"history {user}: empty history: a recommendation needs at least one known item")
        checked.append(items)
    return checked


__all__ = [
    "DEFAULT_MAX_HISTORY",
    "DEFAULT_SEQREC_TEMPLATE",
    "HISTORY_SEPARATOR",
    "INSTRUCTION_FORMAT",
    "PROMPT_FORMAT",
    "SEQREC_FORMATS",
    "SEQUENCE_FORMAT",
    "SEQUENCE_INSTRUCTION",
    "check_histories",
    "default_seqrec_instructions",
    "format_prompt",
    "is_single_history",
    "join_history",
    "recent_items",
    "seqrec_prompt",
    "sequence_prompt",
]
