"""Ship LC-Rec's code beside every saved model so `trust_remote_code=True` loads it where lcrec is not installed.

The bundle is computed, not listed: the config, model, tokenizer and pipeline modules plus every lcrec module
they import (relative imports, followed transitively). transformers loads remote code as one flat folder, so
each bundled file keeps its base name and its relative imports are rewritten to flat siblings
(`from ..prompts import x` -> `from .prompts import x`), with the syntax tree telling exactly which lines those are.
A bundled module may import only modules (not packages) of lcrec, with unique base names; anything else is an error
here rather than a folder that fails to load elsewhere.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from .io_utils import write_text

_ROOT = Path(__file__).parent
# Package paths of the modules transformers loads by name (auto_map, custom_pipelines).
ENTRY_MODULES = (
    "configuration_lcrec.py",
    "modeling_lcrec.py",
    "tokenization_lcrec.py",
    "generation/recommendation.py",
)


def is_packaged() -> bool:
    """True when running from the installed `lcrec` package, False when loaded as flat remote code."""
    return (_ROOT / ENTRY_MODULES[-1]).is_file()


def _relative_imports(path: Path, tree: ast.Module) -> list[tuple[ast.ImportFrom, Path]]:
    """Each `from .x import ...` of a module with the file it names (resolved from the module's folder)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
        if node.module is None:
            raise ValueError(
                f"{path.name}: `from {'.' * node.level} import ...` in a bundled module; import from a module"
            )
        target = base.joinpath(*node.module.split(".")).with_suffix(".py")
        if not target.is_file():
            raise ValueError(
                f"{path.name}: `from {'.' * node.level}{node.module} import` names no module file; "
                "import from the module itself"
            )
        found.append((node, target))
    return found


def bundle_sources() -> dict[str, str]:
    """Flat file name -> source with flat relative imports, for the entry modules and everything they import."""
    entries = [_ROOT / path if is_packaged() else _ROOT / Path(path).name for path in ENTRY_MODULES]
    sources: dict[str, str] = {}
    origins: dict[str, Path] = {}
    pending = list(entries)
    while pending:
        path = pending.pop()
        if path.name in origins:
            if origins[path.name] != path:
                raise ValueError(
                    f"two bundled modules share the file name {path.name}: {origins[path.name]} and {path}"
                )
            continue
        origins[path.name] = path
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines(keepends=True)
        imports = _relative_imports(path, ast.parse(source))
        # Rewrite bottom-up so earlier line numbers stay valid.
        for node, target in sorted(imports, key=lambda pair: pair[0].lineno, reverse=True):
            first, last = node.lineno - 1, node.end_lineno - 1
            text = "".join(lines[first : last + 1])
            tail = text[node.col_offset :].split(" import ", 1)[1]
            lines[first : last + 1] = [text[: node.col_offset] + f"from .{target.stem} import " + tail]
            pending.append(target)
        sources[path.name] = "".join(lines)
    return sources


def write_remote_code(folder: str | os.PathLike) -> list[Path]:
    """Write the flat code bundle into `folder` (atomically, file by file) and return the written paths."""
    written = []
    for name, source in sorted(bundle_sources().items()):
        target = Path(folder) / name
        write_text(target, source)
        written.append(target)
    return written
