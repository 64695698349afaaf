"""Task mixes for SFT: one template draw of the training mix per epoch, plus the seqrec validation mix."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from datasets import Dataset, DatasetDict
from tqdm.auto import tqdm

from ..indexing import ItemIndex
from .options import DataOptions

logger = logging.getLogger(__name__)


def build_mixes(data: DataOptions, dataset: DatasetDict, item_index: ItemIndex, seed: int, num_epochs: int | Callable[[int], int] = 1) -> tuple[list[Dataset], Dataset]:
    """One render of the training mix per epoch (same samples, fresh templates) and the seqrec validation mix.

    `num_epochs` may be a function of the mix size (e.g. to turn max_steps into epochs).
    """
    from ..tasks import TaskMix, build_validation_mix

    samples = {task: n for task, n in (("seqrec", data.seqrec_samples), ("fusionseqrec", data.fusionseqrec_samples)) if n is not None}
    mix = TaskMix.build(
        dataset,
        item_index,
        data.tasks,
        samples_per_task=samples,
        seed=seed,
        max_history=data.max_history,
        user_texts=data.user_text,
        strict=not data.skip_missing_tasks,
    )
    if not len(mix):
        raise ValueError(f"the task mix of {data.tasks} is empty for {data.dataset_dir}")
    epochs = num_epochs(len(mix)) if callable(num_epochs) else num_epochs
    draws = [mix.render(epoch) for epoch in tqdm(range(max(1, epochs)), desc="Rendering template draws", disable=epochs < 3)]
    valid = build_validation_mix(dataset, item_index, seed=seed, max_history=data.max_history)
    if data.valid_samples is not None and data.valid_samples < len(valid):
        valid = valid.shuffle(seed=seed).select(range(data.valid_samples))
    logger.info("training mix %s x %d template draws (one per epoch); validation: %d seqrec rows", mix.counts, len(draws), len(valid))
    return draws, valid


def scratch_tokenizer_texts(mix: Dataset, items: Dataset, max_rows: int = 20_000) -> Iterator[str]:
    """Texts a from-scratch tokenizer learns from: prompts and completions of (at most `max_rows` rows of) a
    shuffled mix, and every item text. Prompts repeat their templates, so a sample covers the vocabulary."""
    rows = mix.select_columns(["prompt", "completion"]).select(range(min(max_rows, len(mix))))
    for row in rows:
        yield row["prompt"]
        yield row["completion"]
    for column in ("title", "description", "brand", "categories"):
        if column in items.column_names:
            yield from (text for text in items[column] if text)
