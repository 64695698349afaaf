"""Semantic item IDs: text embeddings, RQ-VAE with Sinkhorn uniform mapping, collision-free assignment.

`ItemIndex` and its token helpers import without torch; the rest loads on first use.
"""

from importlib import import_module
from typing import Any

from .item_index import ItemIndex, all_index_tokens, level_token, parse_index_tokens

_LAZY = {
    "AssignmentResult": "assignment",
    "assign_unique_codes": "assignment",
    "check_capacity": "assignment",
    "make_unique": "assignment",
    "IndexBuildResult": "builder",
    "add_items": "builder",
    "assign_new_items": "builder",
    "build_index": "builder",
    "check_index_covers_dataset": "coverage",
    "LCRecIndexImport": "released",
    "import_lcrec_index": "released",
    "load_lcrec_index": "released",
    "RQVAEConfig": "configuration_rqvae",
    "TextEmbedder": "embedding",
    "embed_items": "embedding",
    "RQVAE": "modeling_rqvae",
    "sinkhorn_assign": "sinkhorn",
    "sinkhorn_plan": "sinkhorn",
    "RQVAETrainingArguments": "training_rqvae",
    "train_rqvae": "training_rqvae",
}

__all__ = ["ItemIndex", "all_index_tokens", "level_token", "parse_index_tokens", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
