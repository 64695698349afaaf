"""lcrec's card templates: Jinja files shipped inside the package (`LCREC_MODEL_CARDS` names another folder)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

TEMPLATES_ENV = "LCREC_MODEL_CARDS"
PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"
# Optional template sections leave runs of blank lines; Markdown reads one blank line the same.
_BLANK_RUNS = re.compile(r"\n{3,}")


def card_template_path(name: str) -> Path:
    """The template file `name`: from `$LCREC_MODEL_CARDS` when set (an override for custom cards), else the
    package's own."""
    override = os.environ.get(TEMPLATES_ENV)
    folder = Path(override) if override else PACKAGE_TEMPLATES
    path = folder / name
    if not path.is_file():
        origin = f"{TEMPLATES_ENV}={override}" if override else "the lcrec package's data (reinstall lcrec)"
        raise FileNotFoundError(f"card template {name} not found in {folder} (from {origin})")
    return path


def render_card(name: str, card_data: Any, **fields: Any) -> str:
    """Render template `name` with `card_data` (a huggingface_hub CardData) as its YAML header.

    Undefined names are errors, so a template and the fields it is given cannot drift apart silently.
    """
    import jinja2

    path = card_template_path(name)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(path.parent)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    text = environment.get_template(path.name).render(card_data=card_data.to_yaml(), **fields)
    return _BLANK_RUNS.sub("\n\n", text)
