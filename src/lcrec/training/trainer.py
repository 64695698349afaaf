"""`LCRecSFTTrainer`: TRL's SFTTrainer with one template draw per epoch (see `EpochDrawSampler`), optionally
distilling a trained SASRec into the index tokens (see `lcrec.training.distillation`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from trl import SFTConfig, SFTTrainer

from .distillation import SASRecTeacher
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

    def __init__(
        self,
        model,
        args: SFTConfig,
        *,
        draw_sizes: Sequence[int],
        teacher: SASRecTeacher | None = None,
        teacher_weight: float = 0.0,
        **kwargs,
    ):
        self.draw_sizes = list(draw_sizes)
        self.teacher = teacher
        self.teacher_weight = teacher_weight
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
        """SFTTrainer's loss, with the fused LM head scoring only the completion positions on CPU too (same value);
        in training with a teacher, `_distilled_loss` (each distilled token mixes its cross-entropy with the
        teacher's)."""
        if self.teacher is not None and model.training and not return_outputs:
            return self._distilled_loss(model, inputs, num_items_in_batch)
        with compact_fused_head_on_cpu():
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

    def _distilled_loss(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        """Each distilled token mixes its cross-entropy with the teacher's (`teacher_weight`); every other labelled
        token keeps its cross-entropy. The head runs only at labelled positions, never on the whole batch."""
        # The teacher reads the batch first: with `sampling` it replaces some target items by drawn ones.
        targets = self.teacher.targets(inputs["input_ids"], inputs["labels"])
        input_ids, labels = targets.input_ids, targets.labels
        # Through the (possibly DDP-wrapped) model, so its gradient synchronisation sees the forward; the final
        # normed hidden states are `hidden_states[-1]`, and the head runs on one position only there.
        outputs = model(
            input_ids=input_ids,
            attention_mask=inputs.get("attention_mask"),
            output_hidden_states=True,
            logits_to_keep=1,
            use_cache=False,
        )
        hidden = outputs.hidden_states[-1]
        head = self.accelerator.unwrap_model(model).get_output_embeddings()
        next_labels = torch.full_like(labels, -100)
        next_labels[:, :-1] = labels[:, 1:]
        rows, positions = torch.nonzero(next_labels != -100, as_tuple=True)
        log_probs = F.log_softmax(head(hidden[rows, positions]).float(), dim=-1)
        token_loss = -log_probs.gather(1, next_labels[rows, positions].unsqueeze(1)).squeeze(1)
        if len(targets.rows):
            slot = torch.full(labels.shape, -1, dtype=torch.int64, device=labels.device)
            slot[rows, positions] = torch.arange(len(rows), device=labels.device)
            index = slot[self.teacher.token_positions(targets)]  # distilled tokens are labelled ones: all >= 0
            distilled = self.teacher.cross_entropy(log_probs[index], targets)
            mixed = (1 - self.teacher_weight) * token_loss[index] + self.teacher_weight * distilled
            token_loss = token_loss.index_put((index,), mixed)
        if num_items_in_batch is None:
            return token_loss.mean()
        # As Trainer.compute_loss does with a model's loss: `num_items_in_batch` counts the labelled tokens of every
        # micro-batch (of every process, with average_tokens_across_devices), and DDP averages the processes'
        # gradients, so each process's sum is scaled back up by their number.
        loss = token_loss.sum() / num_items_in_batch
        if self.args.average_tokens_across_devices:
            loss = loss * self.accelerator.num_processes
        return loss

    def create_model_card(self, *args, **kwargs) -> None:
        """Write nothing: TRL's card is a placeholder ("fine-tuned version of [None]"); `run_sft` writes lcrec's card
        (`lcrec.cards.write_model_card`) into the final model folder instead."""
