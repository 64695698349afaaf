"""`LCRecSFTTrainer`: TRL's SFTTrainer with one template draw per epoch (see `EpochDrawSampler`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import trl.trainer.utils as trl_utils
from trl import SFTTrainer

from .sampler import EpochDrawSampler

logger = logging.getLogger(__name__)

# The per-token outputs SFTTrainer asks of its fused LM head (loss, entropy and token-accuracy metrics).
_FUSED_OUTPUTS = ("log_probs", "entropy", "is_top1")


class LCRecSFTTrainer(SFTTrainer):
    """SFTTrainer whose training set is several template draws of one task mix, one draw per epoch.

    The datasets are rows of `tokenize_prompt_completion`: `input_ids` and `labels` that already mask the
    prompt and fit `max_length`, so the loss is on the completion only and TRL does not re-prepare them.
    """

    def __init__(self, model, args, *, draw_sizes: Sequence[int], **kwargs):
        self.draw_sizes = list(draw_sizes)
        args.completion_only_loss = True
        args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
        super().__init__(model=model, args=args, **kwargs)
        if len(self.train_dataset) != sum(self.draw_sizes):
            raise ValueError(
                f"the prepared training set has {len(self.train_dataset)} rows but the draws sum to {sum(self.draw_sizes)}; "
                "packing and shuffle_dataset are not supported with per-epoch template draws"
            )
        _move_fused_head_to_language_model(self.model)
        _score_only_labelled_positions_on_cpu()

    def _get_train_sampler(self, train_dataset=None) -> EpochDrawSampler:
        return EpochDrawSampler(self.draw_sizes, seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed)


def _move_fused_head_to_language_model(model) -> None:
    """Put TRL's fused LM head on the wrapped base LM, whose backbone returns hidden states.

    SFTTrainer patches the forward of the model it trains so that `fused_lm_head=True` runs `model.base_model`
    and projects only the completion positions through the LM head. An LCRecForCausalLM is its own
    `base_model` (it wraps a whole causal LM), so the patch moves to `language_model`, and our forward passes
    `fused_lm_head` / `labels` through to it.
    """
    lcrec_model = model.get_base_model() if hasattr(model, "get_base_model") else model
    language_model = getattr(lcrec_model, "language_model", None)
    if language_model is None or lcrec_model.base_model is not lcrec_model or "forward" not in vars(lcrec_model):
        return
    del lcrec_model.forward  # drop the instance patch: the class forward delegates to language_model
    trl_utils.add_fused_lm_head(language_model, outputs=_FUSED_OUTPUTS)
    head = language_model.get_output_embeddings()
    if "bias" not in dir(head) and hasattr(head, "original_module"):
        # PEFT's trainable-token wrapper exposes the head's (merged) weight but not its bias, which the fused head reads.
        head.bias = head.original_module.bias


def _score_only_labelled_positions_on_cpu() -> None:
    """Let TRL's fused LM head project only the labelled (completion) positions on CPU too, as it does on GPUs.

    TRL scores every position unless Triton runs the kernel, to keep tile shapes fixed for compiled backends
    (Neuron/XLA). Eager CPU has nothing to recompile, and an LC-Rec row is mostly prompt: scoring the ~5
    completion tokens instead of all ~90 positions made a CPU training step of the MovieLens preset 2.6x faster.
    Same loss and gradients (the unlabelled positions are masked out either way). The switch is TRL's module-level
    `_use_triton` as seen by its fused head only; the kernels keep their own device check.
    """
    original = getattr(trl_utils, "_use_triton", None)
    if original is None:
        logger.warning("this TRL version has no trl.trainer.utils._use_triton: its fused LM head scores every position on CPU (slower, same loss)")
        return
    if getattr(original, "lcrec_cpu_compact", False):
        return

    def compact_on_cpu(device) -> bool:
        return device.type == "cpu" or original(device)

    compact_on_cpu.lcrec_cpu_compact = True
    trl_utils._use_triton = compact_on_cpu
