"""Checks a command runs on its inputs before any work starts, so a mistake costs a one-line error, not a traceback.

Each raises an OSError or ValueError whose message names the option and the problem (`lcrec.cli` prints it as
`lcrec CMD: error: ...` with exit code 2).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

# Files that make a folder something `from_pretrained` can load: a model, or a PEFT adapter over one.
MODEL_FILES = ("config.json", "adapter_config.json")
# What other lcrec folders hold, to say what a folder given as a model is instead.
FOLDER_KINDS = {
    "dataset_dict.json": "a prepared dataset or task mix folder",
    "index.json": "an item index folder",
    "sasrec_config.json": "a SASRec baseline folder",
}


def looks_like_local_path(name: str) -> bool:
    """True for names a Hub repo id (`name` or `org/name`) cannot be: `./x`, `/x`, `~/x`, `a/b/c`, `x/`."""
    return (
        name.startswith((".", "/", "~", os.sep))
        or name.endswith(("/", os.sep))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
    )


def require_pretrained(
    name_or_path: str, option: str = "--model", files: Sequence[str] = MODEL_FILES, what: str = "model"
) -> str:
    """A local folder holding one of `files`, or a Hub repo id that can be resolved (from the cache when offline).

    Returns the folder or repo id as given. Refuses a missing path, a file, a folder that is not a model (saying
    what it is when it is another lcrec folder), an invalid repo id, and a repo id that is not cached while
    `HF_HUB_OFFLINE` is set.
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"{option} {name_or_path}: is a file, expected a {what} folder or a Hub repo id")
        if not any((path / name).is_file() for name in files):
            kinds = [kind for marker, kind in FOLDER_KINDS.items() if (path / marker).is_file()]
            instead = f"; it is {kinds[0]}" if kinds else (" (the folder is empty)" if not any(path.iterdir()) else "")
            raise FileNotFoundError(f"{option} {name_or_path}: not a {what} folder (no {' or '.join(files)}){instead}")
        return name_or_path
    if looks_like_local_path(name_or_path):
        raise FileNotFoundError(f"{option} {name_or_path}: no such folder")
    from huggingface_hub import is_offline_mode, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        raise FileNotFoundError(f"{option} {name_or_path}: no such folder, and not a valid Hub repo id") from None
    if is_offline_mode() and not any(isinstance(try_to_load_from_cache(name_or_path, name), str) for name in files):
        raise FileNotFoundError(
            f"{option} {name_or_path}: no such folder, and the Hub repo {name_or_path} is not in the local cache "
            "while the Hub is offline (HF_HUB_OFFLINE=1)"
        )
    return name_or_path


def require_device(device: str | None, option: str = "--device") -> None:
    """`auto`/None (picked at run time), `cpu`, or an accelerator this torch build can use now (`resolve_device`)."""
    if device is None:
        return
    from ..indexing.embedding import resolve_device

    try:
        resolve_device(device)
    except ValueError as error:
        raise ValueError(f"{option} {device}: {error}") from None
