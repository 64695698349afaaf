"""Serving: a micro-batched HTTP API (`lcrec serve`), a Gradio demo (`lcrec demo`) and Hub Space files.

Import the web parts from their modules (`lcrec.serving.api`, `.demo`): they need the `serve` extras. Who may call
them is `lcrec.serving.auth` (an optional API key, or a demo login).
"""

from .batcher import MicroBatcher, QueueFull
from .config import RequestLimits, ServeConfig
from .recommender import RecommendedItem, Recommender, RequestError
from .space import write_space_files

__all__ = [
    "MicroBatcher",
    "QueueFull",
    "RecommendedItem",
    "Recommender",
    "RequestError",
    "RequestLimits",
    "ServeConfig",
    "write_space_files",
]
