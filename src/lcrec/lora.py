"""LoRA for `LCRecForCausalLM` that also trains the index-token rows; small adapter folders AutoModel loads."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .io_utils import atomic_dir
from .modeling_lcrec import LCRecForCausalLM
from .remote_code import write_remote_code

# PEFT's "all-linear" targets every linear layer except the output head.
DEFAULT_TARGET_MODULES = "all-linear"
# Where a model folder keeps its adapter beside merged weights (training writes it, the model card reads it).
ADAPTER_SUBFOLDER = "adapter"


def index_token_ids(model: LCRecForCausalLM) -> list[int]:
    """Vocabulary ids of every index token of the model's tokenizer, ascending."""
    if model.tokenizer is None:
        raise ValueError("the model has no tokenizer attached; call model.set_tokenizer(tokenizer) first")
    table = model.tokenizer.index_token_ids
    return sorted(int(token) for token in table[table >= 0].tolist())


def _module_name(model: LCRecForCausalLM, module) -> str:
    return next(name for name, candidate in model.named_modules() if candidate is module)


def trainable_token_indices(model: LCRecForCausalLM) -> dict[str, list[int]]:
    """PEFT `trainable_token_indices`: the index rows of the input embeddings, and of the head when it is untied.

    A tied head shares the input rows (PEFT ties the two adapters), so only the embedding is named then.
    """
    ids = index_token_ids(model)
    embeddings, head = model.get_input_embeddings(), model.get_output_embeddings()
    indices = {_module_name(model, embeddings): ids}
    if head is not None and head.weight is not embeddings.weight:
        indices[_module_name(model, head)] = ids
    return indices


def lora_config_for(
    model: LCRecForCausalLM,
    r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.05,
    target_modules: str | Sequence[str] = DEFAULT_TARGET_MODULES,
    **kwargs,
):
    """A `peft.LoraConfig` for causal-LM SFT whose adapter also trains (and saves) the index-token rows.

    Without those rows LoRA cannot teach a model to emit tokens it has never seen. Extra kwargs go to LoraConfig.
    """
    from peft import LoraConfig

    if "trainable_token_indices" in kwargs or "modules_to_save" in kwargs:
        raise ValueError(
            "lora_config_for sets trainable_token_indices itself; build a LoraConfig directly to choose your own"
        )
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=r,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=target_modules if isinstance(target_modules, str) else list(target_modules),
        trainable_token_indices=trainable_token_indices(model),
        **kwargs,
    )


def save_adapter(peft_model, save_directory: str | os.PathLike) -> None:
    """Write an adapter folder: LoRA weights + index-token rows (no full embedding matrices), config, tokenizer,
    generation config and the remote code.

    `AutoModel.from_pretrained(save_directory)` (after `import lcrec`, or with `trust_remote_code=True`) rebuilds
    the base from the config's `base_model_name_or_path` and applies the adapter. The folder appears at once.
    """
    model = peft_model.get_base_model()
    if not isinstance(model, LCRecForCausalLM):
        raise ValueError(f"expected a PEFT model around an LCRecForCausalLM, got {type(model).__name__}")
    if not model.config.base_model_name_or_path:
        raise ValueError(
            "the base model has no name or path (built from a config?): save the full model with save_pretrained"
        )
    model.record_index()
    with atomic_dir(save_directory) as tmp:
        peft_model.save_pretrained(tmp, save_embedding_layers=False)
        model.config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(tmp)
        write_remote_code(tmp)
