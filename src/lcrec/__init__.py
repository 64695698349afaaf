"""lcrec: LC-Rec (generative recommendation with semantic item IDs) as a Hugging Face ecosystem package.

Importing it registers LC-Rec with AutoConfig / AutoTokenizer / AutoModel / AutoModelForCausalLM and the
`item-recommendation` pipeline task. The data, task and Hub helpers below load on first use, so `import lcrec`
pays only for torch and transformers' model classes (lcrec's own modules add about 40 ms).
"""

from importlib import import_module
from importlib.metadata import version

from .configuration_lcrec import LCRecConfig
from .indexing import ItemIndex
from .modeling_lcrec import LCRecForCausalLM
from .registration import register_auto_classes
from .tokenization_lcrec import LCRecTokenizer

register_auto_classes()

__version__ = version("lcrec")

_LAZY = {
    "prepare_dataset": "lcrec.data",
    "load_prepared": "lcrec.data",
    "build_index": "lcrec.indexing",
    "TaskMix": "lcrec.tasks",
    "build_task_mix": "lcrec.tasks",
    "build_validation_mix": "lcrec.tasks",
    "load_index": "lcrec.hub",
    "lora_config_for": "lcrec.lora",
    "save_adapter": "lcrec.lora",
    "evaluate_model": "lcrec.evaluation",
    "EvaluationConfig": "lcrec.evaluation",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lcrec' has no attribute {name!r}")


__all__ = ["ItemIndex", "LCRecConfig", "LCRecForCausalLM", "LCRecTokenizer", "__version__", *_LAZY]
