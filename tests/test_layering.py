"""The package's dependencies point one way: no two parts of `lcrec` (subpackages, top-level modules) import
each other (README: How the code is laid out). Imports made inside functions count too; the check reads the
source and imports nothing."""

import ast
from pathlib import Path

import lcrec

PACKAGE = Path(lcrec.__file__).parent


def _unit(module: str) -> str:
    """`lcrec.training.sft` -> `training` (a subpackage is one unit); a top-level module is its own unit
    (`lcrec.io_utils` -> `io_utils`); `lcrec` itself -> `lcrec`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__init__" else "lcrec"


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the lcrec modules (or packages) `path` imports, relative imports resolved."""
    relative = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = list(relative if path.name == "__init__.py" else relative[:-1])
    if path.name == "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if target.startswith("lcrec"):
                # `from . import x` / `from lcrec import x` may name a subpackage
                found.update(f"{target}.{alias.name}" if target.count(".") == 0 else target for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("lcrec."))
    return found


def test_no_two_parts_of_the_package_import_each_other():
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _unit(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for module in _imported_modules(path):
            target = _unit(module)
            if target != source:
                edges.setdefault((source, target), []).append(f"{path.relative_to(PACKAGE)} -> {module}")
    cycles = [f"{a} <-> {b}: {edges[(a, b)][0]}; {edges[(b, a)][0]}" for (a, b) in edges if (b, a) in edges and a < b]
    assert not cycles, "parts importing each other: " + " | ".join(cycles)
    assert ("training", "cards") in edges and ("hub", "cards") in edges  # the check sees imports at all


def test_constants_written_on_both_sides_of_a_layer_stay_equal():
    from lcrec.data.raw import TEXT_FIELDS
    from lcrec.indexing.embedding import TEXT_FIELDS as INDEXED_TEXT_FIELDS

    assert INDEXED_TEXT_FIELDS == TEXT_FIELDS
