"""Publish lcrec artifacts to the Hugging Face Hub and load them back.

- `dataset_repo`: a prepared dataset (+ item index, + task mix) as a dataset repo; `load_index` reads an index back.
- `model_repo`: a model folder (or a loaded model) as a model repo, after checking its index.
- `commit`: every push stages the complete repo and sends it as one commit.
Cards are rendered by `lcrec.cards` (templates are package data; `LCREC_MODEL_CARDS` names another folder).
"""

from ..cards import LCRecModelCardData, update_model_card_metrics, write_model_card
from .commit import PushResult, StagedRepo, push_folder
from .dataset_repo import load_index, push_dataset, stage_dataset
from .model_repo import check_model_index, push_model, push_pretrained, stage_model

__all__ = [
    "LCRecModelCardData",
    "PushResult",
    "StagedRepo",
    "check_model_index",
    "load_index",
    "push_dataset",
    "push_folder",
    "push_model",
    "push_pretrained",
    "stage_dataset",
    "stage_model",
    "update_model_card_metrics",
    "write_model_card",
]
