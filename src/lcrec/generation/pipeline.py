"""`pipeline("item-recommendation", model=DIR)`: histories of item ids in, ranked items with titles out.

Importing this module registers the task (`import lcrec.generation.pipeline`).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from transformers import Pipeline

TASK = "item-recommendation"


class ItemRecommendationPipeline(Pipeline):
    """Wraps `LCRecForCausalLM.recommend` as a transformers pipeline task.

    `pipe([1, 2, 3], top_k=5)` returns one ranked list; `pipe([[1, 2], [3]])` one list per history. Each entry
    is `{"item_id", "score", "title", "index"}`. Parameters: top_k, num_beams, template, skip_unknown.
    """

    _load_tokenizer = True
    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False

    def _sanitize_parameters(self, top_k=None, num_beams=None, template=None, skip_unknown=None, **kwargs):
        forward = {"top_k": top_k, "num_beams": num_beams, "template": template, "skip_unknown": skip_unknown}
        return {}, {key: value for key, value in forward.items() if value is not None}, {}

    def __call__(self, histories: Sequence[int] | Sequence[Sequence[int]], **kwargs):
        single = len(histories) > 0 and isinstance(histories[0], numbers.Integral)
        results = super().__call__([list(histories)] if single else [list(history) for history in histories], **kwargs)
        return results[0] if single else results

    def preprocess(self, history: Sequence[int]) -> dict:
        return {"history": [int(item) for item in history]}

    def _forward(self, model_inputs: dict, **recommend_kwargs) -> dict:
        (ranked,) = self.model.recommend([model_inputs["history"]], tokenizer=self.tokenizer, **recommend_kwargs)
        return {"ranked": ranked}

    def postprocess(self, model_outputs: dict) -> list[dict]:
        tokenizer = self.tokenizer
        return [{"item_id": item, "score": score, "title": tokenizer.title(item), "index": tokenizer.item_tokens(item)} for item, score in model_outputs["ranked"]]


def register_pipeline() -> None:
    from transformers import AutoModelForCausalLM
    from transformers.pipelines import PIPELINE_REGISTRY

    if TASK not in PIPELINE_REGISTRY.get_supported_tasks():
        PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=ItemRecommendationPipeline, pt_model=AutoModelForCausalLM)


register_pipeline()
