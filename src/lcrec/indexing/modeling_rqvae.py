"""`RQVAE`: MLP auto-encoder with residual quantisation, the model behind LC-Rec's item indices."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..io_utils import save_with
from .configuration_rqvae import WEIGHTS_NAME, RQVAEConfig
from .kmeans import kmeans, squared_distances
from .sinkhorn import sinkhorn_assign


@dataclass
class RQVAEOutput:
    """What one forward pass gives: the reconstruction, the codes, and the paper's loss terms."""

    reconstruction: torch.Tensor
    codes: torch.Tensor
    loss: torch.Tensor
    reconstruction_loss: torch.Tensor
    quantization_loss: torch.Tensor
    quantized: torch.Tensor | None = None  # the quantised latent (sum of codewords, straight-through gradients)


def _mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    """Linear layers with ReLU (and dropout) between them, none after the last; Xavier-normal weights."""
    layers: list[nn.Module] = []
    for position, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(fan_in, fan_out)
        nn.init.xavier_normal_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if position < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class RQVAE(nn.Module):
    """Encoder -> residual quantiser (one codebook per level) -> decoder, trained with the paper's loss."""

    def __init__(self, config: RQVAEConfig):
        super().__init__()
        self.config = config
        self.encoder = _mlp([config.input_dim, *config.hidden_sizes, config.code_dim], config.dropout)
        self.decoder = _mlp([config.code_dim, *reversed(config.hidden_sizes), config.input_dim], config.dropout)
        self.codebooks = nn.ParameterList(
            nn.Parameter(torch.empty(size, config.code_dim).uniform_(-1.0 / size, 1.0 / size))
            for size in config.codebook_sizes
        )
        self.register_buffer("codebooks_initialized", torch.tensor(not config.kmeans_init))

    @property
    def levels(self) -> int:
        return self.config.levels

    def forward(self, inputs: torch.Tensor, use_sinkhorn: bool = True) -> RQVAEOutput:
        """Reconstruct `inputs`; with `use_sinkhorn`, levels in `config.sinkhorn_levels` pick codes with Sinkhorn."""
        if not bool(self.codebooks_initialized):
            self.initialize_codebooks(inputs)
        latent = self.encoder(inputs)
        residual = latent
        quantized = torch.zeros_like(latent)
        codes, level_losses = [], []
        for level, codebook in enumerate(self.codebooks):
            distances = squared_distances(residual, codebook)
            code = self._pick(level, distances, use_sinkhorn)
            codeword = codebook[code]
            level_losses.append(
                F.mse_loss(codeword, residual.detach())
                + self.config.commitment_weight * F.mse_loss(codeword.detach(), residual)
            )
            quantized = quantized + residual + (codeword - residual).detach()
            residual = residual - codeword.detach()
            codes.append(code)
        reconstruction = self.decoder(quantized)
        reconstruction_loss = F.mse_loss(reconstruction, inputs)
        quantization_loss = torch.stack(level_losses).mean()
        return RQVAEOutput(
            reconstruction,
            torch.stack(codes, dim=1),
            reconstruction_loss + quantization_loss,
            reconstruction_loss,
            quantization_loss,
            quantized,
        )

    @torch.no_grad()
    def initialize_codebooks(self, inputs: torch.Tensor, seed: int = 0) -> None:
        """k-means on the batch's residuals, level by level (the paper's first-batch initialisation)."""
        generator = torch.Generator().manual_seed(seed)
        residual = self.encoder(inputs)
        for codebook in self.codebooks:
            centroids = kmeans(residual, codebook.shape[0], self.config.kmeans_iterations, generator)
            codebook.copy_(centroids)
            residual = residual - codebook[squared_distances(residual, codebook).argmin(1)]
        self.codebooks_initialized.fill_(True)

    @torch.no_grad()
    def encode(self, inputs: torch.Tensor, use_sinkhorn: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes (n x levels), residuals (n x levels x code_dim)): each level's input residual and chosen code."""
        residual = self.encoder(inputs)
        codes, residuals = [], []
        for level, codebook in enumerate(self.codebooks):
            code = self._pick(level, squared_distances(residual, codebook), use_sinkhorn)
            residuals.append(residual)
            codes.append(code)
            residual = residual - codebook[code]
        return torch.stack(codes, dim=1), torch.stack(residuals, dim=1)

    def _pick(self, level: int, distances: torch.Tensor, use_sinkhorn: bool) -> torch.Tensor:
        if use_sinkhorn and self.config.uses_sinkhorn(level) and distances.shape[0] > 1:
            return sinkhorn_assign(
                distances.detach(), self.config.sinkhorn_epsilon, self.config.sinkhorn_iterations
            ).to(distances.device)
        return distances.argmin(dim=1)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Write `rqvae_config.json` and `rqvae.safetensors` (atomically) into `folder`."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(folder)
        state = {name: tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()}
        save_with(folder / WEIGHTS_NAME, lambda path: save_file(state, str(path)))

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, device: str | torch.device = "cpu") -> RQVAE:
        folder = Path(folder)
        model = cls(RQVAEConfig.from_pretrained(folder))
        weights = folder / WEIGHTS_NAME
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: no RQ-VAE weights")
        model.load_state_dict(load_file(str(weights), device=str(device)))
        return model.to(device).eval()
