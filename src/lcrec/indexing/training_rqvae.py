"""Training loop for `RQVAE`: AdamW, optional warmup/decay and clipping, collision tracking, best checkpoint."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .configuration_rqvae import RQVAEConfig
from .embedding import resolve_device
from .kmeans import squared_distances
from .modeling_rqvae import RQVAE

logger = logging.getLogger(__name__)

SCHEDULES = ("constant", "linear", "cosine")


@dataclass
class RQVAETrainingArguments:
    """How to train an RQ-VAE. The paper trains thousands of epochs on a GPU; the CPU default is 150.

    Every `eval_every` epochs the whole catalogue is coded with nearest codewords: with
    `dead_code_restart`, codewords no item uses are first re-seeded with the residuals their level serves
    worst (this keeps first-level use near 100 %); then the collision rate is recorded. The checkpoint
    with the lowest rate among those from the last `1 - keep_best_from` of training is kept (earlier
    ones are under-trained, and right after a restart their rate can look deceptively low).
    """

    epochs: int = field(
        default=150, metadata={"help": "training epochs (the paper used thousands; 150 is a CPU preset)"}
    )
    batch_size: int = field(default=1024, metadata={"help": "items per RQ-VAE step"})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate"})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay"})
    warmup_epochs: int = field(default=0, metadata={"help": "epochs of linear learning-rate warm-up"})
    schedule: str = field(
        default="constant", metadata={"help": "learning-rate schedule after warm-up: constant, linear or cosine"}
    )
    max_grad_norm: float | None = field(
        default=None, metadata={"help": "clip gradients to this norm (None: no clipping)"}
    )
    eval_every: int = field(
        default=10, metadata={"help": "measure the collision rate every N epochs and keep the best checkpoint"}
    )
    keep_best_from: float = field(
        default=0.5,
        metadata={
            "help": "keep the best checkpoint among those after this fraction of training (earlier ones are "
            "under-trained)"
        },
    )
    dead_code_restart: bool = field(default=True, metadata={"help": "re-seed unused codewords at each evaluation"})
    seed: int = field(default=42, metadata={"help": "torch seed of initialisation and batch order"})
    device: str = field(default="auto", metadata={"help": "auto (GPU when present), cpu, cuda, cuda:N"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ValueError("epochs, batch_size and eval_every must be at least 1")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= self.keep_best_from < 1.0:
            raise ValueError(f"keep_best_from must be a fraction in [0, 1), got {self.keep_best_from}")
        if self.warmup_epochs < 0 or self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs={self.epochs}], got {self.warmup_epochs}")
        if not self.learning_rate > 0 or not self.weight_decay >= 0:
            raise ValueError(
                f"learning_rate must be > 0 and weight_decay >= 0, got {self.learning_rate} and {self.weight_decay}"
            )
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 (or None: no clipping), got {self.max_grad_norm}")
        resolve_device(self.device)


@dataclass
class RQVAETrainingResult:
    """The kept (lowest-collision) model and the training record."""

    model: RQVAE
    best_epoch: int
    best_collision_rate: float
    history: list[dict] = field(default_factory=list)
    restarted_codes: int = 0


def collision_rate(codes: torch.Tensor) -> float:
    """Fraction of items whose code tuple is shared with at least one other item."""
    if len(codes) == 0:
        return 0.0
    _, inverse, counts = torch.unique(codes, dim=0, return_inverse=True, return_counts=True)
    return float((counts[inverse] > 1).float().mean())


@torch.no_grad()
def encode_all(
    model: RQVAE, embeddings: torch.Tensor, batch_size: int = 8192, use_sinkhorn: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes and per-level residuals for every row of `embeddings`, in chunks, with nearest codewords."""
    model.eval()
    device = next(model.parameters()).device
    codes, residuals = [], []
    for start in range(0, len(embeddings), batch_size):
        chunk_codes, chunk_residuals = model.encode(
            embeddings[start : start + batch_size].to(device), use_sinkhorn=use_sinkhorn
        )
        codes.append(chunk_codes.cpu())
        residuals.append(chunk_residuals.cpu())
    return torch.cat(codes), torch.cat(residuals)


