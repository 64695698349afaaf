"""Distillation from a trained SASRec: its next-item distribution as soft targets for LC-Rec's index tokens.

A one-hot next item teaches one item per target; on small, sparse data (Amazon categories, a few items per user) a
SASRec trained on the same train split knows which other items were plausible. Its distribution over the catalogue
p(item | earlier items) is turned into the distribution of each index token given the item's true earlier tokens:
q(code_l | code_<l) = sum of p over the items under (code_<l, code_l) / sum of p over the items under code_<l.
Each index token of a target item is trained on (1 - weight) x its usual cross-entropy + weight x the cross-entropy
against q; every other labelled token (EOS, text) keeps its usual loss. Items are read back from the rows' index
tokens, so every task whose completion is an item after items in its prompt (`sequence`, `seqrec`) is distilled,
and other rows keep the plain loss. SASRec reads a row's items as one of its training windows (right-aligned).

With `sampling` p > 0, each distilled item is, with probability p, replaced in the model's input by an item drawn from
the teacher's distribution at that point, and its tokens are trained on the teacher's targets along the drawn item's
codes (sequence-level distillation). Trained on the true prefixes alone, the model never learns the teacher's
next-level choice under the prefixes that beam search also keeps; drawn items show it those the teacher finds likely.
Later items keep the targets the teacher gives the true sequence (one teacher pass per batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..evaluation.baselines.sasrec import SASRec
from ..generation.logits_process import inverse_token_tables
from ..generation.trie import SemanticIdTrie


@dataclass
class TeacherTargets:
    """Where a batch's distilled item tokens are and what the teacher says of them."""

    rows: torch.Tensor  # (targets,) batch row of each target item
    starts: torch.Tensor  # (targets,) position of the item's first index token
    level_targets: torch.Tensor  # (targets, levels, widest codebook) q(code_l | the item's code_<l); 0 past a codebook
    input_ids: torch.Tensor  # the batch as the model reads it: drawn items (`sampling`) in place of true ones
    labels: torch.Tensor  # its labels, the drawn items' tokens at their positions


