"""Semantic item IDs: text embeddings, RQ-VAE with Sinkhorn uniform mapping, collision-free assignment."""

from .item_index import ItemIndex, all_index_tokens, level_token, parse_index_tokens

__all__ = ["ItemIndex", "all_index_tokens", "level_token", "parse_index_tokens"]
