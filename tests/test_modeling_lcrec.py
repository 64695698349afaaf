"""LCRecForCausalLM: embedding init, Auto-class save/load, index integrity, recommend()'s contract and bad input."""

import json
import os
import stat
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import make_item_index, tiny_base_config, tiny_base_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, GenerationConfig, Trainer
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging as transformers_logging

import lcrec  # noqa: F401  (registers the Auto classes and the pipeline task)
from lcrec.configuration_lcrec import DEFAULT_NUM_BEAMS, LCRecConfig
from lcrec.generation import render_prompts, resolve_num_beams
from lcrec.indexing import ItemIndex
from lcrec.modeling_lcrec import LCRecForCausalLM
from lcrec.prompts import DEFAULT_MAX_HISTORY, join_history
from lcrec.tokenization_lcrec import LCRecTokenizer

HISTORIES = [[1, 2, 3], [4], [5, 6, 7, 8, 9, 10, 11], [39, 0]]
VARIANTS = [("llama", True), ("llama", False), ("qwen2", True), ("qwen2", False)]


@pytest.mark.parametrize("arch,tie", VARIANTS)
def test_from_base_initialises_only_new_rows_deliberately(arch, tie, base_tokenizer, lcrec_tokenizer):
    base = tiny_base_model(arch, tie, vocab_size=len(base_tokenizer))
    old_embed = base.get_input_embeddings().weight.detach().clone()
    old_head = base.get_output_embeddings().weight.detach().clone()
    model = LCRecForCausalLM.from_base(base, lcrec_tokenizer, seed=3)
    embed, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    rows = len(base_tokenizer)
    assert embed.shape[0] == head.shape[0] == len(lcrec_tokenizer)
    assert torch.equal(embed[:rows], old_embed) and torch.equal(head[:rows], old_head)
    assert (head is embed) == tie and model.config.tie_word_embeddings == tie
    for new, old in ((embed[rows:], old_embed), (head[rows:], old_head)):
        # mean of the existing rows plus small noise: centred on the old mean, distinct rows, modest spread
        assert torch.allclose(new.mean(dim=0), old.mean(dim=0), atol=3 * 0.1 * old.std(dim=0).max().item())
        assert (new.std(dim=0) < 0.5 * old.std(dim=0)).all()
        assert torch.unique(new, dim=0).shape[0] == new.shape[0]
    again = LCRecForCausalLM.from_base(tiny_base_model(arch, tie, vocab_size=rows), lcrec_tokenizer, seed=3)
    assert torch.equal(again.get_input_embeddings().weight, embed)
    assert model.config.first_index_token_id == rows and model.config.codebook_sizes == [8, 8, 8]
    assert model.config.text_config.vocab_size == len(lcrec_tokenizer)
    assert model.config.seqrec_templates


def test_from_base_config_keeps_the_fresh_init_of_index_rows(base_tokenizer, lcrec_tokenizer):
    """A model built from a config trains from scratch: index rows keep the same random spread as every other row."""
    config = tiny_base_config("llama", True, vocab_size=len(lcrec_tokenizer))
    model = LCRecForCausalLM.from_base(config, lcrec_tokenizer, seed=3)
    embed = model.get_input_embeddings().weight
    index_rows, other_rows = embed[len(base_tokenizer) :], embed[: len(base_tokenizer)]
    assert index_rows.std().item() == pytest.approx(other_rows.std().item(), rel=0.2)
    assert index_rows.std().item() == pytest.approx(config.initializer_range, rel=0.2)
    assert torch.unique(index_rows, dim=0).shape[0] == index_rows.shape[0]


def test_from_base_records_beams_index_and_positions(base_tokenizer, item_index, item_titles):
    tokenizer = LCRecTokenizer.from_base(base_tokenizer, item_index, titles=item_titles)
    assert tokenizer.model_max_length > 10**6  # the trained BPE declares no limit
    model = LCRecForCausalLM.from_base(tiny_base_model("llama", True, vocab_size=len(base_tokenizer)), tokenizer)
    assert model.generation_config.num_beams == DEFAULT_NUM_BEAMS == 20 and model.generation_config.do_sample is False
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.config.index_fingerprint == item_index.fingerprint and model.config.num_items == item_index.num_items
    assert model.config.max_history == DEFAULT_MAX_HISTORY
    assert tokenizer.model_max_length == 512  # the base's max_position_embeddings
    assert model.base_model is model.language_model.model  # the backbone, as TRL's fused head expects


