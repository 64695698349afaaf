"""The SFT presets (YAML files of training options) shipped inside the package, found by name or by path.

`lcrec train --config ml-100k-cpu` and `accelerate launch recipes/sft.py --config ml-100k-cpu` work from any
folder; a path to a YAML file works as well. `recipes/configs/` in the repository links to these files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

SUFFIX = ".yaml"


def preset_dir() -> Path:
    """The folder of the packaged presets."""
    return Path(str(files(__name__)))


def list_presets() -> list[str]:
    """Names of the packaged presets, sorted."""
    return sorted(path.stem for path in preset_dir().glob(f"*{SUFFIX}"))


def resolve_preset(name_or_path: str | os.PathLike) -> Path:
    """An existing YAML file as given, else the packaged preset of that name (`ml-100k-cpu` or `ml-100k-cpu.yaml`).

    Raises FileNotFoundError naming the available presets, IsADirectoryError for a folder.
    """
    text = os.fspath(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.is_dir():
        raise IsADirectoryError(f"preset {text}: is a folder, expected a YAML file or a preset name")
    if candidate.is_file():
        return candidate
    name = text[: -len(SUFFIX)] if text.endswith(SUFFIX) else text
    packaged = preset_dir() / f"{name}{SUFFIX}"
    if name and os.sep not in name and "/" not in name and packaged.is_file():
        return packaged
    hint = f" (did you mean the preset name {candidate.stem!r}?)" if candidate.stem in list_presets() else ""
    raise FileNotFoundError(
        f"preset {text}: no such file and no packaged preset of that name{hint}; presets: {', '.join(list_presets())}"
    )


def resolve_config_argument(argv: Sequence[str]) -> list[str]:
    """`argv` with `--config NAME|PATH` (TrlParser's YAML option; `--config=...` too) as `--config FILE`."""
    resolved: list[str] = []
    pending = False
    for arg in argv:
        if pending:
            resolved.append(str(resolve_preset(arg)))
            pending = False
        elif arg == "--config":
            resolved.append(arg)
            pending = True
        elif arg.startswith("--config="):
            resolved += ["--config", str(resolve_preset(arg.split("=", 1)[1]))]
        else:
            resolved.append(arg)
    if pending:
        raise ValueError("--config needs a preset name or a YAML file")
    return resolved
