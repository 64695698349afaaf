"""The distillation teacher of the CPU presets: a SASRec with item text in its item table, on a fixed schedule.

Chosen on Amazon Scientific's validation split (README Results): the student follows how sharply its teacher fits
the training rows more than how well the teacher ranks validation users. The early-stopped id-only SASRec baseline
(stopped at epoch 14 there) taught less than a SASRec whose item table adds a projection of the items' MiniLM text
vectors (the index's `embeddings.safetensors`) trained 16 epochs without early stopping; the same text SASRec
early-stopped (epoch 6) or cut at 10 epochs taught less. Item text also gives the student what its 0.7M scratch
model cannot read from titles itself. The reported SASRec baseline stays the id-only, early-stopped one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch-free at import: the quickstart's options read TEACHER_EPOCHS
    from datasets import DatasetDict

    from ..evaluation.baselines import SASRecConfig

TEACHER_EPOCHS = 16


def teacher_config(seed: int, epochs: int = TEACHER_EPOCHS, max_seconds: float | None = None) -> SASRecConfig:
    """SASRec's default architecture, trained `epochs` epochs and kept at the last (no early stopping)."""
    from ..evaluation.baselines import SASRecConfig

    return SASRecConfig(max_epochs=epochs, early_stopping=False, seed=seed, max_seconds=max_seconds)


def train_teacher(
    dataset: DatasetDict,
    index_dir: str | Path,
    out_dir: str | Path,
    seed: int,
    epochs: int = TEACHER_EPOCHS,
    max_seconds: float | None = None,
) -> dict:
    """Train the teacher on the train split with the index's item text vectors, save it to `out_dir`; its facts."""
    from ..evaluation.baselines import fit_baseline
    from ..indexing.embedding import read_item_embeddings

    item_text = read_item_embeddings(index_dir, len(dataset["items"]))
    config = teacher_config(seed, epochs, max_seconds)
    model, facts = fit_baseline("sasrec", dataset, sasrec_config=config, item_text=item_text)
    model.save_pretrained(out_dir)
    return facts
