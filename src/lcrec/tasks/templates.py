"""Prompt templates of the six LC-Rec tasks, kept as package data (`templates/<task>.json`).

Each task declares the placeholders its samples provide and the forms a template may take (which fields
its instruction shows, which its response answers). Templates are validated when loaded: an unknown
placeholder, a malformed format string or a field combination no sample provides is an error naming the
task, the template and the problem.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from ..io_utils import read_json
from ..prompts import format_prompt


@dataclass(frozen=True)
class TaskForm:
    """One way a task's template may be shaped: the fields its instruction shows and the fields it answers."""

    inputs: frozenset[str]
    answers: frozenset[str]


@dataclass(frozen=True)
class TaskSpec:
    """What a task's samples provide: every allowed placeholder, and the allowed template forms."""

    name: str
    description: str
    forms: tuple[TaskForm, ...]

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset().union(*(form.inputs | form.answers for form in self.forms))


def _form(inputs: str, answers: str) -> TaskForm:
    return TaskForm(frozenset(inputs.split()), frozenset(answers.split()))


# Field meanings: history = index tokens of the most recent items (lcrec.prompts); history_titles = their
# quoted titles; item = the (target) item's index tokens; title / description = the item's texts;
# preference / intention = per-user text (see lcrec.tasks.user_texts).
TASK_SPECS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("seqrec", "history as indices -> next item's index", (_form("history", "item"),)),
        TaskSpec(
            "item2index",
            "title, description or both -> the item's index",
            (_form("title", "item"), _form("description", "item"), _form("title description", "item")),
        ),
        TaskSpec(
            "index2item",
            "index -> the item's title, description or both",
            (_form("item", "title"), _form("item", "description"), _form("item", "title description")),
        ),
        TaskSpec(
            "fusionseqrec",
            "history as indices -> next item's title or description; history as titles -> next item's index",
            (_form("history", "title"), _form("history", "description"), _form("history_titles", "item")),
        ),
        TaskSpec(
            "itemsearch",
            "user intention (with history and/or preference) -> the intended item's index",
            (
                _form("intention", "item"),
                _form("history intention", "item"),
                _form("history preference intention", "item"),
            ),
        ),
        TaskSpec(
            "preferenceobtain", "history as indices -> the user's preferences", (_form("history", "preference"),)
        ),
    )
}
TASKS: tuple[str, ...] = tuple(TASK_SPECS)
# Fields whose answer must be exactly the field: the completion is then exactly the index tokens.
_EXACT_ANSWERS = frozenset({"item"})


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

    @property
    def input_fields(self) -> set[str]:
        return _placeholders(self.instruction)

    @property
    def answer_fields(self) -> set[str]:
        return _placeholders(self.response)

    def render(self, **fields: str) -> tuple[str, str]:
        """(prompt, completion) for this template."""
        return format_prompt(self.instruction.format(**fields)), self.response.format(**fields)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _check_template(spec: TaskSpec, template: Template, source: str) -> None:
    where = f"{source}: task {spec.name!r} template {template.template_id}"
    for part, text in (("instruction", template.instruction), ("response", template.response)):
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as error:
            raise ValueError(f"{where}: malformed {part} {text!r}: {error}") from None
        for _, name, format_spec, conversion in parsed:
            if name is None:
                continue
            if name not in spec.placeholders:
                raise ValueError(
                    f"{where}: unknown placeholder {{{name}}} in the {part}; "
                    f"{spec.name} allows {sorted(spec.placeholders)}"
                )
            if format_spec or conversion:
                raise ValueError(
                    f"{where}: placeholder {{{name}}} in the {part} must be plain (no format spec or conversion)"
                )
    form = TaskForm(frozenset(template.input_fields), frozenset(template.answer_fields))
    if form not in spec.forms:
        allowed = "; ".join(f"instruction {sorted(f.inputs)} -> response {sorted(f.answers)}" for f in spec.forms)
        raise ValueError(
            f"{where}: no sample provides instruction fields {sorted(form.inputs)} with response fields "
            f"{sorted(form.answers)}; allowed forms: {allowed}"
        )
    exact = form.answers & _EXACT_ANSWERS
    if exact and template.response != "".join(f"{{{name}}}" for name in sorted(exact)):
        raise ValueError(
            f"{where}: the response must be exactly {{item}} (the completion is the index tokens), "
            f"got {template.response!r}"
        )


def parse_templates(
    task: str, entries: Sequence[Mapping[str, str]], source: str = "templates"
) -> tuple[Template, ...]:
    """Validate and build a task's templates from `[{"instruction": ..., "response": ...}, ...]`."""
    if task not in TASK_SPECS:
        raise KeyError(f"unknown task {task!r}; tasks: {list(TASKS)}")
    spec = TASK_SPECS[task]
    if not isinstance(entries, Sequence) or isinstance(entries, str) or not entries:
        raise ValueError(f"{source}: task {task!r}: expected a non-empty list of templates")
    templates = []
    for template_id, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or set(entry) != {"instruction", "response"}:
            raise ValueError(
                f"{source}: task {task!r} template {template_id}: expected exactly the keys 'instruction' and "
                f"'response', got {entry!r}"
            )
        if not all(isinstance(entry[key], str) and entry[key].strip() for key in ("instruction", "response")):
            raise ValueError(
                f"{source}: task {task!r} template {template_id}: instruction and response must be non-empty strings"
            )
        template = Template(task, template_id, entry["instruction"], entry["response"])
        _check_template(spec, template, source)
        templates.append(template)
    return tuple(templates)


def load_templates_file(task: str, path: str | Path) -> tuple[Template, ...]:
    """Validated templates of `task` from a JSON file of your own (same layout as the package data)."""
    return parse_templates(task, read_json(path, expect=list), source=str(path))


@cache
def load_templates(task: str) -> tuple[Template, ...]:
    """All templates of `task`, in file order (template_id = position), validated."""
    if task not in TASK_SPECS:
        raise KeyError(f"unknown task {task!r}; tasks: {list(TASKS)}")
    with resources.as_file(resources.files("lcrec.tasks").joinpath("templates", f"{task}.json")) as path:
        return parse_templates(task, read_json(path, expect=list), source=f"package templates {task}.json")
