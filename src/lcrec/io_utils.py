"""Artifact writes and reads: atomic files and folders, the output-folder check, one JSON reader with file:line errors.

Kept free of other lcrec imports: it ships in the remote-code bundle of every saved model.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Written into every folder an lcrec command replaces whole. It marks the folder as that command's output, so a rerun
# may replace it without `--overwrite`, while a folder holding anything else is never deleted by accident.
OUTPUT_MARKER = ".lcrec_output.json"


class OutputFolderError(ValueError):
    """An output folder that cannot be written safely (found before the work starts)."""


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


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class _RefusedLiteral(ValueError):
    def __init__(self, literal: str, problem: str):
        super().__init__(f"{problem}: {literal}")
        self.literal = literal


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise _RefusedLiteral(name, "non-standard JSON constant")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise _RefusedLiteral(literal, "number too large for a float")
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _top_level_pairs(text: str) -> list[tuple[str, Any]]:
    """The (key, value) pairs of a top-level JSON object in file order, repeated keys included."""
    position = _WHITESPACE.match(text, 0).end()
    if text[position : position + 1] != "{":
        value = _DECODER.decode(text)
        raise ValueError(f"expected a JSON object, got {_json_type_name(value)}")
    position = _WHITESPACE.match(text, position + 1).end()
    pairs: list[tuple[str, Any]] = []
    if text[position : position + 1] == "}":
        position += 1
    else:
        while True:
            if text[position : position + 1] != '"':
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, position)
            key, position = json.decoder.scanstring(text, position + 1)
            position = _WHITESPACE.match(text, position).end()
            if text[position : position + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", text, position)
            value, position = _DECODER.raw_decode(text, _WHITESPACE.match(text, position + 1).end())
            pairs.append((key, value))
            position = _WHITESPACE.match(text, position).end()
            delimiter = text[position : position + 1]
            position += 1
            if delimiter == "}":
                break
            if delimiter != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, position - 1)
            position = _WHITESPACE.match(text, position).end()
    if _WHITESPACE.match(text, position).end() != len(text):
        raise json.JSONDecodeError("Extra data", text, position)
    return pairs


def read_json(path: str | os.PathLike, expect: type | None = None, *, top_level_pairs: bool = False) -> Any:
    """Parse a UTF-8 JSON file; errors name the file and line (`FILE:LINE:COL: malformed JSON: ...`).

    A UTF-8 byte-order mark is accepted (`utf-8-sig`), as for every text input. `expect` (dict or list) checks the
    top-level type. Refused, because JSON leaves their meaning open: non-standard constants (NaN, Infinity), numbers
    that overflow a float (1e400), and repeated keys in an object (`FILE:LINE: duplicate key 'K'`). With
    `top_level_pairs=True` the top-level object comes back as its list of (key, value) pairs with repeats kept, so a
    reader can keep the first and count the others.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, expected a JSON file")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}:{_line_of_byte(path, error.start)}: not valid UTF-8 text") from None
    try:
        data = _top_level_pairs(text) if top_level_pairs else _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}:{error.colno}: malformed JSON: {error.msg}") from None
    except _DuplicateKey as error:
        raise ValueError(
            f"{path}:{_line_of_repeat(text, error.key)}: duplicate key {error.key!r} in an object"
        ) from None
    except _RefusedLiteral as error:
        match = re.search(r"(?<![\w.+-])" + re.escape(error.literal) + r"(?![\w.])", text)
        line = text.count("\n", 0, match.start()) + 1 if match else 1
        raise ValueError(f"{path}:{line}: {error}") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if expect is not None and not top_level_pairs and not isinstance(data, expect):
        raise ValueError(
            f"{path}: expected a JSON {_JSON_TYPE_NAMES.get(expect, expect.__name__)}, got {_json_type_name(data)}"
        )
    return data


_JSON_TYPE_NAMES = {dict: "object", list: "array"}


def _json_type_name(value: Any) -> str:
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _line_of_byte(path: Path, offset: int) -> int:
    with open(path, "rb") as handle:
        return handle.read(offset).count(b"\n") + 1


