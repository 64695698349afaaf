"""Index quality, side by side: ours vs the paper's procedure alone vs plain RQ-VAE vs random codes.

Datasets: Amazon Scientific (../shared/data/scientific), MovieLens-100K (offline asset) and a synthetic
clustered catalogue (20,000 items by default). Embeddings (MiniLM by default) are cached under --out and
excluded from the timings. Seconds are wall-clock RQ-VAE training + code assignment; `cpu s` is this
process's CPU time over the same span (the machine may be shared).

    .venv/bin/python bench/index_quality.py                      # all three datasets
    .venv/bin/python bench/index_quality.py --datasets synthetic --synthetic-items 20000
    .venv/bin/python bench/index_quality.py --datasets synthetic --variants plain,random
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch

from lcrec.indexing import RQVAEConfig, RQVAETrainingArguments, assign_unique_codes, embed_items, train_rqvae
from lcrec.indexing.assignment import colliding_items
from lcrec.indexing.stats import entropy_bits, semantic_coherence, utilization
from lcrec.indexing.synthetic import clustered_embeddings
from lcrec.indexing.training_rqvae import encode_all

SCIENTIFIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "scientific"


@dataclass
class Row:
    method: str
    before: int
    after: int
    codes: np.ndarray
    seconds: float
    cpu_seconds: float


def load_embeddings(name: str, args: argparse.Namespace) -> np.ndarray:
    """The dataset's item embeddings (cached under --out/<name>/)."""
    if name == "synthetic":
        return clustered_embeddings(args.synthetic_items, dim=384, clusters=200, spread=0.5, seed=args.seed)[0]
    from lcrec.assets import minilm_path
    from lcrec.data import prepare_dataset

    source = "ml-100k" if name == "ml-100k" else str(SCIENTIFIC)
    items = prepare_dataset(source)["items"].to_list()
    encoder = str(minilm_path()) if args.encoder == "minilm" else args.encoder
    return embed_items(items, encoder, cache_path=Path(args.out) / name / "embeddings.safetensors")


def train(embeddings: torch.Tensor, config: RQVAEConfig, training: RQVAETrainingArguments):
    """(model, codes, residuals, wall seconds, cpu seconds) of one RQ-VAE training run."""
    started, cpu = time.perf_counter(), time.process_time()
    model = train_rqvae(embeddings, config, training).model
    codes, residuals = encode_all(model, embeddings)
    return model, codes.numpy(), residuals, time.perf_counter() - started, time.process_time() - cpu


def assign(method: str, trained, rounds: int, guarantee: bool) -> Row:
    """Resolve collisions of a trained model's codes; the row's seconds include the training."""
    model, codes, residuals, seconds, cpu_seconds = trained
    started, cpu = time.perf_counter(), time.process_time()
    config = model.config
    result = assign_unique_codes(
        codes, residuals, list(model.codebooks), rounds, config.sinkhorn_epsilon, config.sinkhorn_iterations, guarantee
    )
    return Row(
        method,
        result.colliding_items_before,
        colliding_items(result.codes),
        result.codes,
        seconds + time.perf_counter() - started,
        cpu_seconds + time.process_time() - cpu,
    )


def run_dataset(name: str, args: argparse.Namespace) -> list[Row]:
    embeddings = load_embeddings(name, args)
    data = torch.from_numpy(np.asarray(embeddings, dtype=np.float32))
    sizes = [args.codebook_size] * args.levels
    paper = RQVAEConfig(input_dim=data.shape[1], codebook_sizes=sizes)
    training = RQVAETrainingArguments(
        epochs=args.epochs,
        seed=args.seed,
        progress=args.progress,
        **({"eval_every": args.eval_every} if args.eval_every else {}),
    )
    logging.warning("%s: %d items x %d dims, %d epochs", name, *data.shape, training.epochs)
    rows = []
    if "ours" in args.variants:
        rows.append(
            assign(
                "ours (restart, Sinkhorn, 20 rounds, guarantee)",
                train(data, paper, training),
                rounds=20,
                guarantee=True,
            )
        )
    if "no-restart" in args.variants:
        no_restart = train(data, paper, replace(training, dead_code_restart=False))
        rows.append(assign("ours without dead-code restart", no_restart, rounds=20, guarantee=True))
        rows.append(assign("paper procedure alone (Sinkhorn + 20 rounds)", no_restart, rounds=20, guarantee=False))
    if "plain" in args.variants:
        plain = train(data, replace(paper, sinkhorn_levels=[]), replace(training, dead_code_restart=False))
        rows.append(assign("plain RQ-VAE (no Sinkhorn, no resolution)", plain, rounds=0, guarantee=False))
    if "random" in args.variants:
        started = time.perf_counter()
        random_codes = np.random.default_rng(args.seed).integers(args.codebook_size, size=(len(data), args.levels))
        rows.append(
            Row(
                "random codes",
                colliding_items(random_codes),
                colliding_items(random_codes),
                random_codes,
                time.perf_counter() - started,
                0.0,
            )
        )
    print_table(name, len(data), sizes, embeddings, rows)
    return rows


def print_table(name: str, num_items: int, sizes: list[int], embeddings: np.ndarray, rows: list[Row]) -> None:
    levels = len(sizes)
    print(f"\n### {name}: {num_items} items, {levels} x {sizes[0]} codes\n")
    print(
        "| method | collisions before | after | utilisation per level (%) | entropy per level (bits) | coherence "
        "| seconds | cpu s |"
    )
    print("|---|---:|---:|---|---|---:|---:|---:|")
    for row in rows:
        used = " / ".join(f"{100 * value:.0f}" for value in utilization(row.codes, sizes))
        entropy = " / ".join(f"{value:.2f}" for value in entropy_bits(row.codes, sizes))
        coherence = semantic_coherence(np.asarray(embeddings, dtype=np.float64), row.codes[:, 0])
        print(
            f"| {row.method} | {row.before} ({row.before / num_items:.2%}) | {row.after} | {used} | {entropy} "
            f"| {coherence:.2f} | {row.seconds:.1f} | {row.cpu_seconds:.1f} |"
        )
    print(
        "\ncoherence = mean cosine similarity of items sharing a first-level code / that of all item pairs; "
        f"max entropy {math.log2(sizes[0]):.0f} bits"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="scientific,ml-100k,synthetic")
    parser.add_argument(
        "--variants",
        default="ours,no-restart,plain,random",
        help="which rows to compute (to split a long run over processes)",
    )
    parser.add_argument("--synthetic-items", type=int, default=20_000)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--epochs", type=int, default=RQVAETrainingArguments.epochs)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--levels", type=int, default=4)
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "index_quality"))
    parser.add_argument("--progress", action="store_true", help="show training progress bars")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.manual_seed(args.seed)
    for name in args.datasets.split(","):
        run_dataset(name.strip(), args)


if __name__ == "__main__":
    main()
