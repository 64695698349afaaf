"""Model and dataset cards: card data read from the records training and evaluation write, rendered from templates
shipped inside the package. Below training, evaluation and the Hub, which all write or publish cards."""

from .card_templates import render_card
from .model_card import (
    CARD_RECORDS,
    METRICS_NAME,
    TRAINING_RESULTS,
    LCRecModelCardData,
    update_model_card_metrics,
    write_model_card,
)

__all__ = [
    "CARD_RECORDS",
    "METRICS_NAME",
    "TRAINING_RESULTS",
    "LCRecModelCardData",
    "render_card",
    "update_model_card_metrics",
    "write_model_card",
]
