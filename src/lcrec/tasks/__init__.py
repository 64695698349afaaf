"""The six LC-Rec instruction tasks and the task-mix builder."""

from .templates import PROMPT_FORMAT, Template, format_prompt, load_templates

__all__ = ["PROMPT_FORMAT", "Template", "format_prompt", "load_templates"]
