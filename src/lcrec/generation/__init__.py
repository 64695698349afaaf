"""Constrained decoding over semantic item IDs: the trie, the tree-attention beam search (and its generate()
reference), and recommending: `recommend_items` and the `item-recommendation` pipeline."""

from ..configuration_lcrec import default_generation_config
from .beam_search import BeamSearchResult, generate_beam_search, tree_beam_search
from .logits_process import SemanticIdLogitsProcessor
from .recommendation import ItemRecommendationPipeline, recommend_items, render_prompts, resolve_num_beams
from .trie import SemanticIdTrie

__all__ = [
    "BeamSearchResult",
    "ItemRecommendationPipeline",
    "SemanticIdLogitsProcessor",
    "SemanticIdTrie",
    "default_generation_config",
    "generate_beam_search",
    "recommend_items",
    "render_prompts",
    "resolve_num_beams",
    "tree_beam_search",
]
