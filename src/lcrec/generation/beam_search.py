"""Beam search over fixed-length semantic IDs: the tree-attention decoder, and the generate() path it must match.

Tree attention: each prompt is prefilled once (the opening tokens all prompts of a batch share, once for the
batch). At level t every user's live beams are appended to that user's row of the KV cache as K new positions,
with a 4D mask under which a beam token sees its prompt and its own ancestors only, and explicit position ids
(prompt length + t), so each beam computes exactly what it would in a cache of its own. The cache grows by K per
level and is never copied per beam or reordered. Candidates are the trie children of each beam (one gather per
level); a candidate's score is the beam's log-probability plus the token's log-probability under the softmax over
the full vocabulary, as in `generate()`; selection is the exact top K per user. After the last level one more step
adds log p(EOS), which `generate()` counts as well (`score_eos=False` skips it: models trained on whole item
sequences continue after an item rather than end). The output head runs only on the rows that need it (the last
prompt position, then the K new tokens per user), a chunk of rows at a time, so no (users x beams x vocabulary)
logits tensor is ever held.

`generate_beam_search` is the reference: transformers' beam search with `SemanticIdLogitsProcessor`, the prompt
prefilled once and its cache repeated per beam. Both return the same items in the same order (scores within
float rounding); it also serves models whose attention cannot take a custom 4D mask.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from transformers import DynamicCache, GenerationConfig, LogitsProcessorList, PreTrainedModel

from .logits_process import SemanticIdLogitsProcessor, generated_codes, inverse_token_tables
from .trie import SemanticIdTrie

# Attention implementations that apply a custom 4D float mask as given (flash / flex kernels take none).
TREE_ATTENTION_IMPLEMENTATIONS = frozenset({"eager", "sdpa"})
# Decoder families whose attention positions come from position_ids alone (rotary), checked against generate().
TREE_ATTENTION_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})
# generate() pads a user's beam set with copies of live beams scored about -1e9: anything below this is padding.
PADDING_SCORE = -1e8
# The output head runs on chunks of about this many logits (4 MiB in float32: the normaliser reads them from
# cache), and at least this many rows (so a large vocabulary's weight is streamed once per many rows).
HEAD_CHUNK_ELEMENTS = 1 << 20
HEAD_CHUNK_MIN_ROWS = 128


class BeamSearchResult(NamedTuple):
    """Per user and beam, best first: item id, sequence log-probability, and whether the beam is a real item."""

    items: torch.Tensor  # (users, beams) int64
    scores: torch.Tensor  # (users, beams) float32
    found: torch.Tensor  # (users, beams) bool


def tree_attention_unsupported(language_model: PreTrainedModel, kv_length: int) -> str | None:
    """Why `language_model` cannot decode with tree attention over `kv_length` cache positions, or None if it can."""
    config = language_model.config
    implementation = getattr(config, "_attn_implementation", None) or "eager"
    if implementation not in TREE_ATTENTION_IMPLEMENTATIONS:
        return f"attention implementation {implementation!r} takes no custom 4D mask"
    if config.model_type not in TREE_ATTENTION_MODEL_TYPES:
        verified = ", ".join(sorted(TREE_ATTENTION_MODEL_TYPES))
        return f"model type {config.model_type!r} is not one tree attention is verified for ({verified})"
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    sliding = "sliding_attention" in layer_types if layer_types else getattr(config, "use_sliding_window", True)
    if window is not None and sliding and window < kv_length:
        return f"its sliding window ({window}) is shorter than the decoding cache ({kv_length} positions)"
    return None


def _token_log_probs(
    head: torch.nn.Module, hidden: torch.Tensor, tokens: torch.Tensor, vocab_size: int
) -> torch.Tensor:
    """log p(token) of `tokens` (users, rows, width) at `hidden` (users, rows, dim), softmax over the whole vocabulary.

    Logits are made and normalised a chunk of rows at a time (float32, as generate() does): the full
    (rows x vocabulary) matrix never exists, so memory stays flat and the normaliser streams from cache.
    """
    users, rows, width = tokens.shape
    hidden, tokens = hidden.reshape(users * rows, -1), tokens.reshape(users * rows, width)
    step = max(HEAD_CHUNK_MIN_ROWS, HEAD_CHUNK_ELEMENTS // vocab_size)
    out = torch.empty(tokens.shape, dtype=torch.float32, device=tokens.device)
    for start in range(0, len(tokens), step):
        logits = head(hidden[start : start + step]).float()
        out[start : start + step] = logits.gather(1, tokens[start : start + step]) - torch.logsumexp(
            logits, dim=1, keepdim=True
        )
    return out.view(users, rows, width)


def _shared_prefix_length(input_ids: torch.Tensor, lengths: torch.Tensor) -> int:
    """Tokens every (right-padded) prompt starts with, leaving each prompt at least its last token of its own."""
    same = (input_ids == input_ids[:1]).all(dim=0)
    limit = int(lengths.min()) - 1
    differs = torch.nonzero(~same[:limit])
    return int(differs[0]) if len(differs) else max(limit, 0)


def _prefill(
    backbone, language_model, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[DynamicCache, torch.Tensor]:
    """The prompts' KV cache, and the hidden state of each prompt's last token (users, 1, dim).

    Prompts of one template share their opening tokens: that part is computed once and its keys and values
    broadcast to every user, then each user's remaining tokens attend to it (right padding, so the shared part
    sits at the same positions in every row).
    """
    users, length = input_ids.shape
    device, dtype = input_ids.device, language_model.dtype
    shared = _shared_prefix_length(input_ids, attention_mask.sum(dim=-1))
    cache = DynamicCache(config=language_model.config)
    if shared:
        backbone(
            input_ids=input_ids[:1, :shared],
            position_ids=torch.arange(shared, device=device).unsqueeze(0),
            cache=cache,
            use_cache=True,
        )
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys.expand(users, -1, -1, -1), layer.values.expand(users, -1, -1, -1)
    rest = length - shared
    causal = torch.ones((rest, rest), dtype=torch.bool, device=device).tril()
    visible = torch.cat(
        [
            torch.ones((users, rest, shared), dtype=torch.bool, device=device),
            causal & attention_mask[:, shared:].bool().unsqueeze(1),
        ],
        dim=-1,
    )
    mask = (
        torch.zeros(visible.shape, dtype=dtype, device=device)
        .masked_fill_(~visible, torch.finfo(dtype).min)
        .unsqueeze(1)
    )
    positions = torch.arange(shared, length, device=device).expand(users, -1)
    hidden = backbone(
        input_ids=input_ids[:, shared:], attention_mask=mask, position_ids=positions, cache=cache, use_cache=True
    ).last_hidden_state
    last = (attention_mask.sum(dim=-1) - 1 - shared).view(users, 1, 1).expand(-1, 1, hidden.shape[-1])
    return cache, hidden.gather(1, last)


def _tree_mask(prompt_mask: torch.Tensor, ancestors: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(users, 1, beams, prompt + levels x beams) additive mask: each beam sees its prompt and its ancestors."""
    users, beams, levels = ancestors.shape
    tree = torch.nn.functional.one_hot(ancestors, beams).reshape(users, beams, levels * beams).bool()
    visible = torch.cat([prompt_mask.bool().unsqueeze(1).expand(users, beams, -1), tree], dim=-1)
    mask = torch.zeros(visible.shape, dtype=dtype, device=visible.device)
    return mask.masked_fill_(~visible, torch.finfo(dtype).min).unsqueeze(1)


