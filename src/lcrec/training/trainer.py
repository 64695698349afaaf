"""`LCRecSFTTrainer`: TRL's SFTTrainer with one template draw per epoch (see `EpochDrawSampler`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from trl import SFTConfig, SFTTrainer

from .sampler import EpochDrawSampler
from .trl_compat import compact_fused_head_on_cpu, expose_head_bias


def lcrec_sft_config(args: SFTConfig) -> SFTConfig:
    """A copy of `args` with the input contract of `tokenize_prompt_completion` rows; `args` stays as it was.

    The rows already hold `input_ids` and `labels` that mask the prompt and fit `max_length`, so the loss is on
    the completion only and TRL must not prepare them again.
    """
    args = copy.copy(args)  # a shallow copy: TrainingArguments' __post_init__ (distributed setup) must not run twice
    args.completion_only_loss = True
    args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
    return args


class LCRecSFTTrainer(SFTTrainer):
    """SFTTrainer whose training set is several template draws of one task mix, one draw per epoch.

    The datasets are rows of `tokenize_prompt_completion` (see `lcrec_sft_config`). The caller's `args` are not
    modified: the trainer keeps its own copy in `self.args`.
    """

    def __init__(self, model, args: SFTConfig, *, draw_sizes: Sequence[int], **kwargs):
        self.draw_sizes = list(draw_sizes)
        super().__init__(model=model, args=lcrec_sft_config(args), **kwargs)
        if len(self.train_dataset) != sum(self.draw_sizes):
            raise ValueError(
                f"the prepared training set has {len(self.train_dataset)} rows but the draws sum to "
                f"{sum(self.draw_sizes)}; packing and shuffle_dataset are not supported with per-epoch template draws"
            )
        expose_head_bias(self.model)

    def _get_train_sampler(self, train_dataset=None) -> EpochDrawSampler:
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return EpochDrawSampler(self.draw_sizes, seed=seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """SFTTrainer's loss, with the fused LM head scoring only the completion positions on CPU too (same value)."""
        with compact_fused_head_on_cpu():
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

    def create_model_card(self, *args, **kwargs) -> None:
        """Write nothing: TRL's card is a placeholder ("fine-tuned version of [None]"); `run_sft` writes lcrec's card
        (`lcrec.cards.write_model_card`) into the final model folder instead."""
