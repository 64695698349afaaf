"""Register LC-Rec with transformers (run by `import lcrec`): the Auto classes and the `item-recommendation` task."""

from __future__ import annotations


def register_auto_classes() -> None:
    """Make `AutoConfig` / `AutoTokenizer` / `AutoModel` / `AutoModelForCausalLM` resolve model_type `lcrec`, and
    `pipeline("item-recommendation", ...)` resolve lcrec's pipeline (transformers' pipeline module is already loaded
    with the model classes: registering costs about 20 ms)."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    from .configuration_lcrec import LCRecConfig
    from .generation.recommendation import register_pipeline
    from .modeling_lcrec import LCRecForCausalLM
    from .tokenization_lcrec import LCRecTokenizer

    AutoConfig.register(LCRecConfig.model_type, LCRecConfig, exist_ok=True)
    AutoTokenizer.register(LCRecConfig, tokenizer_class=LCRecTokenizer, exist_ok=True)
    AutoModel.register(LCRecConfig, LCRecForCausalLM, exist_ok=True)
    AutoModelForCausalLM.register(LCRecConfig, LCRecForCausalLM, exist_ok=True)
    register_pipeline()
