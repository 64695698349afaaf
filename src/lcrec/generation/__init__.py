"""Constrained decoding over semantic item IDs: the prefix trie and its beam-search logits processor."""

from .logits_process import SemanticIdLogitsProcessor
from .trie import SemanticIdTrie

__all__ = ["SemanticIdLogitsProcessor", "SemanticIdTrie"]
