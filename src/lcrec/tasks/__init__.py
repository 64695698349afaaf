"""The six LC-Rec instruction tasks, the `sequence` task, their templates, per-user texts and the task-mix builder.

The templates load without `datasets`; the mix builder and user-text loaders are imported on first use,
so `recommend()` and `lcrec --help` stay light.
"""

from importlib import import_module

from ..prompts import DEFAULT_MAX_HISTORY, PROMPT_FORMAT, format_prompt
from .sequence import MIX_TASKS, SEQUENCE_TASK, mix_prompt_format
from .templates import TASK_SPECS, TASKS, Template, load_templates, load_templates_file, parse_templates

_LAZY = {
    "MissingTaskDataError": ".mix",
    "TaskMix": ".mix",
    "build_task_mix": ".mix",
    "build_validation_mix": ".mix",
    "UserTexts": ".user_texts",
    "load_user_texts": ".user_texts",
    "augment_user_texts": ".augment",
}

__all__ = [
    "DEFAULT_MAX_HISTORY",
    "MIX_TASKS",
    "mix_prompt_format",
    "PROMPT_FORMAT",
    "SEQUENCE_TASK",
    "TASKS",
    "TASK_SPECS",
    "Template",
    "format_prompt",
    "load_templates",
    "load_templates_file",
    "parse_templates",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
