"""`SemanticIdLogitsProcessor`: beam search may only emit index tokens that extend a catalogue item, then EOS."""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from .trie import SemanticIdTrie


def inverse_token_tables(token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(code_of, level_of) over vocabulary ids up to the largest index token; -1 where an id is no index token."""
    bound = int(token_ids.max()) + 1
    code_of = torch.full((bound,), -1, dtype=torch.int64)
    level_of = torch.full((bound,), -1, dtype=torch.int64)
    levels, codes = torch.nonzero(token_ids >= 0, as_tuple=True)
    code_of[token_ids[levels, codes]] = codes
    level_of[token_ids[levels, codes]] = levels
    return code_of, level_of


def generated_codes(generated: torch.Tensor, code_of: torch.Tensor, level_of: torch.Tensor) -> torch.Tensor:
    """(rows, t) token ids -> codes; -1 where a token is not the index token of its position's level."""
    inside = (generated >= 0) & (generated < len(code_of))
    safe = torch.where(inside, generated, torch.zeros_like(generated))
    missing = torch.full_like(generated, -1)
    codes = torch.where(inside, code_of[safe], missing)
    levels = torch.where(inside, level_of[safe], missing)
    position = torch.arange(generated.shape[1], device=generated.device)
    return torch.where(levels == position, codes, missing)


class SemanticIdLogitsProcessor(LogitsProcessor):
    """Masks every token except the trie's allowed continuations of each row's generated index tokens.

    `token_ids[level, code]` is the vocabulary id of that index token (-1 where a codebook is smaller than the
    widest one). Generation must start at column `prompt_length` of `input_ids` for every row, which holds with
    left padding (the prompt batch is padded to one length). After `levels` index tokens only EOS is allowed;
    a row whose prefix is not in the trie (only possible when something else edited the scores) is also sent
    to EOS, so no row ever has an empty allowed set.
    """

    def __init__(self, trie: SemanticIdTrie, token_ids: torch.Tensor, eos_token_id: int, prompt_length: int):
        token_ids = torch.as_tensor(token_ids, dtype=torch.int64)
        if token_ids.ndim != 2 or token_ids.shape[0] != trie.levels:
            raise ValueError(
                f"token_ids must have shape (levels={trie.levels}, codebook size), got {tuple(token_ids.shape)}"
            )
        self.trie = trie
        self.token_ids = token_ids
        self.eos_token_id = int(eos_token_id)
        self.prompt_length = int(prompt_length)
        self._code_of, self._level_of = inverse_token_tables(token_ids)

    def generated_codes(self, generated: torch.Tensor) -> torch.Tensor:
        """(rows, t) generated token ids -> codes, -1 where a token is not the index token of its position's level."""
        return generated_codes(generated, self._code_of, self._level_of)

    def _move_to(self, device: torch.device) -> None:
        if self._code_of.device != device:
            self.trie.to(device)
            self.token_ids = self.token_ids.to(device)
            self._code_of = self._code_of.to(device)
            self._level_of = self._level_of.to(device)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Mask `scores` in place (generate() hands every processor a fresh tensor) and return it."""
        step = input_ids.shape[1] - self.prompt_length
        if step < 0:
            raise ValueError(
                f"input has {input_ids.shape[1]} columns, fewer than the prompt length {self.prompt_length}"
            )
        self._move_to(scores.device)
        eos_scores = scores[:, self.eos_token_id].clone()
        if step >= self.trie.levels:
            scores.fill_(float("-inf"))
            scores[:, self.eos_token_id] = eos_scores
            return scores
        mask = self.trie.allowed_mask(self.generated_codes(input_ids[:, self.prompt_length :]))
        level_ids = self.token_ids[step, : mask.shape[1]]
        kept = scores.index_select(1, level_ids).masked_fill_(~mask, float("-inf"))
        scores.fill_(float("-inf"))
        scores.index_copy_(1, level_ids, kept)
        stuck = ~mask.any(dim=1)
        scores[stuck, self.eos_token_id] = eos_scores[stuck]
        return scores
