"""Histories in, ranked catalogue items out: `recommend_items` (what `LCRecForCausalLM.recommend()` runs) and the
`item-recommendation` pipeline task around it.

`recommend_items` checks the arguments, renders the seqrec prompts, batches users by prompt length (each batch is
one prefill and one decoding loop), decodes with tree attention (or the generate() reference, for models that
cannot take a 4D mask), and turns beams into (item id, log-probability) lists. Decoding runs under a per-model
lock in eval mode, so concurrent callers (the server's worker, threads) never see each other's mode switches.

`import lcrec` registers the pipeline task. Saved model folders also declare it (`custom_pipelines` in
config.json), so `pipeline("item-recommendation", model=REPO, trust_remote_code=True)` works where lcrec is not
installed: the class lives in this module because the model's remote code always includes it.
"""

from __future__ import annotations

import logging
import numbers
import threading
import weakref
from collections.abc import Sequence
from contextlib import contextmanager

import torch
from transformers import AutoModelForCausalLM, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from ..configuration_lcrec import DEFAULT_NUM_BEAMS, RECOMMENDATION_TASK
from ..prompts import (
    DEFAULT_SEQREC_TEMPLATE,
    INSTRUCTION_FORMAT,
    SEQREC_FORMATS,
    SEQUENCE_FORMAT,
    check_histories,
    is_single_history,
    recent_items,
    seqrec_prompt,
    sequence_prompt,
)
from .beam_search import BeamSearchResult, generate_beam_search, tree_attention_unsupported, tree_beam_search
from .trie import SemanticIdTrie

logger = logging.getLogger(__name__)

DECODERS = ("auto", "tree", "generate")
# Users per decoding batch when the caller leaves it open (see _auto_batch_size).
MAX_AUTO_BATCH = 256
KV_BUDGET_BYTES = 1 << 30

_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
_TRIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FALLBACK_LOGGED: set[str] = set()


