"""Item text embeddings from any Hugging Face encoder or causal LM (masked mean of the last hidden state).

Paper mode embeds each text field on its own and averages the field vectors; concat mode embeds the
fields joined into one text. Results are cached in `embeddings.safetensors`, keyed by encoder, settings
and a hash of every text, so a rerun on the same catalogue skips the work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..io_utils import save_with

logger = logging.getLogger(__name__)

EMBEDDINGS_NAME = "embeddings.safetensors"
MODES = ("paper", "concat")
TEXT_FIELDS = ("title", "description", "brand", "categories")
DEFAULT_FIELDS = ("title", "description")


@dataclass
class ItemTexts:
    """The text pieces embedded for each item, and which items needed the fallback fields."""

    pieces: list[list[str]]
    fallback_items: list[int] = field(default_factory=list)
    missing_field_items: int = 0


def item_text_pieces(items: Sequence[Mapping[str, object]], fields: Sequence[str] = DEFAULT_FIELDS) -> ItemTexts:
    """Non-empty values of `fields` per item; an item with none falls back to its other text fields (counted).

    An item with no text at all raises a ValueError naming it.
    """
    pieces, fallback, missing, empty = [], [], 0, []
    for position, item in enumerate(items):
        item_id = int(item.get("item_id", position))
        chosen = [str(item.get(name) or "").strip() for name in fields]
        kept = [text for text in chosen if text]
        if len(kept) < len(chosen):
            missing += 1
        if not kept:
            kept = [text for name in TEXT_FIELDS if name not in fields and (text := str(item.get(name) or "").strip())]
            (fallback if kept else empty).append(item_id)
        pieces.append(kept)
    if empty:
        raise ValueError(f"{len(empty)} items have no text in any of {sorted({*fields, *TEXT_FIELDS})}, e.g. items {empty[:10]}")
    if missing:
        logger.info("%d items lack some of %s; each is embedded from the fields it has", missing, list(fields))
    if fallback:
        logger.warning("%d items have no %s; embedded from their other text fields instead, e.g. items %s", len(fallback), list(fields), fallback[:10])
    return ItemTexts(pieces, fallback, missing)


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` -> the GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TextEmbedder:
    """Masked mean pooling of a Hugging Face model's last hidden state; batches texts of similar length."""

    def __init__(self, encoder: str | os.PathLike, device: str = "auto", max_length: int = 256, batch_size: int = 64, dtype: torch.dtype | None = None):
        from transformers import AutoModel, AutoTokenizer

        self.name = str(encoder)
        self.device = resolve_device(device)
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.name)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        if dtype is None:
            dtype = torch.bfloat16 if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        self.model = AutoModel.from_pretrained(self.name, dtype=dtype).to(self.device).eval()

    @property
    def dim(self) -> int:
        return int(self.model.config.get_text_config().hidden_size)

    @torch.no_grad()
    def embed(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        """(len(texts), hidden) float32 array, rows in input order."""
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        order = np.argsort([len(ids) for ids in encoded], kind="stable")[::-1]
        result = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        for rows in tqdm(batches, desc=f"embed ({Path(self.name).name})", unit="batch", disable=not progress):
            batch = self.tokenizer.pad({"input_ids": [encoded[row] for row in rows]}, return_tensors="pt").to(self.device)
            hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            result[rows] = ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1)).cpu().numpy()
        return result


def embedding_key(encoder: str, fields: Sequence[str], mode: str, max_length: int, pieces: Sequence[Sequence[str]]) -> str:
    """SHA-256 over the encoder, the settings and every item's text pieces: equal keys mean equal embeddings."""
    digest = hashlib.sha256(json.dumps({"encoder": encoder, "fields": list(fields), "mode": mode, "max_length": max_length}).encode())
    for item_pieces in pieces:
        digest.update(json.dumps(item_pieces, ensure_ascii=False).encode())
    return digest.hexdigest()


def check_finite(embeddings: np.ndarray, item_ids: Sequence[int]) -> None:
    """Raise a ValueError naming the items whose embedding contains NaN or inf."""
    bad = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
    if len(bad):
        raise ValueError(f"{len(bad)} item embeddings contain NaN or inf, e.g. items {[int(item_ids[row]) for row in bad[:10]]}")


def embed_items(
    items: Sequence[Mapping[str, object]],
    encoder: str | os.PathLike,
    fields: Sequence[str] = DEFAULT_FIELDS,
    mode: str = "paper",
    cache_path: str | os.PathLike | None = None,
    device: str = "auto",
    max_length: int = 256,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """(num_items, hidden) embeddings of `items` (dicts with text fields, in item order), cached at `cache_path`."""
    from safetensors.numpy import load_file, save_file

    if mode not in MODES:
        raise ValueError(f"embedding mode must be one of {MODES}, got {mode!r}")
    if not items:
        raise ValueError("no items to embed")
    texts = item_text_pieces(items, fields)
    pieces = texts.pieces if mode == "paper" else [[" ".join(item_pieces)] for item_pieces in texts.pieces]
    key = embedding_key(str(encoder), fields, mode, max_length, pieces)
    cache = Path(cache_path) if cache_path else None
    if cache is not None and cache.is_file():
        from safetensors import safe_open

        with safe_open(str(cache), framework="numpy") as handle:
            cached_key = (handle.metadata() or {}).get("key")
        if cached_key == key:
            logger.info("embeddings: reusing %s", cache)
            return load_file(str(cache))["embeddings"]
    embedder = TextEmbedder(encoder, device=device, max_length=max_length, batch_size=batch_size)
    unique = sorted({text for item_pieces in pieces for text in item_pieces})
    vectors = embedder.embed(unique, progress=progress)
    row_of = {text: row for row, text in enumerate(unique)}
    embeddings = np.stack([vectors[[row_of[text] for text in item_pieces]].mean(axis=0) for item_pieces in pieces]).astype(np.float32)
    check_finite(embeddings, [int(item.get("item_id", position)) for position, item in enumerate(items)])
    if cache is not None:
        metadata = {"key": key, "encoder": str(encoder), "fields": ",".join(fields), "mode": mode, "max_length": str(max_length)}
        save_with(cache, lambda path: save_file({"embeddings": embeddings}, str(path), metadata=metadata))
    return embeddings