@pytest.mark.parametrize("arch,tie", [("llama", True), ("qwen2", False)])
def test_save_then_auto_load_gives_identical_weights_and_recommendations(arch, tie, tmp_path, make_lcrec_model):
    model = make_lcrec_model(arch, tie)
    expected = model.recommend(HISTORIES, top_k=5, num_beams=8)
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"]["AutoModel"] == "modeling_lcrec.LCRecForCausalLM"
    assert saved["custom_pipelines"]["item-recommendation"]["impl"] == "recommendation.ItemRecommendationPipeline"
    assert json.loads((tmp_path / "generation_config.json").read_text())["num_beams"] == 20
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "model.safetensors").stat().st_mode) == 0o666 & ~umask  # safetensors writes 0600
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, LCRecForCausalLM) and isinstance(loaded.tokenizer, LCRecTokenizer)
    assert not hasattr(loaded.config, "custom_pipelines")  # installed lcrec registers the task itself
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    assert all(torch.equal(state[key], loaded_state[key]) for key in state)  # nothing re-initialised
    assert loaded.recommend(HISTORIES, top_k=5, num_beams=8) == expected
    assert loaded.generation_config.num_beams == 20
    assert isinstance(AutoModelForCausalLM.from_pretrained(tmp_path), LCRecForCausalLM)
    assert isinstance(AutoTokenizer.from_pretrained(tmp_path), LCRecTokenizer)


@pytest.mark.parametrize("tie", [True, False])
def test_reloading_a_checkpoint_raises_no_missing_key_warning(tie, tmp_path, make_lcrec_model):
    """What Trainer._load_best_model does: load the saved state dict and warn unless the missing keys are declared."""
    model = make_lcrec_model("llama", tie)
    model.save_pretrained(tmp_path)
    fresh = make_lcrec_model("llama", tie, seed=1)
    result = fresh.load_state_dict(load_file(tmp_path / "model.safetensors"), strict=False)
    assert (result.missing_keys == ["language_model.lm_head.weight"]) == tie and not result.unexpected_keys
    logger = transformers_logging.get_logger("transformers.trainer")
    with CaptureLogger(logger) as captured:
        Trainer._issue_warnings_after_load(SimpleNamespace(model=fresh), result)
    assert "missing keys" not in captured.out
    assert torch.equal(fresh.get_output_embeddings().weight, model.get_output_embeddings().weight)


def test_a_base_model_folder_reads_as_an_lcrec_config_without_a_type_warning(tmp_path, base_tokenizer):
    """PEFT reads the base model's folder through `model.config.__class__` when it saves a checkpoint."""
    tiny_base_model("qwen2", False, vocab_size=len(base_tokenizer)).save_pretrained(tmp_path)
    logger = transformers_logging.get_logger("transformers.configuration_utils")
    with CaptureLogger(logger) as captured:
        config = LCRecConfig.from_pretrained(tmp_path)
    assert "to instantiate a model of type" not in captured.out
    assert config.text_config.model_type == "qwen2" and config.vocab_size == len(base_tokenizer)


def _rewrite_index(folder, index: ItemIndex) -> None:
    (folder / "index.json").unlink()
    index.save(folder / "index.json")


def test_an_index_edited_or_replaced_after_saving_is_refused_on_load(tmp_path, lcrec_model, item_index):
    lcrec_model.save_pretrained(tmp_path)
    codes = item_index.codes.copy()
    codes[[0, 1]] = codes[[1, 0]]  # two items swap codes: a valid index, but not the one the model learnt
    _rewrite_index(tmp_path, ItemIndex(item_index.item_ids, codes, item_index.codebook_sizes))
    with pytest.raises(
        ValueError, match=r"index.json \(fingerprint sha256:\w+\) is not the index the model was saved with"
    ):
        AutoModel.from_pretrained(tmp_path)
    _rewrite_index(tmp_path, ItemIndex(item_index.item_ids[:-1], item_index.codes[:-1], item_index.codebook_sizes))
    with pytest.raises(ValueError, match="has 39 items but the model was saved with 40"):
        AutoModel.from_pretrained(tmp_path)
    _rewrite_index(tmp_path, item_index)
    assert AutoModel.from_pretrained(tmp_path).tokenizer.item_index.fingerprint == item_index.fingerprint


