"""`LCRecConfig`: a base causal LM's config (`text_config`) plus the item-index metadata LC-Rec needs."""

from __future__ import annotations

from transformers import AutoConfig, GenerationConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .prompts import DEFAULT_MAX_HISTORY, INSTRUCTION_FORMAT

INDEX_TOKEN_FORMAT = "<{letter}_{code}>"
# Beams of recommend(), evaluation, the pipeline and the server unless told otherwise (generation_config.num_beams).
DEFAULT_NUM_BEAMS = 20
RECOMMENDATION_TASK = "item-recommendation"
# What every saved config.json declares, so `trust_remote_code=True` loads the folder where lcrec is not installed.
MODEL_AUTO_MAP = {
    "AutoConfig": "configuration_lcrec.LCRecConfig",
    "AutoModel": "modeling_lcrec.LCRecForCausalLM",
    "AutoModelForCausalLM": "modeling_lcrec.LCRecForCausalLM",
}
CUSTOM_PIPELINES = {
    RECOMMENDATION_TASK: {"impl": "recommendation.ItemRecommendationPipeline", "pt": ["AutoModelForCausalLM"]}
}
# Installed as the `lcrec` package (not loaded as a folder's remote code): `import lcrec` registers the pipeline task,
# and a `custom_pipelines` entry would make transformers demand trust_remote_code for it.
_INSTALLED = __name__ == "lcrec.configuration_lcrec"
_DECODER_ATTRIBUTES = frozenset(
    {
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "intermediate_size",
    }
)


class LCRecConfig(PreTrainedConfig):
    """Configuration of `LCRecForCausalLM`.

    The base LM's config lives in `text_config` (the name transformers looks up in `get_text_config()`, so
    generation caches and embedding resizing see the real decoder). The index fields describe the semantic
    item IDs the model was built for: `index_fingerprint` identifies the exact index, and a tokenizer whose index
    differs is refused when attached. `seqrec_templates` keeps the instructions recommend() renders, so prompts
    never drift from training; `max_history` is the history window training used. `seqrec_format` says how
    recommend() asks (`lcrec.prompts.SEQREC_FORMATS`): "instruction" (a seqrec template, the paper's) or "sequence"
    (the history as an item sequence to continue, for models trained on the `sequence` task; their one template is
    the sequence instruction).
    """

    model_type = "lcrec"
    sub_configs_defaults = {"text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama")}

    text_config: dict | PreTrainedConfig | None = None
    codebook_sizes: list[int] | None = None
    index_token_format: str = INDEX_TOKEN_FORMAT
    first_index_token_id: int | None = None
    num_items: int | None = None
    index_fingerprint: str | None = None
    base_model_name_or_path: str | None = None
    seqrec_templates: list[str] | None = None
    max_history: int = DEFAULT_MAX_HISTORY
    seqrec_format: str = INSTRUCTION_FORMAT
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        if _INSTALLED:
            kwargs.pop("custom_pipelines", None)
        kwargs.pop("auto_map", None)
        super().__post_init__(**kwargs)
        # transformers looks for remote code in the config object's `auto_map`: every config carries the same one.
        self.auto_map = dict(MODEL_AUTO_MAP)
        # Weight tying is the base LM's business; mirror its flag so the wrapper reports it truthfully.
        self.tie_word_embeddings = bool(getattr(self.text_config, "tie_word_embeddings", False))

    def __getattr__(self, name: str):
        # Only reached when normal lookup fails: tools that size things from `model.config` (DeepSpeed "auto"
        # buckets, FLOP estimates, PEFT's vocabulary check) read the decoder's dimensions through the wrapper.
        text_config = self.__dict__.get("text_config")
        if name in _DECODER_ATTRIBUTES and isinstance(text_config, PreTrainedConfig):
            return getattr(text_config, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path, **kwargs):
        """A folder holding a base LM's own config reads as an LC-Rec config around it (no index yet).

        PEFT does this when it saves a checkpoint: it loads the base model's folder through `model.config`'s
        class to compare vocabulary sizes. Read as-is, transformers would warn that a `llama` config is used
        for an `lcrec` model and build a default Llama inside.
        """
        config_dict, kwargs = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        if config_dict.get("model_type", cls.model_type) != cls.model_type:
            config_dict = {"model_type": cls.model_type, "text_config": config_dict}
        return config_dict, kwargs

    def to_dict(self) -> dict:
        output = super().to_dict()
        output["custom_pipelines"] = {task: dict(entry) for task, entry in CUSTOM_PIPELINES.items()}
        return output

    @property
    def levels(self) -> int:
        """Number of codes (tokens) per item."""
        return len(self.codebook_sizes or ())


def default_generation_config(config: LCRecConfig) -> GenerationConfig:
    """The generation config every model lcrec builds carries: deterministic beam search with DEFAULT_NUM_BEAMS
    beams (the default of recommend(), evaluation, the pipeline and the server) and the model's special tokens."""
    return GenerationConfig(
        num_beams=DEFAULT_NUM_BEAMS,
        do_sample=False,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )


__all__ = ["DEFAULT_NUM_BEAMS", "LCRecConfig", "default_generation_config"]
