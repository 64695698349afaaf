"""LCRecTokenizer: one id per index token, save/load with AutoTokenizer (index, titles, auto_map), bad input."""

import json

import numpy as np
import pytest
import torch

import lcrec  # noqa: F401  (registers the Auto classes)
from lcrec.indexing import ItemIndex
from lcrec.prompts import seqrec_prompt
from lcrec.tokenization_lcrec import LCRecTokenizer
from lcrec.training.scratch import scratch_llama_config, train_scratch_tokenizer


def _metaspace_base_tokenizer():
    """A SentencePiece-style (Llama) tokenizer: Metaspace pre-tokenizer, `▁` word prefix, BOS added."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import TokenizersBackend

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    backend.train_from_iterator(
        ["a user interacted with these items", "which item will the user pick next"] * 5, trainer
    )
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return TokenizersBackend(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.mark.parametrize("base_kind", ["bytelevel", "metaspace"])
def test_every_index_token_is_one_id_also_back_to_back(base_kind, base_tokenizer, item_index):
    base = base_tokenizer if base_kind == "bytelevel" else _metaspace_base_tokenizer()
    tokenizer = LCRecTokenizer.from_base(base, item_index)
    vocab = tokenizer.get_vocab()
    tokens = item_index.all_tokens()
    assert len(tokenizer) == len(base) + len(tokens)
    for token in tokens:
        assert tokenizer.encode(token, add_special_tokens=False) == [vocab[token]]
    for item in item_index.item_ids[:10]:
        text = f"history: {item_index.tokens(item)}, {item_index.tokens(item)}{item_index.tokens(0)}"
        ids = tokenizer.encode(text, add_special_tokens=False)
        index_ids = [i for i in ids if i >= len(base)]
        expected = [vocab[t] for t in item_index.token_list(item) * 2 + item_index.token_list(0)]
        assert index_ids == expected
    assert tokenizer.index_token_ids.shape == (item_index.levels, 8)
    assert tokenizer.index_token_ids.min() >= len(base)


def test_base_tokenizer_that_splits_index_tokens_is_refused(base_tokenizer, item_index):
    from tokenizers import AddedToken

    base = _metaspace_base_tokenizer()
    # An existing added token that overlaps two index tokens wins the longest match and splits "<a_0><b_0>".
    base.backend_tokenizer.add_tokens([AddedToken("<a_0><b", normalized=False)])
    with pytest.raises(ValueError, match="splits index tokens"):
        LCRecTokenizer.from_base(base, item_index)


def test_save_and_auto_tokenizer_round_trip(tmp_path, lcrec_tokenizer, item_index, item_titles):
    from transformers import AutoTokenizer

    lcrec_tokenizer.save_pretrained(tmp_path)
    assert {"tokenizer.json", "tokenizer_config.json", "index.json", "item_titles.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "LCRecTokenizer"
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(loaded, LCRecTokenizer)
    assert loaded.item_index.item_ids == item_index.item_ids
    assert np.array_equal(loaded.item_index.codes, item_index.codes)
    assert loaded.titles == item_titles
    assert loaded.padding_side == "left"
    text = seqrec_prompt("The user saw {history}. Next?", [item_index.tokens(item) for item in (3, 1, 4)])
    assert loaded.encode(text) == lcrec_tokenizer.encode(text)
    assert torch.equal(loaded.index_token_ids, lcrec_tokenizer.index_token_ids)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["auto_map"] == {"AutoTokenizer": [None, "tokenization_lcrec.LCRecTokenizer"]}
    assert (tmp_path / "tokenization_lcrec.py").is_file() and (tmp_path / "item_index.py").is_file()  # its remote code


def test_bad_titles_file_is_refused_naming_it(tmp_path, lcrec_tokenizer):
    lcrec_tokenizer.save_pretrained(tmp_path)
    (tmp_path / "item_titles.json").write_text('{"1": "red flask",\n "2": {"en": "x"}}')
    with pytest.raises(ValueError, match=r"item_titles.json: item 2: the title must be a string, got dict"):
        LCRecTokenizer.from_pretrained(tmp_path)
    (tmp_path / "item_titles.json").write_text('{"1": "red flask",\n "2": ')
    with pytest.raises(ValueError, match=r"item_titles.json:2:.*malformed JSON"):
        LCRecTokenizer.from_pretrained(tmp_path)


def test_folder_without_index_is_a_clear_error(tmp_path, lcrec_tokenizer):
    lcrec_tokenizer.save_pretrained(tmp_path)
    (tmp_path / "index.json").unlink()
    with pytest.raises(ValueError, match="no index.json"):
        LCRecTokenizer.from_pretrained(tmp_path)


def test_cold_start_items_need_no_new_tokens(base_tokenizer, item_index):
    tokenizer = LCRecTokenizer.from_base(base_tokenizer, item_index)
    size = len(tokenizer)
    free = next(codes for codes in np.ndindex(8, 8, 8) if item_index.item_for_codes(codes) is None)
    tokenizer.add_items([100], np.array([free]), titles={100: "new flask"})
    assert len(tokenizer) == size
    assert tokenizer.item_index.item_for_codes(free) == 100
    assert tokenizer.item_index.num_items == item_index.num_items + 1
    assert tokenizer.title(100) == "new flask"
    with pytest.raises(ValueError, match="codebooks"):
        tokenizer.item_index = ItemIndex([1], [[0, 0]], [8, 8])


def test_scratch_tokenizer_and_config(item_index):
    texts = [
        "A user interacted with <a_1><b_2><c_3>, <a_0><b_0><c_0>. Which item next?",
        "red microscope",
        "blue flask",
    ] * 20
    tokenizer = train_scratch_tokenizer(texts, item_index, vocab_size=300)
    assert isinstance(tokenizer, LCRecTokenizer)
    assert tokenizer.pad_token_id == 0 and tokenizer.eos_token_id == 1
    # BPE never learned merges on index tokens: they stay whole added tokens, after the base vocabulary.
    assert not any(
        "<a_" in token
        for token in list(tokenizer.get_vocab())[: tokenizer.first_index_token_id]
        if token not in item_index.all_tokens()
    )
    assert tokenizer.encode(item_index.tokens(5), add_special_tokens=False) == [
        int(i) for i in tokenizer.index_token_ids[[0, 1, 2], list(item_index.codes_of(5))]
    ]
    config = scratch_llama_config(len(tokenizer), hidden_size=64, num_layers=2, num_heads=4)
    assert config.vocab_size == len(tokenizer) and config.pad_token_id == 0 and config.eos_token_id == 1
    with pytest.raises(ValueError, match="divisible"):
        scratch_llama_config(100, hidden_size=30, num_heads=4)
