"""Prompt templates of the six LC-Rec tasks, kept as package data (`templates/<task>.json`)."""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources

# The wrapper every instruction is put in, for training and for recommend(): one place, so they never drift.
PROMPT_FORMAT = "### Task\n{instruction}\n\n### Answer\n"


def format_prompt(instruction: str) -> str:
    """Wrap a rendered instruction into the prompt the model sees."""
    return PROMPT_FORMAT.format(instruction=instruction)


@dataclass(frozen=True)
class Template:
    """One instruction/response pair with `{placeholders}` filled from a sample's fields."""

    task: str
    template_id: int
    instruction: str
    response: str

    @property
    def fields(self) -> set[str]:
        return _placeholders(self.instruction) | _placeholders(self.response)

    def render(self, **fields: str) -> tuple[str, str]:
        """(prompt, completion) for this template."""
        return format_prompt(self.instruction.format(**fields)), self.response.format(**fields)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@cache
def load_templates(task: str) -> tuple[Template, ...]:
    """All templates of `task`, in file order (template_id = position)."""
    try:
        raw = resources.files("lcrec.tasks").joinpath("templates", f"{task}.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyError(f"unknown task {task!r}") from None
    entries = json.loads(raw)
    return tuple(Template(task, i, entry["instruction"], entry["response"]) for i, entry in enumerate(entries))
