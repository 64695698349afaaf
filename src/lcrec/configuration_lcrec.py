"""`LCRecConfig`: a base causal LM's config (`text_config`) plus the item-index metadata LC-Rec needs."""

from __future__ import annotations

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

INDEX_TOKEN_FORMAT = "<{letter}_{code}>"
_DECODER_ATTRIBUTES = frozenset({"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size"})


class LCRecConfig(PreTrainedConfig):
    """Configuration of `LCRecForCausalLM`.

    The base LM's config lives in `text_config` (the name transformers looks up in `get_text_config()`, so
    generation caches and embedding resizing see the real decoder). The index fields describe the semantic
    item IDs the model was built for; a tokenizer with a different index is refused when attached.
    `seqrec_templates` keeps the instructions recommend() renders, so prompts never drift from training.
    """

    model_type = "lcrec"
    sub_configs_defaults = {"text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama")}

    text_config: dict | PreTrainedConfig | None = None
    codebook_sizes: list[int] | None = None
    index_token_format: str = INDEX_TOKEN_FORMAT
    first_index_token_id: int | None = None
    num_items: int | None = None
    base_model_name_or_path: str | None = None
    seqrec_templates: list[str] | None = None
    max_history: int = 20
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        # Weight tying is the base LM's business; mirror its flag so the wrapper reports it truthfully.
        self.tie_word_embeddings = bool(getattr(self.text_config, "tie_word_embeddings", False))

    def __getattr__(self, name: str):
        # Only reached when normal lookup fails: tools that size things from `model.config` (DeepSpeed "auto"
        # buckets, FLOP estimates) read the decoder's dimensions through the wrapper.
        text_config = self.__dict__.get("text_config")
        if name in _DECODER_ATTRIBUTES and isinstance(text_config, PreTrainedConfig):
            return getattr(text_config, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @property
    def levels(self) -> int:
        """Number of codes (tokens) per item."""
        return len(self.codebook_sizes or ())


__all__ = ["LCRecConfig"]
