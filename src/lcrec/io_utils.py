"""Atomic artifact writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto `path`, else remove it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the artifact the permissions a plain open() would have.
        os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def read_json(path: str | os.PathLike, expect: type | None = None) -> Any:
    """Parse a UTF-8 JSON file; errors name the file and line (`FILE:LINE:COL: malformed JSON: ...`).

    A UTF-8 byte-order mark is accepted (`utf-8-sig`), as for every text input. `expect` (dict or list) checks the
    top-level type. Refuses non-standard constants (NaN, Infinity) instead of letting them through as floats.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, expected a JSON file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start})") from None

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    try:
        data = json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}:{error.colno}: malformed JSON: {error.msg}") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if expect is not None and not isinstance(data, expect):
        raise ValueError(f"{path}: expected a JSON {_JSON_TYPE_NAMES.get(expect, expect.__name__)}, got {type(data).__name__}")
    return data


_JSON_TYPE_NAMES = {dict: "object", list: "array"}


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2) -> None:
    """Write JSON atomically (UTF-8, keys in insertion order)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` whole, else it is removed.

    Readers never see a half-written folder: the old one stays until the new one is complete.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp_dir
        os.chmod(tmp_dir, 0o777 & ~_current_umask())
        if target.exists():
            backup = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, backup)
            os.replace(tmp_dir, target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp_dir, target)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)


def save_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Run `writer(tmp_path)` and rename the result onto `path` (for writers that take a filename)."""
    with atomic_path(path) as tmp:
        writer(tmp)