def test_cold_start_items_are_recommendable_and_saved_with_the_model(
    tmp_path, make_lcrec_model, base_tokenizer, item_index
):
    model = make_lcrec_model("llama", True)
    tokenizer = LCRecTokenizer.from_base(base_tokenizer, item_index)
    model.set_tokenizer(tokenizer)
    free = next(codes for codes in np.ndindex(8, 8, 8) if item_index.item_for_codes(codes) is None)
    tokenizer.add_items([100], np.array([free]))
    (ranked,) = model.recommend([1, 2], top_k=41)
    assert 100 in {item for item, _ in ranked}
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert loaded.config.num_items == 41 and 100 in loaded.tokenizer.item_index


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    histories=st.lists(st.lists(st.integers(0, 39), min_size=1, max_size=25), min_size=1, max_size=2),
    top_k=st.integers(1, 45),
    extra_beams=st.integers(0, 6),
)
def test_recommendations_are_catalogue_items_distinct_and_ranked(lcrec_model, histories, top_k, extra_beams):
    results = lcrec_model.recommend(histories, top_k=top_k, num_beams=top_k + extra_beams, batch_size=2)
    assert len(results) == len(histories)
    catalogue = set(lcrec_model.tokenizer.item_index.item_ids)
    for ranked in results:
        items = [item for item, _ in ranked]
        assert len(items) == min(top_k, len(catalogue))
        assert len(set(items)) == len(items) and set(items) <= catalogue
        scores = [score for _, score in ranked]
        assert scores == sorted(scores, reverse=True) and all(score < 0 for score in scores)


def test_top_k_above_the_catalogue_returns_every_item_with_a_warning(lcrec_model, caplog):
    # item 39 is alone under its first code: a sparse prefix must still be reachable
    (ranked,) = lcrec_model.recommend([[1, 2]], top_k=100)
    assert sorted(item for item, _ in ranked) == list(range(40))
    assert "top_k=100 exceeds the catalogue's 40 distinct items" in caplog.text


def test_batching_and_padding_do_not_change_results(lcrec_model):
    together = lcrec_model.recommend(HISTORIES, top_k=5, num_beams=8, batch_size=4)
    alone = [lcrec_model.recommend(history, top_k=5, num_beams=8)[0] for history in HISTORIES]
    for a, b in zip(together, alone):
        assert [item for item, _ in a] == [item for item, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-4)


def test_the_default_beam_count_is_the_generation_configs(make_lcrec_model):
    model = make_lcrec_model("llama", False)
    assert resolve_num_beams(model, None, 5) == 20 and resolve_num_beams(model, None, 30) == 30
    top5 = model.recommend(HISTORIES, top_k=5)
    assert top5 == model.recommend(HISTORIES, top_k=5, num_beams=20)
    assert top5 == [ranked[:5] for ranked in model.recommend(HISTORIES, top_k=20)]  # a top 5 is the ranking's top 5
    model.generation_config.num_beams = 6
    assert model.recommend(HISTORIES, top_k=5) == model.recommend(HISTORIES, top_k=5, num_beams=6)
    model.generation_config = GenerationConfig()  # a folder saved without beam settings: num_beams 1
    assert resolve_num_beams(model, None, 5) == DEFAULT_NUM_BEAMS


def test_sampling_defaults_shipped_with_a_checkpoint_are_ignored(make_lcrec_model):
    model = make_lcrec_model("qwen2", False)
    expected = model.recommend(HISTORIES, top_k=5, num_beams=8)
    hostile = GenerationConfig(
        do_sample=True,
        temperature=50.0,
        top_k=2,
        top_p=0.1,
        repetition_penalty=20.0,
        no_repeat_ngram_size=1,
        num_beams=8,
        length_penalty=5.0,
    )
    model.generation_config = hostile
    model.train()  # e.g. straight after a training loop: dropout must not leak into recommend() either
    for module in model.modules():
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = 0.5
    torch.manual_seed(1)
    assert model.recommend(HISTORIES, top_k=5) == expected
    assert model.generation_config is hostile and model.training


