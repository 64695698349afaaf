"""The SFT datasets: one template draw of the training task mix per epoch, and the seqrec validation rows."""

from __future__ import annotations

import logging
from collections.abc import Callable

from datasets import Dataset, DatasetDict
from tqdm.auto import tqdm

from ..indexing import ItemIndex
from .options import DataOptions

logger = logging.getLogger(__name__)


def build_template_draws(
    data: DataOptions,
    dataset: DatasetDict,
    item_index: ItemIndex,
    seed: int,
    num_epochs: int | Callable[[int], int] = 1,
) -> tuple[list[Dataset], Dataset]:
    """One render of the training mix per epoch (same samples, fresh templates) and the seqrec validation rows
    (in the format recommend() will ask in, `data.prompt_format`).

    The paper redraws each sample's template every epoch; `EpochDrawSampler` then trains epoch e on draw e.
    `num_epochs` may be a function of the mix size (e.g. to turn max_steps into epochs).
    """
    from ..tasks import TaskMix, build_validation_mix

    subsamples = (("seqrec", data.seqrec_samples), ("fusionseqrec", data.fusionseqrec_samples))
    mix = TaskMix.build(
        dataset,
        item_index,
        data.tasks,
        samples_per_task={task: n for task, n in subsamples if n is not None},
        seed=seed,
        max_history=data.max_history,
        user_texts=data.user_text,
        strict=not data.skip_missing_tasks,
    )
    if not len(mix):
        raise ValueError(f"the task mix of {data.tasks} is empty for {data.dataset_dir}")
    epochs = max(1, num_epochs(len(mix)) if callable(num_epochs) else num_epochs)
    draws = [mix.render(epoch) for epoch in tqdm(range(epochs), desc="Rendering template draws", disable=epochs < 3)]
    validation = build_validation_mix(
        dataset,
        item_index,
        seed=seed,
        max_history=data.max_history,
        split="validation",
        prompt_format=data.prompt_format,
    )
    if data.validation_samples is not None and data.validation_samples < len(validation):
        validation = validation.shuffle(seed=seed).select(range(data.validation_samples))
    logger.info(
        "training mix %s x %d template draws (one per epoch); validation: %d seqrec rows",
        mix.counts,
        len(draws),
        len(validation),
    )
    return draws, validation
