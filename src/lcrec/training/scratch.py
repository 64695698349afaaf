"""The compact from-scratch CPU preset: a byte-level BPE tokenizer trained on the dataset's text, and a small Llama."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

from datasets import Dataset
from transformers import LlamaConfig, TokenizersBackend

from ..indexing.item_index import ItemIndex
from ..tokenization_lcrec import LCRecTokenizer

PAD_TOKEN = "<pad>"
EOS_TOKEN = "</s>"
_INDEX_TOKEN_RE = re.compile(r"<[a-z]_\d+>")


def _without_index_tokens(texts: Iterable[str]) -> Iterator[str]:
    # Index tokens are added whole afterwards; letting BPE learn merges on them would waste the vocabulary.
    for text in texts:
        yield _INDEX_TOKEN_RE.sub(" ", text)


def train_scratch_tokenizer(
    texts: Iterable[str],
    item_index: ItemIndex,
    vocab_size: int = 4096,
    titles: Mapping[int, str] | None = None,
    min_frequency: int = 2,
) -> LCRecTokenizer:
    """A byte-level BPE of `vocab_size` base tokens trained on `texts`, plus pad/EOS and every index token.

    The result's length is `vocab_size` (or fewer when the texts are small) + the index tokens; size the
    model's vocabulary with `len(tokenizer)`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD_TOKEN, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_without_index_tokens(texts), trainer)
    base = TokenizersBackend(
        tokenizer_object=backend, pad_token=PAD_TOKEN, eos_token=EOS_TOKEN, bos_token=None, unk_token=None
    )
    return LCRecTokenizer.from_base(base, item_index, titles=titles)


def scratch_tokenizer_texts(mix: Dataset, items: Dataset, max_rows: int = 20_000) -> Iterator[str]:
    """Texts the scratch tokenizer learns from: prompts and completions of (at most `max_rows` rows of) a
    shuffled mix, and every item text. Prompts repeat their templates, so a sample covers the vocabulary."""
    rows = mix.select_columns(["prompt", "completion"]).select(range(min(max_rows, len(mix))))
    for row in rows:
        yield row["prompt"]
        yield row["completion"]
    for column in ("title", "description", "brand", "categories"):
        if column in items.column_names:
            yield from (text for text in items[column] if text)


def scratch_llama_config(
    vocab_size: int,
    hidden_size: int = 256,
    num_layers: int = 4,
    num_heads: int = 4,
    num_kv_heads: int | None = None,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 1024,
    tie_word_embeddings: bool = True,
    pad_token_id: int | None = 0,
    eos_token_id: int | None = 1,
    bos_token_id: int | None = None,
) -> LlamaConfig:
    """A small Llama config for training from scratch on CPU (defaults: ~3M parameters plus embeddings).

    The token ids default to `train_scratch_tokenizer`'s layout (pad 0, EOS 1, no BOS).
    """
    if hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or 4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=bos_token_id,
    )