BAD_ARGUMENTS = [
    ({"top_k": 2.5}, TypeError, r"top_k must be an integer, got 2\.5"),
    ({"top_k": "3"}, TypeError, r"top_k must be an integer, got '3'"),
    ({"top_k": True}, TypeError, r"top_k must be an integer, got True"),
    ({"top_k": 0}, ValueError, r"top_k must be at least 1"),
    ({"top_k": 5, "num_beams": 2}, ValueError, r"num_beams \(2\) must be at least top_k \(5\)"),
    ({"num_beams": 8.0}, TypeError, r"num_beams must be an integer"),
    ({"batch_size": 0}, ValueError, r"batch_size must be at least 1"),
    ({"max_history": 0}, ValueError, r"max_history must be at least 1"),
    ({"template": 99}, ValueError, r"template 99 does not exist"),
]


@pytest.mark.parametrize("kwargs,error,message", BAD_ARGUMENTS)
def test_recommend_refuses_bad_arguments_naming_them(lcrec_model, kwargs, error, message):
    with pytest.raises(error, match=message):
        lcrec_model.recommend([[1, 2]], **kwargs)


BAD_HISTORIES = [
    ([[None]], TypeError, r"history 0, position 0: item ids are integers, got None"),
    ("12 7", TypeError, r"got the string '12 7'"),
    (["12", "7"], TypeError, r"history 0, position 0: item ids are integers, got '12'"),  # not two one-item histories
    ([["12", "7"]], TypeError, r"history 0, position 0: item ids are integers, got '12'"),
    ([[12.5]], TypeError, r"history 0, position 0: item ids are integers, got 12\.5"),
    ([[12.0]], TypeError, r"got 12\.0"),
    ([[True, 7]], TypeError, r"history 0, position 0: item ids are integers, got True"),
    ([[1], [2, False]], TypeError, r"history 1, position 1: item ids are integers, got False"),
    ([1, [2, 3]], TypeError, r"mixes item ids \(entry 0\) and lists \(entry 1\)"),
    (torch.tensor([[1.0, 2.0]]), TypeError, r"history 0, position 0: item ids are integers, got 1\.0"),
    (torch.tensor([True, False]), TypeError, r"got True"),
    (torch.zeros((1, 1, 2), dtype=torch.long), TypeError, r"must be 1-D \(one history\) or 2-D"),
    (7, TypeError, r"got int"),
    ([[]], ValueError, r"history 0: empty history"),
    ([[1], []], ValueError, r"history 1: empty history"),
    ([[1], [2, 777]], KeyError, r"history 1: 1 item ids are not in the catalogue: \[777\]"),
]


@pytest.mark.parametrize("histories,error,message", BAD_HISTORIES)
def test_recommend_refuses_bad_histories_naming_the_history_and_position(lcrec_model, histories, error, message):
    with pytest.raises(error, match=message):
        lcrec_model.recommend(histories, top_k=3)


def test_recommend_input_forms(lcrec_model, caplog):
    expected = lcrec_model.recommend([[1, 2, 3], [4, 5, 6]], top_k=3)
    assert lcrec_model.recommend([1, 2, 3], top_k=3) == expected[:1]  # one history
    assert lcrec_model.recommend(torch.tensor([1, 2, 3]), top_k=3) == expected[:1]  # a 1-D tensor is one history
    assert lcrec_model.recommend(torch.tensor([[1, 2, 3], [4, 5, 6]]), top_k=3) == expected  # a row per history
    assert lcrec_model.recommend(np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int32), top_k=3) == expected
    assert lcrec_model.recommend([np.int64(1), np.int64(2), np.int64(3)], top_k=3) == expected[:1]
    assert lcrec_model.recommend([torch.tensor([1, 2, 3]), (4, 5, 6)], top_k=3) == expected
    assert lcrec_model.recommend([], top_k=3) == []
    assert lcrec_model.recommend([[1, 777]], skip_unknown=True, top_k=2) == lcrec_model.recommend([[1]], top_k=2)
    assert "777" in caplog.text
    with pytest.raises(ValueError, match="history 0: empty history"):
        lcrec_model.recommend([[777]], skip_unknown=True)


