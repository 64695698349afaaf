"""Tree-attention decoding against the generate() reference: same items, same order, scores within 1e-4.

Models: the quickstart size (0.7M-parameter Llama, a 4 x 256 index of 1,349 items) and tiny random Llama, Qwen2,
Qwen3 and Mistral decoders with a trained byte-level BPE, in eager and sdpa attention; batches of mixed history
lengths, catalogues smaller than the beam count, 1- and 5-level indices, and an adversarial head.
"""

import logging

import numpy as np
import pytest
import torch
from conftest import make_item_index, tiny_base_config
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, MistralConfig, Qwen3Config

from lcrec.generation import recommend_items
from lcrec.generation.beam_search import tree_attention_unsupported
from lcrec.indexing import ItemIndex
from lcrec.modeling_lcrec import LCRecForCausalLM
from lcrec.tokenization_lcrec import LCRecTokenizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_index(num_items: int, levels: int, codebook: int, seed: int = 0) -> ItemIndex:
    """`num_items` distinct random code tuples."""
    rng = np.random.default_rng(seed)
    keys = rng.choice(codebook**levels, size=num_items, replace=False)
    codes = np.stack([(keys // codebook ** (levels - 1 - level)) % codebook for level in range(levels)], axis=1)
    return ItemIndex(list(range(num_items)), codes, [codebook] * levels)


def mixed_histories(num_items: int, users: int, longest: int, seed: int = 0) -> list[list[int]]:
    """Histories of 1..longest items (some longer than max_history), so a batch pads prompts to different lengths."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, num_items, size=int(rng.integers(1, longest + 1))).tolist() for _ in range(users)]


def build(
    base_tokenizer, index: ItemIndex, config, attention: str = "sdpa", seed: int = 0, vocab_size: int | None = None
) -> LCRecForCausalLM:
    """A random base of `config` (vocabulary: the base tokenizer's, or `vocab_size` rows) wrapped for `index`."""
    torch.manual_seed(seed)
    config.vocab_size = vocab_size or len(base_tokenizer)
    base = AutoModelForCausalLM.from_config(config, attn_implementation=attention)
    return LCRecForCausalLM.from_base(base, LCRecTokenizer.from_base(base_tokenizer, index), seed=seed).eval()


def assert_same_rankings(
    model: LCRecForCausalLM, histories, top_k: int, num_beams: int | None = None, **kwargs
) -> list:
    """Tree attention and generate() rank the same items in the same order, scores within 1e-4; returns the tree's."""
    tokenizer = model.tokenizer
    tree = recommend_items(model, tokenizer, histories, top_k=top_k, num_beams=num_beams, decoder="tree", **kwargs)
    reference = recommend_items(
        model, tokenizer, histories, top_k=top_k, num_beams=num_beams, decoder="generate", **kwargs
    )
    catalogue = set(tokenizer.item_index.item_ids)
    assert len(tree) == len(reference) == len(histories)
    for user, (ours, theirs) in enumerate(zip(tree, reference)):
        items = [item for item, _ in ours]
        assert items == [item for item, _ in theirs], f"user {user}"
        assert [score for _, score in ours] == pytest.approx([score for _, score in theirs], abs=1e-4), f"user {user}"
        assert len(set(items)) == len(items) and set(items) <= catalogue
    return tree


def test_quickstart_size_model_matches_generate(base_tokenizer):
    index = random_index(1349, 4, 256)
    config = LlamaConfig(
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        tie_word_embeddings=True,
    )
    model = build(base_tokenizer, index, config, vocab_size=2048)  # the preset: 1,024 text + 1,024 index tokens
    model.config.max_history = 10  # the ml-100k-cpu preset
    assert 0.6e6 < model.num_parameters() < 0.8e6
    ranked = assert_same_rankings(model, mixed_histories(1349, 12, longest=14), top_k=20)
    assert all(len(row) == 20 for row in ranked)


ARCHITECTURES = {
    "llama": lambda: tiny_base_config("llama", tie=False),
    "qwen2": lambda: tiny_base_config("qwen2", tie=True),
    "qwen3": lambda: Qwen3Config(**_tiny_kwargs(), head_dim=8),
    "mistral": lambda: MistralConfig(**_tiny_kwargs(), sliding_window=4096),
}


def _tiny_kwargs() -> dict:
    return dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
    )


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_tiny_decoders_match_generate_on_mixed_history_lengths(arch, attention, base_tokenizer, item_index):
    model = build(base_tokenizer, item_index, ARCHITECTURES[arch](), attention)
    assert tree_attention_unsupported(model.language_model, 400) is None
    assert_same_rankings(model, mixed_histories(40, 6, longest=30, seed=1), top_k=10, num_beams=12)


@pytest.mark.parametrize("num_items,levels,codebook", [(5, 3, 8), (30, 1, 32), (60, 5, 4)])
def test_small_catalogues_and_one_or_five_levels_match_generate(num_items, levels, codebook, base_tokenizer):
    index = random_index(num_items, levels, codebook, seed=levels)
    model = build(base_tokenizer, index, tiny_base_config("llama", tie=True), seed=levels)
    ranked = assert_same_rankings(model, mixed_histories(num_items, 4, longest=8, seed=2), top_k=20, num_beams=20)
    assert all(len(row) == min(20, num_items) for row in ranked)  # 5 items: every item, once


def test_a_head_that_prefers_invalid_tokens_never_yields_invalid_or_repeated_items(base_tokenizer, item_index):
    """All probability mass on tokens no item allows (text, EOS early, codes of unused prefixes): still valid items."""
    model = build(base_tokenizer, item_index, tiny_base_config("llama", tie=False))
    tokenizer = model.tokenizer
    head = model.get_output_embeddings()
    bias = torch.full((head.out_features,), 30.0)  # every token is favoured ...
    used = {(level, int(code)) for row in item_index.codes for level, code in enumerate(row)}
    for level, code in used:  # ... except the codes catalogue items actually use
        bias[int(tokenizer.index_token_ids[level, code])] = 0.0
    replacement = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        replacement.weight.copy_(head.weight)
        replacement.bias.copy_(bias)
    model.language_model.lm_head = replacement
    ranked = assert_same_rankings(model, mixed_histories(40, 5, longest=10, seed=3), top_k=40, num_beams=40)
    for row in ranked:
        assert sorted(item for item, _ in row) == list(range(40))
        assert all(score < -30 for _, score in row)  # the mass really sat elsewhere


def test_results_do_not_depend_on_the_batch_and_are_deterministic(base_tokenizer, item_index):
    model = build(base_tokenizer, item_index, tiny_base_config("qwen2", tie=False))
    histories = mixed_histories(40, 9, longest=25, seed=4)
    together = model.recommend(histories, top_k=8, num_beams=10, batch_size=9)
    assert model.recommend(histories, top_k=8, num_beams=10, batch_size=9) == together  # bit for bit
    chunked = model.recommend(histories, top_k=8, num_beams=10, batch_size=2)
    alone = [model.recommend(history, top_k=8, num_beams=10)[0] for history in histories]
    for other in (chunked, alone):
        for a, b in zip(together, other):
            assert [item for item, _ in a] == [item for item, _ in b]
            assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-5)
    # a shorter list is the longer list cut (what the server relies on to batch different top_k together)
    assert model.recommend(histories, top_k=3, num_beams=10) == [row[:3] for row in together]


def test_models_without_tree_attention_fall_back_to_generate_logged_once(base_tokenizer, item_index, caplog):
    gpt2 = GPT2Config(
        n_embd=32, n_layer=2, n_head=4, n_positions=512, bos_token_id=None, eos_token_id=1, pad_token_id=0
    )
    model = build(base_tokenizer, item_index, gpt2)
    histories = mixed_histories(40, 3, longest=6, seed=5)
    with caplog.at_level(logging.WARNING, logger="lcrec.generation.recommendation"):
        first = model.recommend(histories, top_k=5, num_beams=6)
        assert model.recommend(histories, top_k=5, num_beams=6) == first
    fallbacks = [record for record in caplog.records if "instead of tree attention" in record.message]
    assert len(fallbacks) == 1 and "'gpt2'" in fallbacks[0].message
    assert first == recommend_items(model, model.tokenizer, histories, top_k=5, num_beams=6, decoder="generate")
    with pytest.raises(ValueError, match="tree-attention decoding is not available"):
        recommend_items(model, model.tokenizer, histories, top_k=5, num_beams=6, decoder="tree")


def test_a_sliding_window_shorter_than_the_cache_falls_back(base_tokenizer, item_index):
    config = MistralConfig(**_tiny_kwargs(), sliding_window=16)
    model = build(base_tokenizer, item_index, config)
    reason = tree_attention_unsupported(model.language_model, 100)
    assert reason is not None and "sliding window (16)" in reason
    histories = mixed_histories(40, 2, longest=6, seed=6)
    assert model.recommend(histories, top_k=5, num_beams=6) == recommend_items(
        model, model.tokenizer, histories, top_k=5, num_beams=6, decoder="generate"
    )


def test_decoding_leaves_the_model_as_it_was(base_tokenizer):
    model = build(base_tokenizer, make_item_index(), tiny_base_config("llama", tie=True))
    model.train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    model.recommend([[1, 2, 3]], top_k=4)
    assert model.training and all(torch.equal(value, before[key]) for key, value in model.state_dict().items())
