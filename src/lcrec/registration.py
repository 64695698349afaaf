"""Register LC-Rec's config, tokenizer and model with the transformers Auto classes (run by `import lcrec`)."""

from __future__ import annotations


def register_auto_classes() -> None:
    """Make `AutoConfig` / `AutoTokenizer` / `AutoModel` / `AutoModelForCausalLM` resolve model_type `lcrec`.

    The `item-recommendation` pipeline task registers when `lcrec.generation.pipeline` is imported: importing
    transformers' pipeline machinery costs seconds, which every `lcrec` command would otherwise pay.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    from .configuration_lcrec import LCRecConfig
    from .modeling_lcrec import LCRecForCausalLM
    from .tokenization_lcrec import LCRecTokenizer

    AutoConfig.register(LCRecConfig.model_type, LCRecConfig, exist_ok=True)
    AutoTokenizer.register(LCRecConfig, tokenizer_class=LCRecTokenizer, exist_ok=True)
    AutoModel.register(LCRecConfig, LCRecForCausalLM, exist_ok=True)
    AutoModelForCausalLM.register(LCRecConfig, LCRecForCausalLM, exist_ok=True)