def _line_of_repeat(text: str, key: str) -> int:
    """Line of the second `"key":` in the text (where a repeated key is first seen)."""
    pattern = re.compile(re.escape(json.dumps(key, ensure_ascii=False)) + r"\s*:")
    matches = [match.start() for match in pattern.finditer(text)][:2]
    if len(matches) < 2:
        pattern = re.compile(re.escape(json.dumps(key)) + r"\s*:")
        matches = [match.start() for match in pattern.finditer(text)][:2]
    return text.count("\n", 0, matches[-1]) + 1 if matches else 1


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2) -> None:
    """Write JSON atomically (UTF-8, keys in insertion order)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def is_output_of(folder: str | os.PathLike, command: str, signature: Sequence[str] = ()) -> bool:
    """Whether `folder` was written by `lcrec <command>`: its output marker says so, or (folders written before
    the marker existed) it holds every file named in `signature`."""
    folder = Path(folder)
    marker = folder / OUTPUT_MARKER
    if marker.is_file():
        try:
            return json.loads(marker.read_text(encoding="utf-8")).get("command") == command
        except (ValueError, AttributeError, OSError):
            return False
    return bool(signature) and all((folder / name).exists() for name in signature)


def mark_output(folder: str | os.PathLike, command: str) -> None:
    """Record in `folder` that `lcrec <command>` wrote it (see `check_output_dir`)."""
    write_json(Path(folder) / OUTPUT_MARKER, {"command": command})


def check_output_dir(
    path: str | os.PathLike,
    command: str,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
    signature: Sequence[str] = (),
) -> Path:
    """Check, before any work, that `lcrec <command>` may write its output folder `path`; returns it.

    Refused with an `OutputFolderError` naming the reason: a folder that is, contains or lies inside one of
    `inputs` (files or folders the command reads; missing ones are ignored); the current folder or one holding it;
    an existing file; a place that cannot be written (under a file, no permission, read-only); a non-empty folder
    that is not a previous output of the same command (see `is_output_of`), unless `overwrite=True`, which lets its
    contents be replaced.
    """
    out = Path(path).expanduser()
    where = out.resolve()
    current = Path.cwd().resolve()
    if where == current or where in current.parents:
        raise OutputFolderError(
            f"{out}: is the current folder or holds it; the output folder is replaced whole, choose a new one (e.g. "
            f"{out / 'out'})"
        )
    for source in inputs:
        if source is None or not Path(source).expanduser().exists():
            continue
        source_path = Path(source).expanduser().resolve()
        if where == source_path:
            raise OutputFolderError(f"{out}: is the input {source}; choose another output folder")
        if source_path in where.parents:
            raise OutputFolderError(f"{out}: is inside the input {source}; choose an output folder outside it")
        if where in source_path.parents:
            raise OutputFolderError(
                f"{out}: holds the input {source} and would be replaced whole; choose another output folder"
            )
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputFolderError(f"{out}: exists and is not a folder; give the path of a folder to create")
    if out.is_dir() and any(out.iterdir()) and not is_output_of(out, command, signature):
        if not overwrite:
            raise OutputFolderError(
                f"{out}: folder is not empty and was not written by `lcrec {command}`; choose another folder, "
                "or pass --overwrite to replace its contents"
            )
        logger.warning("%s: replacing a folder not written by `lcrec %s` (overwrite requested)", out, command)
    _check_writable(out)
    return out


def check_output_file(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    command: str | None = None,
    is_ours: Callable[[Path], bool] | None = None,
    overwrite: bool = False,
) -> Path:
    """Check, before any work, that a command may write the single file `path` (replaced atomically); returns it.

    Refused with an `OutputFolderError` naming the reason: a folder at `path`, `path` equal to one of `inputs`,
    a place that cannot be written (under a file, no permission, read-only), or, when `is_ours` is given, an
    existing file it does not recognise as an earlier output of `lcrec COMMAND` (unless `overwrite`). Creates nothing.
    """
    out = Path(path).expanduser()
    if out.is_dir():
        raise OutputFolderError(f"{out}: is a folder; give the path of a file to write")
    if is_ours is not None and not overwrite and out.is_file() and not is_ours(out):
        raise OutputFolderError(
            f"{out}: exists and is not a file `lcrec {command}` wrote; pass --overwrite to replace it"
        )
    where = out.resolve()
    for source in inputs:
        if source is not None and Path(source).expanduser().exists() and Path(source).expanduser().resolve() == where:
            raise OutputFolderError(f"{out}: is the input {source}; choose another output file")
    _check_writable(out)
    return out


def make_readable(path: str | os.PathLike) -> None:
    """Give a file, or every file and folder of a tree, the permissions a plain open()/mkdir would have
    (0o666 / 0o777 minus the umask): some writers (safetensors, mkstemp) create 0600 files."""
    mask = _current_umask()
    root = Path(path)
    entries = [root] if not root.is_dir() else [root, *root.rglob("*")]
    for entry in entries:
        if not entry.is_symlink():
            os.chmod(entry, (0o777 if entry.is_dir() else 0o666) & ~mask)


def _check_writable(out: Path) -> None:
    """Create and remove a probe folder where `out` will be created (the nearest existing parent)."""
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputFolderError(f"{out}: cannot be created: {parent} is a file")
    try:
        probe = tempfile.mkdtemp(prefix=".lcrec-write-check-", dir=parent)
    except OSError as error:
        raise OutputFolderError(f"{out}: cannot be created in {parent}: {error.strerror or error}") from None
    os.rmdir(probe)


@contextmanager
def atomic_dir(path: str | os.PathLike, command: str | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` whole, else it is removed.

    Readers never see a half-written folder: the old one stays until the new one is complete, and is put back if
    the swap fails. With `command`, the folder gets the output marker of `lcrec <command>`. An existing file at
    `path` is never replaced. Call `check_output_dir` first to refuse unsafe targets before the work starts.
    """
    target = Path(path)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise OutputFolderError(f"{target}: exists and is not a folder; give the path of a folder to create")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp_dir
        if command is not None:
            mark_output(tmp_dir, command)
        os.chmod(tmp_dir, 0o777 & ~_current_umask())
        if target.exists():
            backup = target.with_name(f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            os.replace(target, backup)
            try:
                os.replace(tmp_dir, target)
            except BaseException:
                os.replace(backup, target)
                raise
            _remove_tree(backup)
        else:
            os.replace(tmp_dir, target)
    finally:
        if tmp_dir.exists():
            _remove_tree(tmp_dir)


def _remove_tree(folder: Path) -> None:
    """Delete a folder this module created; say where a remainder is left if that fails."""
    try:
        shutil.rmtree(folder)
    except OSError as error:
        logger.warning("could not remove the temporary folder %s (%s); delete it by hand", folder, error)


def save_with(path: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Run `writer(tmp_path)` and rename the result onto `path` (for writers that take a filename)."""
    with atomic_path(path) as tmp:
        writer(tmp)
