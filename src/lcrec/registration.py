"""Register LC-Rec's config, tokenizer and model with the transformers Auto classes (run by `import lcrec`)."""

from __future__ import annotations


def register_auto_classes() -> None:
    """Make the Auto classes resolve model_type `lcrec`, and add the `item-recommendation` pipeline task."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    from .configuration_lcrec import LCRecConfig
    from .generation.pipeline import register_pipeline
    from .modeling_lcrec import LCRecForCausalLM
    from .tokenization_lcrec import LCRecTokenizer

    AutoConfig.register(LCRecConfig.model_type, LCRecConfig, exist_ok=True)
    AutoTokenizer.register(LCRecConfig, tokenizer_class=LCRecTokenizer, exist_ok=True)
    AutoModel.register(LCRecConfig, LCRecForCausalLM, exist_ok=True)
    AutoModelForCausalLM.register(LCRecConfig, LCRecForCausalLM, exist_ok=True)
    register_pipeline()
