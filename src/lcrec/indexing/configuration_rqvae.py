"""`RQVAEConfig`: the shape of an RQ-VAE (plain data, saved as `rqvae_config.json`)."""

from __future__ import annotations

import os
from argparse import SUPPRESS
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..io_utils import read_json, write_json

CONFIG_NAME = "rqvae_config.json"
WEIGHTS_NAME = "rqvae.safetensors"


@dataclass
class RQVAEConfig:
    """RQ-VAE hyper-parameters; defaults follow the paper (4 levels x 256 codes of dimension 32).

    The paper's MLP halves 4096-d LLaMA vectors down to 32; the default here halves a 384-d MiniLM vector
    (384 -> 256 -> 128 -> 64 -> 32), which also keeps CPU training to minutes.

    `sinkhorn_levels` lists the levels (negative counts from the end) whose training-time assignment uses
    Sinkhorn-Knopp; the paper uses the last level only. `embedding` records how the input vectors were
    made (encoder, fields, mode) so new items can be embedded the same way.
    """

    # Set by build_index from the embeddings, so not a command-line option (SUPPRESS hides it from `lcrec index`).
    input_dim: int = field(default=384, metadata={"help": SUPPRESS})
    hidden_sizes: list[int] = field(
        default_factory=lambda: [256, 128, 64], metadata={"help": "encoder MLP widths (the decoder mirrors them)"}
    )
    code_dim: int = field(default=32, metadata={"help": "dimension of the codewords (the encoder's output)"})
    codebook_sizes: list[int] = field(
        default_factory=lambda: [256, 256, 256, 256],
        metadata={"help": "codes per level, one size per level (their count is the number of levels)"},
    )
    commitment_weight: float = field(
        default=0.25, metadata={"help": "weight of the commitment loss (encoder output towards its codeword)"}
    )
    dropout: float = field(default=0.0, metadata={"help": "dropout in the encoder and decoder MLPs"})
    sinkhorn_levels: list[int] = field(
        default_factory=lambda: [-1],
        metadata={"help": "levels assigned with Sinkhorn-Knopp during training (negative: from the end; -1: last)"},
    )
    sinkhorn_epsilon: float = field(default=0.003, metadata={"help": "entropic regularisation of Sinkhorn-Knopp"})
    sinkhorn_iterations: int = field(default=50, metadata={"help": "Sinkhorn-Knopp iterations per assignment"})
    kmeans_init: bool = field(
        default=True, metadata={"help": "initialise each codebook with k-means on the first batch"}
    )
    kmeans_iterations: int = field(default=25, metadata={"help": "k-means iterations of that initialisation"})
    # Written by build_index (encoder, fields, mode) so new items are embedded the same way; not an option.
    embedding: dict = field(default_factory=dict, metadata={"help": SUPPRESS})

    def __post_init__(self) -> None:
        self.hidden_sizes = [int(size) for size in self.hidden_sizes]
        self.codebook_sizes = [int(size) for size in self.codebook_sizes]
        self.sinkhorn_levels = [int(level) for level in self.sinkhorn_levels]
        if self.input_dim < 1 or self.code_dim < 1:
            raise ValueError(f"input_dim and code_dim must be positive, got {self.input_dim} and {self.code_dim}")
        if not self.codebook_sizes or any(size < 1 for size in self.codebook_sizes):
            raise ValueError(f"codebook_sizes must be a non-empty list of positive sizes, got {self.codebook_sizes}")
        if any(size < 1 for size in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive, got {self.hidden_sizes}")
        for level in self.sinkhorn_levels:
            if not -self.levels <= level < self.levels:
                raise ValueError(f"sinkhorn_levels: level {level} does not exist with {self.levels} levels")
        if self.sinkhorn_epsilon <= 0 or self.sinkhorn_iterations < 1:
            raise ValueError("sinkhorn_epsilon must be > 0 and sinkhorn_iterations >= 1")
        if self.commitment_weight < 0:
            raise ValueError(f"commitment_weight must be >= 0, got {self.commitment_weight}")
        if self.kmeans_iterations < 1:
            raise ValueError(f"kmeans_iterations must be >= 1, got {self.kmeans_iterations}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def levels(self) -> int:
        return len(self.codebook_sizes)

    def uses_sinkhorn(self, level: int) -> bool:
        """Whether `level` (0-based) is assigned with Sinkhorn-Knopp during training."""
        return any(level == chosen % self.levels for chosen in self.sinkhorn_levels)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RQVAEConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"rqvae config: unknown keys {unknown}")
        return cls(**data)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        write_json(Path(folder) / CONFIG_NAME, self.to_dict())

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> RQVAEConfig:
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no RQ-VAE config (is {folder} an index folder written by `lcrec index`?)"
            )
        return cls.from_dict(read_json(path, expect=dict))
