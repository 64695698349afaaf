"""Files for a Hugging Face Space that runs the demo as is: app.py, requirements.txt and the Space README."""

from __future__ import annotations

import os
from pathlib import Path

from ..io_utils import write_text

APP_TEMPLATE = '''"""Hugging Face Space: the LC-Rec demo for {model_id} (written by lcrec; runs as is).

Set the LCREC_MODEL variable to serve another model repo. A login: set the Space secret LCREC_API_KEY (the password,
any user name) or LCREC_DEMO_AUTH (USER:PASSWORD).
"""

import os

from lcrec.serving.auth import gradio_login, resolve_api_key, resolve_demo_login
from lcrec.serving.demo import demo_from_pretrained

demo = demo_from_pretrained(os.environ.get("LCREC_MODEL", {model_id!r}))

if __name__ == "__main__":
    demo.launch(auth=gradio_login(resolve_api_key(None), resolve_demo_login(None)))
'''

SPACE_README_TEMPLATE = """---
title: {title}
emoji: 🛍️
colorFrom: indigo
colorTo: green
sdk: gradio
sdk_version: {gradio_version}
app_file: app.py
models:
- {model_id}
pinned: false
---

# {title}

Pick items you like and see what [{model_id}](https://huggingface.co/{model_id}) recommends next:
an LC-Rec model that generates semantic item IDs with constrained beam search.
"""


def default_requirement() -> str:
    """The pip requirement that installs lcrec with its serving extras, pinned to this version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"lcrec[serve]=={version('lcrec')}"
    except PackageNotFoundError:
        return "lcrec[serve]"


def write_space_files(
    folder: str | os.PathLike, model_id: str, title: str | None = None, requirement: str | None = None
) -> list[Path]:
    """Write app.py, requirements.txt and README.md (Space front matter) for `model_id` into `folder`.

    `requirement` is the pip line that installs lcrec (default `lcrec[serve]==<this version>`; pass a
    `git+https://...` URL or a wheel path where the package is not on PyPI). Returns the written paths.
    """
    import gradio

    if not model_id or model_id != model_id.strip():
        raise ValueError(f"write_space_files: model_id must be a repo id like 'org/name', got {model_id!r}")
    folder = Path(folder)
    title = title or f"LC-Rec {model_id.split('/')[-1]}"
    files = {
        "app.py": APP_TEMPLATE.format(model_id=model_id),
        "requirements.txt": f"{requirement or default_requirement()}\n",
        "README.md": SPACE_README_TEMPLATE.format(title=title, model_id=model_id, gradio_version=gradio.__version__),
    }
    for name, text in files.items():
        write_text(folder / name, text)
    return [folder / name for name in files]