class SASRecTeacher:
    """A trained SASRec (`lcrec baseline sasrec --save_model DIR`) read against an LC-Rec tokenizer's item index."""

    def __init__(self, sasrec: SASRec, tokenizer, temperature: float = 1.0, sampling: float = 0.0):
        if temperature <= 0:
            raise ValueError(f"the teacher temperature must be > 0, got {temperature}")
        if not 0 <= sampling <= 1:
            raise ValueError(f"the teacher sampling rate must be in [0, 1], got {sampling}")
        self.sasrec = sasrec.eval().requires_grad_(False)
        self.temperature = temperature
        self.sampling = sampling
        index = tokenizer.item_index
        self.token_ids = tokenizer.index_token_ids  # (levels, widest codebook), -1 past a level's codebook
        self.code_of, self.level_of = inverse_token_tables(self.token_ids)
        items = [int(item) for item in index.item_ids]
        num_items = sasrec.config.num_items
        outside = [item for item in items if not 0 <= item < num_items]
        if outside:
            raise ValueError(
                f"the teacher knows {num_items} items but the index has item ids outside 0..{num_items - 1}, "
                f"e.g. {outside[:5]}: it was trained on another dataset"
            )
        self.levels = index.levels
        self.width = self.token_ids.shape[1]
        codes = torch.tensor([list(index.codes_of(item)) for item in items], dtype=torch.int64)
        # Items the index lacks keep code -1 at every level: they take no part in any level's target.
        self.item_codes = torch.full((num_items, self.levels), -1, dtype=torch.int64)
        self.item_codes[torch.tensor(items)] = codes
        self.trie = SemanticIdTrie.from_index(index)  # code tuple -> item id, as decoding looks items up

    def record(self, weight: float) -> dict:
        """What training_results.json and the model card say of the teacher (its settings, no paths)."""
        config = self.sasrec.config
        text = f", item text vectors ({config.item_text_dim} dims)" if config.item_text_dim else ""
        teacher = f"SASRec ({config.num_layers} layers, {config.hidden_size} dims, {config.loss} loss{text})"
        return {"teacher": teacher, "weight": weight, "temperature": self.temperature, "sampling": self.sampling}

    def _on(self, device: torch.device) -> None:
        """Move the teacher and its tables to the batches' device (once)."""
        if self.trie.device == device:
            return
        self.sasrec.to(device)
        self.trie.to(device)
        for name in ("token_ids", "code_of", "level_of", "item_codes"):
            setattr(self, name, getattr(self, name).to(device))

    @torch.no_grad()
    def targets(self, input_ids: torch.Tensor, labels: torch.Tensor) -> TeacherTargets:
        """The teacher's level targets for every labelled item of `input_ids` that follows another item in its row
        (with `sampling`, some of those items replaced by drawn ones: see the module docstring)."""
        device = input_ids.device
        self._on(device)
        batch, length = input_ids.shape
        levels, max_len = self.levels, self.sasrec.config.max_len
        known = (input_ids >= 0) & (input_ids < len(self.code_of))
        safe = torch.where(known, input_ids, 0)
        # Each token's code and level (-1: not an index token), then the codes and levels at t..t+levels-1.
        tail = torch.full((batch, levels), -1, dtype=torch.int64, device=device)
        code = torch.cat([torch.where(known, self.code_of[safe], -1), tail], dim=1)
        level = torch.cat([torch.where(known, self.level_of[safe], -1), tail], dim=1)
        window = torch.stack([code[:, offset : offset + length] for offset in range(levels)], dim=-1)
        in_order = torch.stack([level[:, offset : offset + length] == offset for offset in range(levels)], dim=-1)
        item_at, found = (t.view(batch, length) for t in self.trie.item_ids(window.reshape(-1, levels)))
        is_item = in_order.all(-1) & found
        # Each row's items but its last, right-aligned in SASRec's left-padded window as its training windows are:
        # the state at an item's slot predicts the next item.
        ordinal = is_item.long().cumsum(1) - 1
        slot = max_len - is_item.sum(1, keepdim=True) + 1 + ordinal
        rows, positions = torch.nonzero(is_item & (slot >= 0) & (slot < max_len), as_tuple=True)
        sequence = torch.zeros((batch, max_len), dtype=torch.int64, device=device)
        sequence[rows, slot[rows, positions]] = item_at[rows, positions] + 1
        rows, starts = torch.nonzero(is_item & (labels != -100) & (ordinal >= 1) & (slot >= 1), as_tuple=True)
        targets = torch.zeros((len(rows), levels, self.width), device=device)
        if len(rows) == 0:
            return TeacherTargets(rows, starts, targets, input_ids, labels)
        states = self.sasrec.encode(sequence)[rows, slot[rows, starts] - 1]
        weights = F.softmax(self.sasrec.item_logits(states).float() / self.temperature, dim=-1)
        items = item_at[rows, starts]
        if self.sampling > 0:
            input_ids, labels, items = self._draw(input_ids, labels, rows, starts, items, weights)
        path = self.item_codes[items]
        for depth in range(levels):
            codes = self.item_codes[:, depth]
            mass = torch.zeros((len(rows), self.width), device=device).scatter_add_(
                1, codes.clamp(min=0).expand(len(rows), -1), weights * (codes >= 0)
            )
            targets[:, depth] = mass / mass.sum(1, keepdim=True).clamp(min=1e-12)
            weights = weights * (codes == path[:, depth : depth + 1])
        return TeacherTargets(rows, starts, targets, input_ids, labels)

    def _draw(self, input_ids, labels, rows, starts, items, weights):
        """Replace each target item, with probability `sampling`, by an item drawn from the teacher's `weights`
        (torch's seeded generator); returns the new input_ids, labels and target items."""
        drawn = torch.rand(len(items), device=items.device) < self.sampling
        if not drawn.any():
            return input_ids, labels, items
        items = items.clone()
        indexed = self.item_codes[:, 0] >= 0  # only items the index knows can be written as tokens
        items[drawn] = torch.multinomial(weights[drawn] * indexed, 1).squeeze(1)
        input_ids, labels = input_ids.clone(), labels.clone()
        levels = torch.arange(self.levels, device=items.device)
        tokens = self.token_ids[levels, self.item_codes[items[drawn]]]  # (drawn, levels)
        positions = starts[drawn, None] + levels
        input_ids[rows[drawn, None], positions] = tokens
        labels[rows[drawn, None], positions] = tokens
        return input_ids, labels, items

    def token_positions(self, targets: TeacherTargets) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, positions) whose next token is a distilled index token: each target's levels in order."""
        depth = torch.arange(self.levels, device=targets.rows.device).repeat(len(targets.rows))
        return targets.rows.repeat_interleave(self.levels), targets.starts.repeat_interleave(self.levels) + depth - 1

    def cross_entropy(self, log_probs: torch.Tensor, targets: TeacherTargets) -> torch.Tensor:
        """Per distilled token (targets x levels, in `token_positions` order): the cross-entropy of the student's
        index-token distribution, `log_probs` (targets x levels, vocabulary), against the teacher's."""
        depth = torch.arange(self.levels, device=log_probs.device).repeat(len(log_probs) // self.levels)
        token_ids = self.token_ids.to(log_probs.device)[depth]  # (targets x levels, width), -1 past a codebook
        student = log_probs.gather(1, token_ids.clamp(min=0))
        teacher = targets.level_targets.reshape(-1, self.width)
        return -(teacher * student).masked_fill(token_ids < 0, 0.0).sum(1)
