"""LCRecForCausalLM: embedding init, Auto-class save/load, constrained recommend(), sampling defaults, bad input."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

import lcrec  # noqa: F401  (registers the Auto classes)
from lcrec.modeling_lcrec import LCRecForCausalLM
from lcrec.tokenization_lcrec import LCRecTokenizer

from conftest import make_item_index, tiny_base_config, tiny_base_model

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


@pytest.mark.parametrize("arch,tie", [("llama", True), ("qwen2", False)])
def test_save_then_auto_load_gives_identical_weights_and_recommendations(arch, tie, tmp_path, make_lcrec_model):
    model = make_lcrec_model(arch, tie)
    expected = model.recommend(HISTORIES, top_k=5, num_beams=8)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, LCRecForCausalLM) and isinstance(loaded.tokenizer, LCRecTokenizer)
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    assert all(torch.equal(state[key], loaded_state[key]) for key in state)  # nothing re-initialised
    assert loaded.recommend(HISTORIES, top_k=5, num_beams=8) == expected
    assert isinstance(AutoModelForCausalLM.from_pretrained(tmp_path), LCRecForCausalLM)
    assert isinstance(AutoTokenizer.from_pretrained(tmp_path), LCRecTokenizer)


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


def test_every_item_is_reachable_including_sparse_prefixes(lcrec_model):
    # top_k beyond the catalogue: all 40 items, each once (item 39 is alone under its first code).
    (ranked,) = lcrec_model.recommend([[1, 2]], top_k=100)
    assert sorted(item for item, _ in ranked) == list(range(40))


def test_batching_and_padding_do_not_change_results(lcrec_model):
    together = lcrec_model.recommend(HISTORIES, top_k=5, num_beams=8, batch_size=4)
    alone = [lcrec_model.recommend(history, top_k=5, num_beams=8)[0] for history in HISTORIES]
    for a, b in zip(together, alone):
        assert [item for item, _ in a] == [item for item, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-4)


def test_sampling_defaults_shipped_with_a_checkpoint_are_ignored(make_lcrec_model):
    model = make_lcrec_model("qwen2", False)
    expected = model.recommend(HISTORIES, top_k=5, num_beams=8)
    hostile = GenerationConfig(do_sample=True, temperature=50.0, top_k=2, top_p=0.1, repetition_penalty=20.0, no_repeat_ngram_size=1, num_beams=1, length_penalty=5.0)
    model.generation_config = hostile
    model.train()  # e.g. straight after a training loop: dropout must not leak into recommend() either
    for module in model.modules():
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = 0.5
    torch.manual_seed(1)
    assert model.recommend(HISTORIES, top_k=5, num_beams=8) == expected
    assert model.generation_config is hostile and model.training


def test_recommend_input_forms_and_bad_input(lcrec_model, caplog):
    single = lcrec_model.recommend([1, 2, 3], top_k=3)
    assert single == lcrec_model.recommend([[1, 2, 3]], top_k=3)
    assert lcrec_model.recommend([], top_k=3) == []
    with pytest.raises(KeyError, match=r"history 1: .*\[777\]"):
        lcrec_model.recommend([[1], [2, 777]])
    assert lcrec_model.recommend([[1, 777]], skip_unknown=True, top_k=2) == lcrec_model.recommend([[1]], top_k=2)
    assert "777" in caplog.text
    with pytest.raises(ValueError, match="history 0: empty history"):
        lcrec_model.recommend([[]])
    with pytest.raises(ValueError, match="template 99"):
        lcrec_model.recommend([[1]], template=99)
    with pytest.raises(ValueError, match="num_beams"):
        lcrec_model.recommend([[1]], top_k=5, num_beams=2)
    with pytest.raises(ValueError, match="top_k"):
        lcrec_model.recommend([[1]], top_k=0)


def test_templates_and_history_window_shape_the_prompt(lcrec_model):
    prompt = lcrec_model.build_prompt(list(range(30)), template=1)
    tokenizer = lcrec_model.tokenizer
    assert tokenizer.item_tokens(10) in prompt and tokenizer.item_tokens(9) not in prompt
    assert prompt.startswith("### Task\n") and prompt.endswith("### Answer\n")
    assert lcrec_model.config.seqrec_templates[1].split("{history}")[0] in prompt


def test_a_tokenizer_with_another_index_is_refused(lcrec_model, base_tokenizer):
    other_sizes = LCRecTokenizer.from_base(base_tokenizer, make_item_index(levels=3, codebook=9, num_items=20))
    with pytest.raises(ValueError, match="codebooks"):
        lcrec_model.set_tokenizer(other_sizes)
    from tokenizers import AddedToken

    shifted_base = type(base_tokenizer)(tokenizer_object=base_tokenizer.backend_tokenizer, pad_token="<pad>", eos_token="</s>")
    shifted_base.backend_tokenizer.add_tokens([AddedToken("<extra>", normalized=False)])
    shifted = LCRecTokenizer.from_base(shifted_base, make_item_index())
    with pytest.raises(ValueError, match="does not belong to this model"):
        lcrec_model.recommend([[1]], tokenizer=shifted)


def test_no_tokenizer_is_a_clear_error(lcrec_model, tmp_path):
    bare = LCRecForCausalLM(lcrec_model.config)
    with pytest.raises(ValueError, match="no tokenizer attached"):
        bare.recommend([[1]])


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


def test_shared_prompt_prefill_gives_the_same_rankings(make_lcrec_model, monkeypatch):
    model = make_lcrec_model("qwen2", False)
    shared = model.recommend(HISTORIES, top_k=6, num_beams=8)
    monkeypatch.setattr(model, "_shared_prefill", lambda *args: None)  # plain generate(): prompts run once per beam
    plain = model.recommend(HISTORIES, top_k=6, num_beams=8)
    for a, b in zip(shared, plain):
        assert [item for item, _ in a] == [item for item, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-4)


def test_item_recommendation_pipeline(lcrec_model, tmp_path):
    from transformers import pipeline

    import lcrec.generation.pipeline  # noqa: F401  (registers the task)

    lcrec_model.save_pretrained(tmp_path)
    pipe = pipeline("item-recommendation", model=str(tmp_path))
    single = pipe([1, 2, 3], top_k=3)
    expected = lcrec_model.recommend([1, 2, 3], top_k=3)[0]
    assert [entry["item_id"] for entry in single] == [item for item, _ in expected]
    assert single[0]["title"] == lcrec_model.tokenizer.title(expected[0][0])
    assert single[0]["index"] == lcrec_model.tokenizer.item_tokens(expected[0][0])
    both = pipe([[1, 2, 3], [4]], top_k=2)
    assert len(both) == 2 and [entry["item_id"] for entry in both[0]] == [item for item, _ in expected[:2]]