def _integer(name: str, value: object, minimum: int = 1) -> int:
    """`value` as an int >= minimum; TypeError for bools, floats and strings (never truncated), ValueError below."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def resolve_num_beams(model, num_beams: int | None, top_k: int) -> int:
    """The beam count for a top-`top_k` ranking: `num_beams` as given (at least `top_k`), or when None the model's
    `generation_config.num_beams` (DEFAULT_NUM_BEAMS = 20 for models lcrec builds; also when a folder saved without
    it reports transformers' default of 1), raised to `top_k` if smaller. The same default everywhere means a
    user's top 5 is the top 5 of the evaluated ranking.
    """
    top_k = _integer("top_k", top_k)
    if num_beams is None:
        configured = getattr(getattr(model, "generation_config", None), "num_beams", None)
        default = configured if isinstance(configured, int) and configured > 1 else DEFAULT_NUM_BEAMS
        return max(default, top_k)
    num_beams = _integer("num_beams", num_beams)
    if num_beams < top_k:
        raise ValueError(
            f"num_beams ({num_beams}) must be at least top_k ({top_k}): beam search returns at most num_beams items"
        )
    return num_beams


def _model_lock(model) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.Lock()
        return lock


@contextmanager
def _decoding_mode(model):
    """Hold the model's lock, in eval mode (no dropout), restoring the training flag afterwards."""
    with _model_lock(model):
        was_training = model.training
        model.eval()
        try:
            yield
        finally:
            model.train(was_training)


def catalogue_trie(tokenizer, device: torch.device) -> SemanticIdTrie:
    """The prefix trie of the tokenizer's current item index on `device` (built once per index and device)."""
    index = tokenizer.item_index
    cached = _TRIES.get(tokenizer)
    if cached is None or cached[0] is not index:
        cached = _TRIES[tokenizer] = (index, {})
    tries = cached[1]
    if device not in tries:
        tries[device] = SemanticIdTrie.from_index(index).to(device)
    return tries[device]


def _auto_batch_size(language_model, num_beams: int, levels: int, prompt_length: int) -> int:
    """Users per batch whose KV cache (prompt + every level's beams, with room for the per-step concatenation)
    fits KV_BUDGET_BYTES, at most MAX_AUTO_BATCH (past that, larger batches stopped paying off on CPU)."""
    config = language_model.config
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    positions = prompt_length + levels * num_beams
    per_user = 3 * config.num_hidden_layers * 2 * heads * head_dim * positions * language_model.dtype.itemsize
    return max(1, min(MAX_AUTO_BATCH, KV_BUDGET_BYTES // per_user))


def _log_fallback(reason: str) -> None:
    if reason not in _FALLBACK_LOGGED:
        _FALLBACK_LOGGED.add(reason)
        logger.warning("recommend() decodes with generate() instead of tree attention: %s", reason)


def _choose_decoder(decoder: str, language_model, kv_length: int) -> str:
    if decoder == "generate":
        return decoder
    reason = tree_attention_unsupported(language_model, kv_length)
    if reason is None:
        return "tree"
    if decoder == "tree":
        raise ValueError(f"tree-attention decoding is not available for this model: {reason}")
    _log_fallback(reason)
    return "generate"


def decode_prompts(
    model,
    tokenizer,
    prompts: Sequence[str],
    num_beams: int,
    batch_size: int | None = None,
    decoder: str = "auto",
    score_eos: bool = True,
) -> BeamSearchResult:
    """Beam search for every prompt (rows in input order). Prompts are batched by token length; each batch is one
    prefill and one decoding loop of `batch_size` users (default: as many as the KV-cache budget allows).
    `score_eos`: an item's score includes log p(EOS) after its last token (False: its index tokens alone).
    """
    language_model = model.language_model
    device = model.device
    trie = catalogue_trie(tokenizer, device)
    token_ids = tokenizer.index_token_ids.to(device)
    encoded = tokenizer(list(prompts))["input_ids"]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))  # similar lengths share a batch
    longest = max(len(ids) for ids in encoded)
    size = batch_size or _auto_batch_size(language_model, num_beams, trie.levels, longest)
    parts = []
    with _decoding_mode(model):
        for start in range(0, len(order), size):
            batch = {"input_ids": [encoded[i] for i in order[start : start + size]]}
            kv_length = max(len(ids) for ids in batch["input_ids"]) + trie.levels * num_beams
            tree = _choose_decoder(decoder, language_model, kv_length) == "tree"
            # tree attention takes right padding (the shared opening tokens line up), generate() left padding
            inputs = tokenizer.pad(batch, padding_side="right" if tree else "left", return_tensors="pt").to(device)
            search = tree_beam_search if tree else generate_beam_search
            arguments = (inputs["input_ids"], inputs["attention_mask"], trie, token_ids, tokenizer.eos_token_id)
            parts.append(search(language_model, *arguments, num_beams, score_eos=score_eos))
    inverse = torch.argsort(torch.tensor(order, device=device))
    # generate() returns at least two beams per user; keep `num_beams` columns so batches concatenate
    return BeamSearchResult(
        *(torch.cat([part[field][:, :num_beams] for part in parts]).index_select(0, inverse) for field in range(3))
    )


def _ranked(result: BeamSearchResult, top_k: int) -> list[list[tuple[int, float]]]:
    """Per prompt, its first `top_k` found beams as (item id, score)."""
    items, scores, found = (tensor.cpu() for tensor in result)
    return [
        list(zip(items[row][found[row]][:top_k].tolist(), scores[row][found[row]][:top_k].tolist()))
        for row in range(len(items))
    ]


def render_prompts(
    config,
    item_index,
    histories: Sequence[Sequence[int]],
    template: int = DEFAULT_SEQREC_TEMPLATE,
    max_history: int | None = None,
) -> list[str]:
    """The seqrec prompt of each (checked) history, as recommend() feeds them: `config.seqrec_templates[template]`
    over the most recent `max_history` items (default `config.max_history`, the window training used), in the
    model's `config.seqrec_format` (an instruction with the history inside, or the sequence format)."""
    templates = config.seqrec_templates or []
    if isinstance(template, bool) or not isinstance(template, numbers.Integral) or not 0 <= template < len(templates):
        raise ValueError(f"template {template!r} does not exist: this model has {len(templates)} seqrec templates")
    max_history = config.max_history if max_history is None else _integer("max_history", max_history)
    prompt_format = seqrec_format_of(config)
    instruction = templates[template]
    recent = ([item_index.tokens(item) for item in recent_items(history, max_history)] for history in histories)
    if prompt_format == SEQUENCE_FORMAT:
        return [sequence_prompt(tokens, max_history, instruction) for tokens in recent]
    return [seqrec_prompt(instruction, tokens, max_history) for tokens in recent]


def seqrec_format_of(config) -> str:
    """The model's `seqrec_format` (configs saved before it existed ask in the instruction format)."""
    prompt_format = getattr(config, "seqrec_format", None) or INSTRUCTION_FORMAT
    if prompt_format not in SEQREC_FORMATS:
        raise ValueError(f"config.seqrec_format must be one of {SEQREC_FORMATS}, got {prompt_format!r}")
    return prompt_format


def recommend_items(
    model,
    tokenizer,
    histories,
    top_k: int = 10,
    num_beams: int | None = None,
    batch_size: int | None = None,
    template: int = DEFAULT_SEQREC_TEMPLATE,
    max_history: int | None = None,
    skip_unknown: bool = False,
    decoder: str = "auto",
) -> list[list[tuple[int, float]]]:
    """Top-`top_k` (item_id, log-probability) per history, best first; see `LCRecForCausalLM.recommend`.

    `decoder`: "auto" (tree attention where the model supports it, else generate()), "tree" or "generate" (the
    reference path, kept for tests and benchmarks).
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    num_beams = resolve_num_beams(model, num_beams, top_k)
    top_k = int(top_k)
    if batch_size is not None:
        batch_size = _integer("batch_size", batch_size)
    histories = check_histories(histories, tokenizer.item_index, skip_unknown=skip_unknown)
    prompts = render_prompts(model.config, tokenizer.item_index, histories, template, max_history)
    if not histories:
        return []
    catalogue = catalogue_trie(tokenizer, model.device).num_sequences
    if top_k > catalogue:
        logger.warning(
            "top_k=%d exceeds the catalogue's %d distinct items: returning all %d", top_k, catalogue, catalogue
        )
    # More beams than items decode the same ranking (every prefix already survives) at more cost.
    num_beams = min(num_beams, catalogue)
    # A sequence-format model continues the sequence after an item instead of ending it: no EOS term in its scores.
    score_eos = seqrec_format_of(model.config) != SEQUENCE_FORMAT
    return _ranked(decode_prompts(model, tokenizer, prompts, num_beams, batch_size, decoder, score_eos), top_k)


class ItemRecommendationPipeline(Pipeline):
    """Wraps `LCRecForCausalLM.recommend` as a transformers pipeline task.

    `pipe([1, 2, 3], top_k=5)` returns one ranked list; `pipe([[1, 2], [3]])` one list per history, decoded
    together (one prefill and one decoding loop per batch). Each entry is `{"item_id", "score", "title", "index"}`.
    Parameters: top_k, num_beams (default: the model's generation config), template, skip_unknown. Inputs are
    checked by `recommend()` (`lcrec.prompts.check_histories`).
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False

    def _sanitize_parameters(self, top_k=None, num_beams=None, template=None, skip_unknown=None, **kwargs):
        forward = {"top_k": top_k, "num_beams": num_beams, "template": template, "skip_unknown": skip_unknown}
        return {}, {key: value for key, value in forward.items() if value is not None}, {}

    def __call__(self, histories, **kwargs):
        single = is_single_history(histories)
        # One pipeline input holding every history: the model ranks them in shared batches.
        results = super().__call__({"histories": histories}, **kwargs)
        return results[0] if single else results

    def preprocess(self, inputs: dict) -> dict:
        return inputs

    def _forward(self, model_inputs: dict, **recommend_kwargs) -> dict:
        return {
            "ranked": self.model.recommend(model_inputs["histories"], tokenizer=self.tokenizer, **recommend_kwargs)
        }

    def postprocess(self, model_outputs: dict) -> list[list[dict]]:
        tokenizer = self.tokenizer
        return [
            [
                {"item_id": item, "score": score, "title": tokenizer.title(item), "index": tokenizer.item_tokens(item)}
                for item, score in ranked
            ]
            for ranked in model_outputs["ranked"]
        ]


def register_pipeline() -> None:
    """Register the task with transformers (idempotent); `import lcrec` calls it."""
    if RECOMMENDATION_TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(
            RECOMMENDATION_TASK, pipeline_class=ItemRecommendationPipeline, pt_model=AutoModelForCausalLM
        )


__all__ = [
    "DECODERS",
    "ItemRecommendationPipeline",
    "catalogue_trie",
    "decode_prompts",
    "recommend_items",
    "register_pipeline",
    "render_prompts",
    "resolve_num_beams",
    "seqrec_format_of",
]