def train_rqvae(
    embeddings: torch.Tensor,
    config: RQVAEConfig,
    args: RQVAETrainingArguments | None = None,
    auxiliary: torch.nn.Module | None = None,
) -> RQVAETrainingResult:
    """Train an RQ-VAE on `embeddings` (items x input_dim) and return the lowest-collision checkpoint.

    `auxiliary(output, batch_ids) -> loss`, when given, is added to every batch's loss and its parameters train
    with the RQ-VAE's (e.g. `lcrec.indexing.collaborative.CollaborativeAlignment`).
    """
    args = args or RQVAETrainingArguments()
    embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
    if embeddings.ndim != 2 or embeddings.shape[1] != config.input_dim:
        raise ValueError(f"embeddings must have shape (items, {config.input_dim}), got {tuple(embeddings.shape)}")
    if len(embeddings) == 0:
        raise ValueError("cannot train an RQ-VAE on an empty catalogue")
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    model = RQVAE(config).to(device)
    data = embeddings.to(device)
    generator = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = math.ceil(len(data) / args.batch_size)
    parameters = list(model.parameters())
    if auxiliary is not None:
        auxiliary.to(device)
        parameters += list(auxiliary.parameters())
    optimizer = torch.optim.AdamW(parameters, lr=args.learning_rate, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_schedule(args, steps_per_epoch))

    first_batch = data[torch.randperm(len(data), generator=generator)[: args.batch_size].to(device)]
    if config.kmeans_init:
        model.initialize_codebooks(first_batch, seed=args.seed)

    best_state, best_epoch, best_rate = None, 0, math.inf
    history: list[dict] = []
    restarted = 0
    progress = tqdm(range(1, args.epochs + 1), desc="RQ-VAE", unit="epoch", disable=not args.progress)
    for epoch in progress:
        model.train()
        totals = torch.zeros(3)
        for batch_ids in torch.randperm(len(data), generator=generator).split(args.batch_size):
            output = model(data[batch_ids.to(device)], use_sinkhorn=True)
            loss = output.loss if auxiliary is None else output.loss + auxiliary(output, batch_ids)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if args.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(parameters, args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            totals += torch.tensor(
                [loss.item(), output.reconstruction_loss.item(), output.quantization_loss.item()]
            ) * len(batch_ids)
        loss, reconstruction, quantization = (totals / len(data)).tolist()
        record = {
            "epoch": epoch,
            "loss": loss,
            "reconstruction_loss": reconstruction,
            "quantization_loss": quantization,
        }
        if epoch % args.eval_every == 0 or epoch == args.epochs:
            codes, residuals = encode_all(model, data)
            if args.dead_code_restart:
                record["restarted_codes"] = moved = restart_dead_codes(model, codes, residuals)
                restarted += moved
                if moved:
                    codes, _ = encode_all(model, data)
            record["collision_rate"] = rate = collision_rate(codes)
            record["first_level_utilization"] = len(torch.unique(codes[:, 0])) / config.codebook_sizes[0]
            if rate <= best_rate and (epoch >= args.keep_best_from * args.epochs or epoch == args.epochs):
                best_state, best_epoch, best_rate = copy.deepcopy(model.state_dict()), epoch, rate
            progress.set_postfix(loss=f"{loss:.4f}", collisions=f"{rate:.2%}")
        history.append(record)
    model.load_state_dict(best_state)
    model.eval()
    logger.info("RQ-VAE: kept epoch %d (collision rate %.4f before resolution)", best_epoch, best_rate)
    return RQVAETrainingResult(model, best_epoch, best_rate, history, restarted)


@torch.no_grad()
def restart_dead_codes(model: RQVAE, codes: torch.Tensor, residuals: torch.Tensor) -> int:
    """Move codewords no item uses onto the residuals their current codeword serves worst; returns how many moved."""
    moved = 0
    for level, codebook in enumerate(model.codebooks):
        unused = torch.ones(codebook.shape[0], dtype=torch.bool)
        unused[codes[:, level].unique()] = False
        dead = unused.nonzero().flatten()
        if len(dead) == 0:
            continue
        level_residuals = residuals[:, level].to(codebook.device)
        errors = squared_distances(level_residuals, codebook).min(dim=1).values
        worst = errors.argsort(descending=True)[: len(dead)]
        worst = worst.repeat(math.ceil(len(dead) / len(worst)))[: len(dead)]
        codebook[dead.to(codebook.device)] = level_residuals[worst]
        moved += len(dead)
    return moved


def learning_rate_schedule(args: RQVAETrainingArguments, steps_per_epoch: int):
    """Learning-rate multiplier per optimiser step: linear warmup, then constant, linear or cosine decay."""
    warmup = args.warmup_epochs * steps_per_epoch
    total = args.epochs * steps_per_epoch

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if args.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if args.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return multiplier
