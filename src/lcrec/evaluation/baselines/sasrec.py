"""SASRec (self-attentive sequential recommendation): a causal transformer over item-id sequences.

Item embeddings plus learned positions, pre-norm causal self-attention blocks, and scores as dot
products with the (shared) item embeddings. Loss: cross-entropy over all items (RecBole's default, the
stronger setting) or binary cross-entropy with one sampled negative per position (the original paper).
"""

from __future__ import annotations

import logging
import math
import os
import time
from argparse import SUPPRESS
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ...io_utils import read_json, save_with, write_json

logger = logging.getLogger(__name__)

CONFIG_NAME = "sasrec_config.json"
WEIGHTS_NAME = "sasrec.safetensors"
LOSSES = ("ce", "bce")


@dataclass
class SASRecConfig:
    """Architecture and training settings (defaults follow RecBole's SASRec, with a CPU-sized schedule)."""

    # Set from the dataset by fit_baseline (so hidden from `lcrec baseline`); a saved model records it.
    num_items: int = field(default=0, metadata={"help": SUPPRESS})
    # Set by training with item text vectors (`SASRec.add_item_text`): their width, folded into the item table.
    item_text_dim: int = field(default=0, metadata={"help": SUPPRESS})
    max_len: int = field(default=50, metadata={"help": "most recent items the model reads"})
    hidden_size: int = field(default=64, metadata={"help": "item embedding and transformer width"})
    num_layers: int = field(default=2, metadata={"help": "self-attention blocks"})
    num_heads: int = field(default=2, metadata={"help": "attention heads per block (must divide hidden_size)"})
    inner_size: int = field(default=256, metadata={"help": "feed-forward width"})
    dropout: float = field(default=0.3, metadata={"help": "dropout on embeddings, attention and feed-forward"})
    loss: Literal["ce", "bce"] = field(
        default="ce", metadata={"help": "ce: softmax over all items; bce: one sampled negative (the original paper)"}
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    batch_size: int = field(default=128, metadata={"help": "training windows per step"})
    max_epochs: int = field(default=200, metadata={"help": "most training epochs"})
    patience: int = field(default=5, metadata={"help": "epochs without a better validation NDCG@10 before stopping"})
    early_stopping: bool = field(
        default=True,
        metadata={
            "help": "keep the best validation epoch and stop after `patience` epochs without a better one; False: "
            "train max_epochs and keep the last (a distillation teacher is trained so)"
        },
    )
    max_seconds: float | None = field(
        default=None, metadata={"help": "training time budget in seconds (None: no limit but max_epochs)"}
    )
    seed: int = field(default=42, metadata={"help": "torch seed of initialisation, batches and negatives"})

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"SASRec loss must be one of {LOSSES}, got {self.loss!r}")
        if self.num_heads < 1 or self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.max_len < 1 or self.num_layers < 1 or self.inner_size < 1:
            raise ValueError("max_len, num_layers and inner_size must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.patience < 1:
            raise ValueError("batch_size, max_epochs and patience must be >= 1")
        if self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError(
                f"learning_rate must be > 0 and weight_decay >= 0, got {self.learning_rate}, {self.weight_decay}"
            )
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0 or None, got {self.max_seconds}")
        if self.num_items < 0 or self.item_text_dim < 0:
            raise ValueError(f"num_items and item_text_dim must be >= 0, got {self.num_items}, {self.item_text_dim}")


class _Block(nn.Module):
    """Pre-norm causal self-attention followed by a position-wise feed-forward layer."""

    def __init__(self, config: SASRecConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.attn_norm = nn.LayerNorm(config.hidden_size)
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.ffn_norm = nn.LayerNorm(config.hidden_size)
        self.ffn = nn.Sequential(
            nn.Linear(config.hidden_size, config.inner_size),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.inner_size, config.hidden_size),
        )
        self.dropout = nn.Dropout(config.dropout)
        self.attn_dropout = config.dropout

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, width = hidden.shape
        q, k, v = self.qkv(self.attn_norm(hidden)).view(batch, length, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        dropout = self.attn_dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        hidden = hidden + self.dropout(self.out(attended.transpose(1, 2).reshape(batch, length, width)))
        return hidden + self.dropout(self.ffn(self.ffn_norm(hidden)))


class ItemTextTable(nn.Module):
    """An item table that is a learnt id embedding plus a learnt projection of fixed item text vectors.

    Row 0 is padding (zero). Trained in place of the plain table, then folded into it (`SASRec.fold_item_text`),
    so a saved model is a plain SASRec whose item table carries what the text taught it.
    """

    def __init__(self, ids: nn.Embedding, text: torch.Tensor):
        super().__init__()
        self.ids = ids
        padded = torch.cat([torch.zeros(1, text.shape[1], dtype=torch.float32), text.float()])
        self.register_buffer("text", padded, persistent=False)
        self.projection = nn.Linear(text.shape[1], ids.embedding_dim, bias=False)
        nn.init.normal_(self.projection.weight, std=0.02)

    @property
    def weight(self) -> torch.Tensor:
        return self.ids.weight + self.projection(self.text)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return F.embedding(inputs, self.weight)


class SASRec(nn.Module):
    """Maps a left-padded sequence of item ids (shifted by one; 0 is padding) to next-item scores."""

    def __init__(self, config: SASRecConfig):
        super().__init__()
        if config.num_items < 1:
            raise ValueError("SASRecConfig.num_items must be set to the catalogue size")
        self.config = config
        self.item_embeddings = nn.Embedding(config.num_items + 1, config.hidden_size, padding_idx=0)
        self.position_embeddings = nn.Embedding(config.max_len, config.hidden_size)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()

    def add_item_text(self, text: np.ndarray) -> None:
        """Learn the item table as id embeddings plus a projection of `text` (num_items, dim), L2-normalised."""
        if text.ndim != 2 or text.shape[0] != self.config.num_items:
            raise ValueError(
                f"item text vectors must be ({self.config.num_items}, dim), one row per item, got {tuple(text.shape)}"
            )
        if not np.isfinite(text).all():
            raise ValueError("item text vectors contain NaN or infinite values")
        vectors = F.normalize(torch.from_numpy(np.asarray(text, dtype=np.float32)), dim=-1)
        self.item_embeddings = ItemTextTable(self.item_embeddings, vectors)
        self.config = replace(self.config, item_text_dim=int(text.shape[1]))

    def fold_item_text(self) -> None:
        """Replace an `ItemTextTable` by the plain table it computes (the same scores, no text needed)."""
        if isinstance(self.item_embeddings, ItemTextTable):
            table = self.item_embeddings.weight.detach().clone()
            table[0] = 0.0
            self.item_embeddings = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=0)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """(batch, length) shifted item ids -> (batch, length, hidden) states; position t sees items <= t."""
        length = inputs.shape[1]
        positions = torch.arange(length, device=inputs.device)
        hidden = self.item_embeddings(inputs) * math.sqrt(self.config.hidden_size) + self.position_embeddings(
            positions
        )
        valid = inputs > 0
        hidden = self.embedding_dropout(hidden) * valid.unsqueeze(-1)
        causal = torch.ones(length, length, dtype=torch.bool, device=inputs.device).tril()
        # Keys must be real items; each position may always see itself so padded rows never softmax over nothing.
        mask = (causal & valid[:, None, :]) | torch.eye(length, dtype=torch.bool, device=inputs.device)
        mask = mask.unsqueeze(1)
        for block in self.blocks:
            hidden = block(hidden, mask)
        return self.final_norm(hidden)

    def item_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Scores of all real items (item id order) for each state."""
        return states @ self.item_embeddings.weight[1:].T

    def loss(
        self, inputs: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Next-item loss at every position whose target is a real item (targets shifted, 0 = none)."""
        states = self.encode(inputs)
        keep = targets > 0
        states, positives = states[keep], targets[keep] - 1
        if self.config.loss == "ce":
            return F.cross_entropy(self.item_logits(states), positives)
        negatives = torch.randint(
            0, self.config.num_items, positives.shape, generator=generator, device=positives.device
        )
        # A sampled negative equal to the positive is moved to the next item, so it is always a true negative.
        negatives = torch.where(negatives == positives, (negatives + 1) % self.config.num_items, negatives)
        weights = self.item_embeddings.weight[1:]
        positive_logits = (states * weights[positives]).sum(-1)
        negative_logits = (states * weights[negatives]).sum(-1)
        return F.softplus(-positive_logits).mean() + F.softplus(negative_logits).mean()

    @torch.no_grad()
    def score(self, histories: Sequence[Sequence[int]], batch_size: int = 256) -> np.ndarray:
        """(len(histories), num_items) next-item scores from each history's last `max_len` items."""
        was_training = self.training
        self.eval()
        rows = []
        for start in range(0, len(histories), batch_size):
            inputs = torch.from_numpy(
                pad_left(
                    [h[-self.config.max_len :] for h in histories[start : start + batch_size]], self.config.max_len
                )
            )
            rows.append(self.item_logits(self.encode(inputs)[:, -1]).numpy())
        self.train(was_training)
        return np.concatenate(rows) if rows else np.zeros((0, self.config.num_items), dtype=np.float32)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write `sasrec_config.json` and `sasrec.safetensors` atomically."""
        from safetensors.torch import save_file

        directory = Path(directory)
        write_json(directory / CONFIG_NAME, asdict(self.config))
        state = {name: tensor.contiguous() for name, tensor in self.state_dict().items()}
        save_with(directory / WEIGHTS_NAME, lambda path: save_file(state, str(path)))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> SASRec:
        from safetensors.torch import load_file

        directory = Path(directory)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory}: no {name} (not a SASRec folder)")
        raw = read_json(directory / CONFIG_NAME, expect=dict)
        known = {entry.name for entry in fields(SASRecConfig)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{directory / CONFIG_NAME}: unknown keys {unknown}")
        model = cls(SASRecConfig(**raw))
        model.load_state_dict(load_file(str(directory / WEIGHTS_NAME)))
        model.eval()
        return model


def pad_left(sequences: Sequence[Sequence[int]], length: int) -> np.ndarray:
    """Item ids shifted by one (0 = padding), right-aligned in a (len(sequences), length) int64 array."""
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        sequence = list(sequence)[-length:]
        if sequence:
            out[row, length - len(sequence) :] = np.asarray(sequence, dtype=np.int64) + 1
    return out


def training_windows(sequences: Sequence[Sequence[int]], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut each training sequence, from its end, into windows of max_len+1 items overlapping by one.

    Every consecutive pair (item, next item) of every sequence is a training position exactly once.
    Returns (inputs, targets), both shifted by one and left-padded.
    """
    inputs, targets = [], []
    for sequence in sequences:
        sequence = list(sequence)
        end = len(sequence)
        while end >= 2:
            window = sequence[max(0, end - max_len - 1) : end]
            inputs.append(window[:-1])
            targets.append(window[1:])
            end -= max_len
    return pad_left(inputs, max_len), pad_left(targets, max_len)


def train_sasrec(
    sequences: Sequence[Sequence[int]],
    config: SASRecConfig,
    validate: Callable[[SASRec], float] | None = None,
    item_text: np.ndarray | None = None,
) -> tuple[SASRec, list[dict]]:
    """Train on full training sequences; `validate(model) -> score` (higher is better) drives early stopping.

    Keeps the weights of the best validation epoch (with `config.early_stopping` and `validate`, else the last);
    `config.max_seconds` caps the wall time. `item_text` (num_items, dim) adds text vectors to the item table
    while training (`SASRec.add_item_text`); the returned model has them folded in. Returns the model and a
    per-epoch log.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = SASRec(config)
    if item_text is not None:
        model.add_item_text(item_text)
    inputs, targets = (torch.from_numpy(array) for array in training_windows(sequences, config.max_len))
    if len(inputs) == 0:
        raise ValueError("no training sequence has two or more items")
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    best_score, best_state, stale, history = -math.inf, None, 0, []
    # Without validation, or with early stopping off, every epoch runs and the last one is kept.
    stopping = validate is not None and config.early_stopping
    started = time.perf_counter()
    progress = tqdm(range(config.max_epochs), desc="SASRec", unit="epoch")
    for epoch in progress:
        model.train()
        order = torch.randperm(len(inputs), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = model.loss(inputs[batch], targets[batch], generator)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        entry = {"epoch": epoch + 1, "loss": total / len(order), "seconds": round(time.perf_counter() - started, 2)}
        if validate is not None:
            entry["validation"] = float(validate(model))
        if stopping and entry["validation"] > best_score:
            best_score, stale = entry["validation"], 0
            best_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        elif stopping:
            stale += 1
        history.append(entry)
        progress.set_postfix({key: round(value, 4) for key, value in entry.items() if key in ("loss", "validation")})
        if stale >= config.patience:
            logger.info("SASRec: early stop after epoch %d (best validation %.4f)", epoch + 1, best_score)
            break
        if config.max_seconds is not None and time.perf_counter() - started > config.max_seconds:
            logger.info("SASRec: time budget of %.0f s reached after epoch %d", config.max_seconds, epoch + 1)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.fold_item_text()
    model.eval()
    return model, history
