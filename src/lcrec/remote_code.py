"""Ship LC-Rec's code beside a saved model so `trust_remote_code=True` loads it where `lcrec` is not installed.

transformers copies remote code as one flat folder and resolves only `from .module import` siblings, so the
bundle flattens our package imports (`from .generation.trie import` -> `from .trie import`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .io_utils import write_text

# flat file name in the saved folder -> its path inside the lcrec package
BUNDLE_FILES = {
    "configuration_lcrec.py": "configuration_lcrec.py",
    "modeling_lcrec.py": "modeling_lcrec.py",
    "tokenization_lcrec.py": "tokenization_lcrec.py",
    "remote_code.py": "remote_code.py",
    "item_index.py": "indexing/item_index.py",
    "io_utils.py": "io_utils.py",
    "templates.py": "tasks/templates.py",
    "trie.py": "generation/trie.py",
    "logits_process.py": "generation/logits_process.py",
}
MODEL_AUTO_MAP = {
    "AutoConfig": "configuration_lcrec.LCRecConfig",
    "AutoModel": "modeling_lcrec.LCRecForCausalLM",
    "AutoModelForCausalLM": "modeling_lcrec.LCRecForCausalLM",
}
TOKENIZER_AUTO_MAP = {"AutoTokenizer": [None, "tokenization_lcrec.LCRecTokenizer"]}
_PACKAGE_IMPORT = re.compile(r"^(\s*from\s+)\.+(?:\w+\.)*(\w+)(\s+import\b)", flags=re.MULTILINE)


def flatten_imports(source: str) -> str:
    """Rewrite relative imports to the flat layout: `from ..a.b import x` -> `from .b import x`."""
    return _PACKAGE_IMPORT.sub(r"\1.\2\3", source)


def is_packaged() -> bool:
    """True when running from the installed `lcrec` package, False when loaded as flat remote code."""
    return (Path(__file__).parent / "generation" / "trie.py").is_file()


def write_remote_code(folder: str | os.PathLike) -> list[Path]:
    """Write the flat code bundle into `folder` (atomically, file by file) and return the written paths."""
    root = Path(__file__).parent
    written = []
    for flat_name, package_path in BUNDLE_FILES.items():
        source = root / package_path if (root / package_path).is_file() else root / flat_name
        target = Path(folder) / flat_name
        write_text(target, flatten_imports(source.read_text(encoding="utf-8")))
        written.append(target)
    return written
