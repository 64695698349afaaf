"""Build the LC-Rec tokenizer and model for SFT (pretrained base or compact scratch Llama) and its LoRA config."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..indexing import ItemIndex
from .options import SMOLLM2, LoraOptions, ModelOptions

logger = logging.getLogger(__name__)


def resolve_base_model(name: str) -> str:
    """A hub id or path; `smollm2` becomes the offline SmolLM2 checkpoint folder (converted once, cached)."""
    if name == SMOLLM2:
        from ..assets import smollm2_path

        return str(smollm2_path())
    return name


def build_tokenizer_and_model(
    options: ModelOptions, item_index: ItemIndex, titles: dict[int, str], texts: Iterable[str]
):
    """(LCRecTokenizer, LCRecForCausalLM) for `options.base_model`; `texts` train the scratch tokenizer only."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..modeling_lcrec import LCRecForCausalLM
    from ..tokenization_lcrec import LCRecTokenizer

    if options.is_scratch:
        from .scratch import scratch_llama_config, train_scratch_tokenizer

        tokenizer = train_scratch_tokenizer(texts, item_index, vocab_size=options.scratch_vocab_size, titles=titles)
        config = scratch_llama_config(
            vocab_size=len(tokenizer),
            hidden_size=options.scratch_hidden_size,
            num_layers=options.scratch_num_layers,
            num_heads=options.scratch_num_heads,
            intermediate_size=options.scratch_intermediate_size,
            max_position_embeddings=options.scratch_max_positions,
            tie_word_embeddings=options.scratch_tie_embeddings,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        model = LCRecForCausalLM.from_base(config, tokenizer)
        logger.info("scratch Llama: %.2fM parameters, vocabulary %d", model.num_parameters() / 1e6, len(tokenizer))
        return tokenizer, model

    source = resolve_base_model(options.base_model)
    tokenizer = LCRecTokenizer.from_base(AutoTokenizer.from_pretrained(source), item_index, titles)
    load_kwargs = {"dtype": options.torch_dtype or "auto"}
    if options.attn_implementation:
        load_kwargs["attn_implementation"] = options.attn_implementation
    base = AutoModelForCausalLM.from_pretrained(source, **load_kwargs)
    model = LCRecForCausalLM.from_base(base, tokenizer)
    logger.info(
        "base %s: %.1fM parameters, vocabulary %d", options.base_model, model.num_parameters() / 1e6, len(tokenizer)
    )
    return tokenizer, model


def build_lora_config(model, options: LoraOptions):
    """A PEFT LoraConfig for `options`; with lora_train_index_tokens the index-token rows of the input embedding
    (and of an untied output head) train too (`lcrec.lora.lora_config_for`)."""
    from peft import LoraConfig

    from ..lora import lora_config_for

    targets = options.lora_target_modules
    target_modules = targets[0] if targets == ["all-linear"] else list(targets)
    settings = {
        "r": options.lora_r,
        "lora_alpha": options.lora_alpha,
        "lora_dropout": options.lora_dropout,
        "target_modules": target_modules,
    }
    if options.lora_train_index_tokens:
        return lora_config_for(model, **settings)
    return LoraConfig(task_type="CAUSAL_LM", **settings)
