"""LoRA on LCRecForCausalLM trains the index-token rows; the adapter folder is small and loads with AutoModel."""

import pytest
import torch
from conftest import tiny_base_model
from safetensors import safe_open
from transformers import AutoModel

import lcrec  # noqa: F401  (registers the Auto classes)
from lcrec.lora import index_token_ids, lora_config_for, save_adapter, trainable_token_indices
from lcrec.modeling_lcrec import LCRecForCausalLM

HISTORIES = [[1, 2, 3], [4, 5]]


@pytest.mark.parametrize("arch,tie", [("llama", True), ("qwen2", False)])
def test_adapter_holds_lora_and_index_rows_only_and_loads_with_automodel(
    arch, tie, tmp_path, base_tokenizer, lcrec_tokenizer
):
    from peft import get_peft_model

    base_dir = tmp_path / "base"
    tiny_base_model(arch, tie, vocab_size=len(base_tokenizer)).save_pretrained(base_dir)
    model = LCRecForCausalLM.from_base(base_dir, lcrec_tokenizer)
    ids = index_token_ids(model)
    assert len(ids) == 24 and ids[0] == len(base_tokenizer)
    indices = trainable_token_indices(model)
    assert set(indices) == (
        {"language_model.model.embed_tokens"}
        if tie
        else {"language_model.model.embed_tokens", "language_model.lm_head"}
    )
    peft_model = get_peft_model(model, lora_config_for(model, r=4))
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
    assert any("lora_A" in name for name in trainable) and any("trainable_tokens_delta" in name for name in trainable)
    assert not any(name.endswith("embed_tokens.weight") or name.endswith("lm_head.weight") for name in trainable)
    # One optimiser-like step on the trainable tensors stands in for training.
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param, generator=torch.Generator().manual_seed(len(name))) * 0.5)
    peft_model.eval()
    expected = peft_model.recommend(HISTORIES, top_k=4, num_beams=6)

    folder = tmp_path / "adapter"
    save_adapter(peft_model, folder)
    files = {p.name for p in folder.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json", "index.json", "tokenizer.json"} <= files
    assert "model.safetensors" not in files
    with safe_open(folder / "adapter_model.safetensors", "pt") as f:
        shapes = {key: tuple(f.get_slice(key).get_shape()) for key in f.keys()}
    hidden = model.config.text_config.hidden_size
    rows = {key: shape for key, shape in shapes.items() if "trainable_tokens" in key}
    assert len(rows) == (1 if tie else 2) and all(shape == (24, hidden) for shape in rows.values())
    assert all("lora_" in key or "trainable_tokens" in key for key in shapes)  # no whole embedding matrix
    vocab_rows = len(lcrec_tokenizer) * hidden
    assert sum(a * b for a, b in shapes.values()) < vocab_rows  # smaller than one embedding matrix

    loaded = AutoModel.from_pretrained(folder).eval()
    assert isinstance(loaded, LCRecForCausalLM)
    assert loaded.recommend(HISTORIES, top_k=4, num_beams=6) == expected


def test_lora_config_refuses_its_own_fields(lcrec_model):
    with pytest.raises(ValueError, match="trainable_token_indices"):
        lora_config_for(lcrec_model, trainable_token_indices=[1])