@torch.no_grad()
def tree_beam_search(
    language_model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    trie: SemanticIdTrie,
    token_ids: torch.Tensor,
    eos_token_id: int,
    num_beams: int,
    score_eos: bool = True,
) -> BeamSearchResult:
    """Exact constrained beam search with tree attention over right-padded prompts (see the module docstring).

    `token_ids[level, code]` is the vocabulary id of each index token. The model must be in eval mode.
    `score_eos=False` ranks items on their index tokens alone (no final EOS step: `sequence`-format models).
    """
    users = input_ids.shape[0]
    device = input_ids.device
    backbone, head = language_model.base_model, language_model.get_output_embeddings()
    vocab_size = language_model.config.vocab_size
    token_ids = token_ids.to(device)
    arange_beams = torch.arange(num_beams, device=device)
    lengths = attention_mask.sum(dim=-1, keepdim=True)
    cache, hidden = _prefill(backbone, language_model, input_ids, attention_mask)
    nodes = torch.zeros((users, 1), dtype=torch.int64, device=device)
    scores = torch.zeros((users, 1), dtype=torch.float32, device=device)
    ancestors = torch.zeros((users, num_beams, 0), dtype=torch.int64, device=device)
    for level in range(trie.levels):
        child, codes, valid = trie.children(level, nodes)  # (users, rows, width)
        last = level == trie.levels - 1
        rows, width = child.shape[1:]
        candidates = scores.unsqueeze(-1) + _token_log_probs(head, hidden, token_ids[level][codes], vocab_size)
        candidates = candidates.masked_fill(~valid, float("-inf")).flatten(1)
        if candidates.shape[1] < num_beams:  # fewer candidates than beams: the rest stay dead
            candidates = torch.nn.functional.pad(candidates, (0, num_beams - candidates.shape[1]), value=float("-inf"))
        order = torch.sort(candidates, dim=1, descending=True, stable=True).indices[:, :num_beams]
        scores = candidates.gather(1, order)
        order = order.clamp(max=rows * width - 1)
        parents = order // width
        nodes = child.flatten(1).gather(1, order)
        chosen = codes.flatten(1).gather(1, order)
        if last and not score_eos:  # the last token's own logits are never needed
            break
        ancestors = torch.cat(
            [
                ancestors.gather(1, parents.unsqueeze(-1).expand(-1, -1, level)),
                arange_beams.expand(users, -1).unsqueeze(-1),
            ],
            -1,
        )
        hidden = backbone(
            input_ids=token_ids[level][chosen],
            attention_mask=_tree_mask(attention_mask, ancestors, language_model.dtype),
            position_ids=(lengths + level).expand(-1, num_beams),
            cache=cache,
            use_cache=True,
        ).last_hidden_state
    final = scores
    if score_eos:
        eos = torch.full((users, num_beams, 1), eos_token_id, dtype=torch.int64, device=device)
        final = scores + _token_log_probs(head, hidden, eos, vocab_size).squeeze(-1)
    order = torch.sort(final, dim=1, descending=True, stable=True).indices
    final = final.gather(1, order)
    return BeamSearchResult(trie.items_of(nodes.gather(1, order)), final, torch.isfinite(final))


