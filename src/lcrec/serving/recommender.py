"""`Recommender`: a loaded LC-Rec model with its catalogue; validates requests, ranks items, searches titles."""

from __future__ import annotations

import logging
import numbers
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..cards.model_card import METRICS_NAME
from ..evaluation.metrics import METRIC_NAMES
from ..io_utils import read_json
from .config import RequestLimits

logger = logging.getLogger(__name__)

RUN_KEYS = ("num_users", "num_beams", "invalid_rate", "users_per_second")


class RequestError(ValueError):
    """A request the model cannot answer as given (answered with HTTP 422); the message names the problem."""


@dataclass(frozen=True)
class RecommendedItem:
    """One ranked recommendation: the item, its title and the model's score (higher is better)."""

    rank: int
    item_id: int
    title: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Recommender:
    """Wraps `LCRecForCausalLM.recommend()` with request validation, titles and a title search.

    The model and tokenizer follow the team contract: `model.recommend(histories, top_k, num_beams,
    batch_size)` and `tokenizer.item_index` / `tokenizer.titles`.
    """

    def __init__(
        self,
        model,
        tokenizer,
        config: RequestLimits | None = None,
        metrics: dict[str, Any] | None = None,
        name: str = "model",
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or RequestLimits()
        self.metrics = metrics
        self.name = name
        self.item_ids: list[int] = [int(item) for item in tokenizer.item_index.item_ids]
        self._known = set(self.item_ids)
        titles = getattr(tokenizer, "titles", None) or {}
        self.titles: dict[int, str] = {item: str(titles.get(item) or f"item {item}") for item in self.item_ids}
        self._search_keys = [(item, self.titles[item].casefold()) for item in self.item_ids]

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        config: RequestLimits | None = None,
        device: str | None = None,
        metrics_path: str | None = None,
    ) -> Recommender:
        """Load a saved LC-Rec model folder or Hub repo (full weights or an adapter folder) with its tokenizer.

        `device` None: cuda when available, else cpu (`lcrec serve` checks a given device before loading).
        """
        import torch

        from ..modeling_lcrec import LCRecForCausalLM
        from ..tokenization_lcrec import LCRecTokenizer

        if os.path.exists(name_or_path) and not os.path.isdir(name_or_path):
            raise ValueError(f"--model {name_or_path}: expected a model folder or a Hub repo id, got a file")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = LCRecForCausalLM.from_pretrained(name_or_path)
        tokenizer = model.tokenizer or LCRecTokenizer.from_pretrained(name_or_path)
        model.to(device).eval()
        metrics = load_metrics(metrics_path) if metrics_path else find_model_metrics(name_or_path)
        logger.info(
            "loaded %s: %d items, device %s, metrics %s",
            name_or_path,
            len(tokenizer.item_index.item_ids),
            device,
            "found" if metrics else "not found",
        )
        return cls(model, tokenizer, config=config, metrics=metrics, name=name_or_path)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def check_request(self, histories: object, top_k: int, num_beams: int | None) -> list[list[int]]:
        """The histories as lists of int item ids, or RequestError naming the first problem.

        Histories go through the model's one history check (`lcrec.prompts.check_histories`: one history or a list
        of them; a bool, float or string is never an item id; unknown and empty refused), then this server's limits
        apply to their number and length and to top_k and num_beams.
        """
        from ..prompts import check_histories

        limits = self.config
        max_top_k = min(limits.max_top_k, self.num_items)
        if not _is_integer(top_k) or not 1 <= top_k <= max_top_k:
            raise RequestError(f"top_k={top_k!r} is out of range: must be an integer between 1 and {max_top_k}")
        if num_beams is not None and (not _is_integer(num_beams) or not top_k <= num_beams <= limits.max_num_beams):
            raise RequestError(
                f"num_beams={num_beams!r} is out of range: must be an integer between top_k={top_k} and "
                f"{limits.max_num_beams}"
            )
        try:
            checked = check_histories(histories, self._known)
        except KeyError as error:
            raise RequestError(f"{error.args[0]} (the model's catalogue has {self.num_items} items)") from None
        except (TypeError, ValueError) as error:
            raise RequestError(str(error)) from None
        if not checked:
            raise RequestError("no histories given: send a non-empty `history` or `histories`")
        for user, history in enumerate(checked):
            if len(history) > limits.max_history:
                raise RequestError(f"history {user} has {len(history)} items; at most {limits.max_history} allowed")
        return checked

    def recommend(
        self, histories: object, top_k: int | None = None, num_beams: int | None = None
    ) -> list[list[RecommendedItem]]:
        """Validate (`check_request`), then rank items for every history (`rank`)."""
        top_k = self.config.default_top_k if top_k is None else top_k
        return self.rank(self.check_request(histories, top_k, num_beams), top_k, num_beams)

    def rank(self, histories: list[list[int]], top_k: int, num_beams: int | None) -> list[list[RecommendedItem]]:
        """Top-`top_k` items per checked history, all through one decoder call (one prefill, one decoding loop).

        No request limits apply here: the server ranks a whole micro-batch with its beam count as top_k.
        """
        ranked = self.model.recommend(histories, top_k=top_k, num_beams=num_beams)
        return [
            [
                RecommendedItem(rank=rank, item_id=int(item), title=self.titles[int(item)], score=float(score))
                for rank, (item, score) in enumerate(items, start=1)
            ]
            for items in ranked
        ]

    def search(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        """Items whose title contains every word of `query` (case-insensitive); titles starting with it first.

        A query that is an item id also matches that item. An empty query lists the catalogue's first items.
        """
        if limit < 1:
            raise RequestError(f"limit={limit} must be >= 1")
        words = query.casefold().split()
        phrase = " ".join(words)
        hits: list[tuple[int, int]] = []
        text = query.strip()
        if text.isascii() and text.isdecimal() and len(text) <= 19 and int(text) in self._known:
            hits.append((-1, int(text)))
        for item, title in self._search_keys:
            if all(word in title for word in words):
                hits.append((0 if phrase and title.startswith(phrase) else 1, item))
        seen: set[int] = set()
        found = []
        for _, item in sorted(hits):
            if item not in seen:
                seen.add(item)
                found.append({"item_id": item, "title": self.titles[item]})
            if len(found) == limit:
                break
        return found


def load_metrics(path: str | os.PathLike) -> dict[str, Any]:
    """Read a metrics.json written by `lcrec evaluate` (a JSON object)."""
    return read_json(path, expect=dict)


def find_model_metrics(name_or_path: str) -> dict[str, Any] | None:
    """The model's evaluation metrics: metrics.json in the folder or repo, else the model card's eval results.

    For a local folder, a metrics.json beside it counts too (`lcrec quickstart` writes OUT/model and OUT/metrics.json).
    """
    if os.path.isdir(name_or_path):
        folder = Path(name_or_path)
        for candidate in (folder / METRICS_NAME, folder.resolve().parent / METRICS_NAME):
            if candidate.is_file():
                logger.info("showing metrics from %s", candidate)
                return load_metrics(candidate)
        card = folder / "README.md"
        return _card_metrics(card) if card.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for filename, reader in ((METRICS_NAME, load_metrics), ("README.md", _card_metrics)):
        try:
            found = reader(hf_hub_download(name_or_path, filename))
        except EntryNotFoundError:  # local (offline cache) and remote misses alike
            continue
        if found:
            return found
    return None


def _card_metrics(card_path: str | os.PathLike) -> dict[str, Any] | None:
    """Metrics from a model card's `model-index` (name -> value), or None when the card has none."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(card_path)
    results = getattr(card.data, "eval_results", None) or []
    metrics = {result.metric_name or result.metric_type: result.metric_value for result in results}
    return metrics or None


def _is_integer(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool: True and 12.0 are never item ids."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def format_metrics(metrics: dict[str, Any] | None) -> str:
    """A Markdown table of the headline metrics (HR@K, NDCG@K and run facts), for the demo page.

    A record without the metrics.json keys (e.g. a model card's own names) is shown whole (numbers only).
    """
    if not metrics:
        return "No evaluation metrics found for this model (no metrics.json or model-card results)."
    rows = [(key, metrics[key]) for key in METRIC_NAMES + RUN_KEYS if key in metrics]
    if not any(key in metrics for key in METRIC_NAMES):
        rows = [
            (key, value)
            for key, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        ]
    lines = ["| metric | value |", "|---|---|"]
    lines += [
        f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |" for key, value in rows
    ]
    return "\n".join(lines)
