"""lcrec: LC-Rec (generative recommendation with semantic item IDs) as a Hugging Face ecosystem package.

Importing it registers LC-Rec with AutoConfig / AutoTokenizer / AutoModel / AutoModelForCausalLM. The data,
task and Hub helpers below load on first use, so `import lcrec` pays only for transformers and torch.
"""

from importlib import import_module

from .configuration_lcrec import LCRecConfig
from .indexing import ItemIndex
from .modeling_lcrec import LCRecForCausalLM
from .registration import register_auto_classes
from .tokenization_lcrec import LCRecTokenizer

register_auto_classes()

__version__ = "0.1.0"

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
    "evaluate_model": "lcrec.evaluation.runner",
    "EvaluationConfig": "lcrec.evaluation.runner",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lcrec' has no attribute {name!r}")


__all__ = ["ItemIndex", "LCRecConfig", "LCRecForCausalLM", "LCRecTokenizer", "__version__", *_LAZY]