def test_prompts_show_the_most_recent_items_in_the_chosen_template(lcrec_model):
    config, index = lcrec_model.config, lcrec_model.tokenizer.item_index
    (prompt,) = render_prompts(config, index, [list(range(30))], template=1)
    assert prompt.startswith("### Task\n") and prompt.endswith("### Answer\n")
    assert join_history(index.tokens(item) for item in range(10, 30)) in prompt and index.tokens(9) not in prompt
    assert config.seqrec_templates[1].split("{history}")[0] in prompt
    (short,) = render_prompts(config, index, [list(range(30))], template=1, max_history=3)
    assert join_history(index.tokens(item) for item in range(27, 30)) in short and index.tokens(26) not in short


def test_a_tokenizer_with_another_index_is_refused(lcrec_model, base_tokenizer):
    other_sizes = LCRecTokenizer.from_base(base_tokenizer, make_item_index(levels=3, codebook=9, num_items=20))
    with pytest.raises(ValueError, match="codebooks"):
        lcrec_model.set_tokenizer(other_sizes)
    from tokenizers import AddedToken

    shifted_base = type(base_tokenizer)(
        tokenizer_object=base_tokenizer.backend_tokenizer, pad_token="<pad>", eos_token="</s>"
    )
    shifted_base.backend_tokenizer.add_tokens([AddedToken("<extra>", normalized=False)])
    shifted = LCRecTokenizer.from_base(shifted_base, make_item_index())
    with pytest.raises(ValueError, match="does not belong to this model"):
        lcrec_model.recommend([[1]], tokenizer=shifted)


def test_no_tokenizer_is_a_clear_error(lcrec_model):
    bare = LCRecForCausalLM(lcrec_model.config)
    with pytest.raises(ValueError, match="no tokenizer attached"):
        bare.recommend([[1]])


def test_concurrent_callers_get_the_same_results(make_lcrec_model):
    model = make_lcrec_model("qwen2", True)
    expected = model.recommend(HISTORIES, top_k=4, num_beams=6)
    model.train()
    results = [None] * 4

    def call(slot: int) -> None:
        results[slot] = model.recommend(HISTORIES, top_k=4, num_beams=6)

    threads = [threading.Thread(target=call, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4 and model.training


def test_recommend_command_prints_titles(lcrec_model, tmp_path, capsys):
    from lcrec.cli import main

    lcrec_model.save_pretrained(tmp_path)
    assert main(["recommend", "--model", str(tmp_path), "--history", "1", "2", "3", "--top-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = lcrec_model.recommend([1, 2, 3], top_k=3)[0]
    assert len(out) == 2 + 3
    for line, (item, _) in zip(out[2:], expected):
        assert line.split()[1] == str(item) and line.endswith(lcrec_model.tokenizer.title(item))
    assert main(["recommend", "--model", str(tmp_path), "--history", "1", "12345"]) == 2
    assert "12345" in capsys.readouterr().err


def test_item_recommendation_pipeline_after_import_lcrec(lcrec_model, tmp_path):
    from transformers import pipeline

    lcrec_model.save_pretrained(tmp_path)
    pipe = pipeline("item-recommendation", model=str(tmp_path))  # registered by `import lcrec`, no remote code
    assert type(pipe).__module__ == "lcrec.generation.recommendation"
    single = pipe([1, 2, 3], top_k=3)
    expected = lcrec_model.recommend([1, 2, 3], top_k=3)[0]
    assert [entry["item_id"] for entry in single] == [item for item, _ in expected]
    assert [entry["score"] for entry in single] == pytest.approx([score for _, score in expected], abs=1e-5)
    assert single[0]["title"] == lcrec_model.tokenizer.title(expected[0][0])
    assert single[0]["index"] == lcrec_model.tokenizer.item_tokens(expected[0][0])
    both = pipe([[1, 2, 3], [4]], top_k=2)
    assert len(both) == 2 and [entry["item_id"] for entry in both[0]] == [item for item, _ in expected[:2]]
    with pytest.raises(TypeError, match="history 0, position 0"):
        pipe(["12", "7"])