@torch.no_grad()
def generate_beam_search(
    language_model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    trie: SemanticIdTrie,
    token_ids: torch.Tensor,
    eos_token_id: int,
    num_beams: int,
    score_eos: bool = True,
) -> BeamSearchResult:
    """The reference: `generate()` beam search with the trie processor over left-padded prompts (`score_eos`: as
    in `tree_beam_search`).

    Each prompt but its last token is prefilled once and the cache repeated per beam (generate() would run the
    prompt once per beam). Swaps in a bare GenerationConfig for the call (nothing a checkpoint ships leaks in):
    run it under the model's recommendation lock. At least two beams (transformers' beam search needs them).
    """
    levels = trie.levels
    beams = max(2, num_beams)
    config = GenerationConfig(
        do_sample=False,
        num_beams=beams,
        num_return_sequences=beams,
        max_new_tokens=levels + int(score_eos),
        min_new_tokens=0,
        early_stopping=True,
        length_penalty=0.0,
        output_scores=True,
        return_dict_in_generate=True,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,  # fills a finished beam's remaining steps; never part of an item
    )
    prompt_length = input_ids.shape[1]
    processor = SemanticIdLogitsProcessor(trie, token_ids, eos_token_id, prompt_length)
    cache = None
    if prompt_length > 1:
        cache = DynamicCache(config=language_model.config)
        language_model(
            input_ids=input_ids[:, :-1],
            attention_mask=attention_mask[:, :-1],
            position_ids=(attention_mask.cumsum(-1) - 1).clamp(min=0)[:, :-1],
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        cache.batch_repeat_interleave(beams)
    saved = language_model.generation_config
    language_model.generation_config = GenerationConfig()
    try:
        output = language_model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            cache=cache,
            generation_config=config,
            logits_processor=LogitsProcessorList([processor]),
        )
    finally:
        language_model.generation_config = saved
    generated = output.sequences[:, prompt_length : prompt_length + levels]
    code_of, level_of = (table.to(generated.device) for table in inverse_token_tables(token_ids))
    codes = generated_codes(generated, code_of, level_of)
    items, found = trie.item_ids(codes)
    scores = output.sequences_scores.float().view(-1, beams)
    found = found.view(-1, beams) & (scores > PADDING_SCORE)
    order = torch.sort(scores.masked_fill(~found, float("-inf")), dim=1, descending=True, stable=True).indices
    return BeamSearchResult(items.view(-1, beams).gather(1, order), scores.gather(1, order), found.gather(1, order))
