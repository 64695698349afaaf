"""Tokenize prompt/completion rows for SFT: loss on the completion (+ EOS) only, and no cut-off completions."""

from __future__ import annotations

import logging

from datasets import Dataset

from ..tasks.sequence import SEQUENCE_TASK

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label of a token that carries no loss (the prompt)


def tokenize_prompt_completion(
    dataset: Dataset, tokenizer, max_length: int | None, name: str = "train", batch_size: int = 1000
) -> Dataset:
    """Add `input_ids` and `labels` (-100 on prompt tokens, the ids of completion + EOS) to prompt/completion rows;
    `sequence` rows get no EOS (their completion ends where the data was cut).

    The prompt is tokenized alone, exactly as `recommend()` tokenizes it at inference, and the completion's
    tokens (+ EOS) follow it, so training never sees a prompt/answer boundary that inference would not.
    Rows whose prompt + completion + EOS would exceed `max_length` are dropped and counted in a warning:
    training on a truncated completion would teach the model cut-off item indices. Raises when every row
    would be dropped. Batched tokenization (fast tokenizers) is much quicker than a per-row map. The rows are
    final: `LCRecSFTTrainer` trains on them as they are (`skip_prepare_dataset`), without re-deriving labels.
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token; the model could never learn to stop after an index")
    eos_id = tokenizer.eos_token_id

    def encode(batch: dict) -> dict:
        prompts = tokenizer(batch["prompt"])["input_ids"]
        completions = tokenizer(batch["completion"], add_special_tokens=False)["input_ids"]
        # A `sequence` row ends where the data was cut, not where the user stopped: an EOS there would teach the
        # model that each training sequence ends, and recommend() asks for the item after exactly that sequence.
        ends = [[] if task == SEQUENCE_TASK else [eos_id] for task in batch.get("task", [None] * len(prompts))]
        rows = list(zip(prompts, completions, ends))
        return {
            "input_ids": [prompt + completion + end for prompt, completion, end in rows],
            "labels": [[IGNORE_INDEX] * len(prompt) + completion + end for prompt, completion, end in rows],
        }

    encoded = dataset.map(encode, batched=True, batch_size=batch_size, desc=f"Tokenizing {name} mix")
    if max_length is None:
        return encoded
    lengths = [len(ids) for ids in encoded["input_ids"]]
    keep = [i for i, n in enumerate(lengths) if n <= max_length]
    dropped = len(lengths) - len(keep)
    if dropped:
        if not keep:
            raise ValueError(
                f"{name}: every row is longer than max_length={max_length} (longest {max(lengths)} tokens); "
                "raise max_length"
            )
        tasks = []
        if "task" in encoded.column_names:
            tasks = encoded.select(sorted(set(range(len(lengths))) - set(keep)))["task"]
        by_task = {task: tasks.count(task) for task in sorted(set(tasks))}
        logger.warning(
            "%s: dropped %d of %d rows longer than max_length=%d (longest %d tokens; by task: %s); "
            "raise max_length or lower max_history to keep them",
            name,
            dropped,
            len(lengths),
            max_length,
            max(lengths),
            by_task or "n/a",
        )
        encoded = encoded.select(keep)
    return encoded
