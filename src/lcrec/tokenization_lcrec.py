"""`LCRecTokenizer`: any fast base tokenizer plus every index token, owning the item index and item titles."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from tokenizers import AddedToken
from transformers import PreTrainedTokenizerBase, TokenizersBackend

from .indexing.item_index import ItemIndex, level_token
from .io_utils import read_json, write_json
from .remote_code import write_remote_code

logger = logging.getLogger(__name__)

INDEX_FILE = "index.json"
TITLES_FILE = "item_titles.json"


class LCRecTokenizer(TokenizersBackend):
    """A fast tokenizer with one ordinary added token per level x code, and the catalogue's `ItemIndex`.

    Every index token encodes to exactly one id, also when index tokens follow each other without spaces
    (checked at construction). `save_pretrained` writes `index.json` and `item_titles.json` beside the usual
    tokenizer files, and the remote code: `AutoTokenizer.from_pretrained(folder)` returns this class once `lcrec`
    is imported, or with `trust_remote_code=True` where it is not installed.
    Prompts are left-padded: batched beam search needs every row's generation to start at the same column.
    """

    vocab_files_names = {
        "tokenizer_file": "tokenizer.json",
        "item_index_file": INDEX_FILE,
        "item_titles_file": TITLES_FILE,
    }
    model_input_names = ["input_ids", "attention_mask"]
    padding_side = "left"
    # Written into every tokenizer_config.json (transformers saves `_auto_map` when set).
    _auto_map = {"AutoTokenizer": [None, "tokenization_lcrec.LCRecTokenizer"]}

    def __init__(
        self,
        *args,
        item_index: ItemIndex | None = None,
        titles: Mapping[int, str] | None = None,
        item_index_file: str | None = None,
        item_titles_file: str | None = None,
        **kwargs,
    ):
        if item_index is None:
            if item_index_file is None or not os.path.isfile(item_index_file):
                source = kwargs.get("name_or_path") or "the tokenizer folder"
                # ValueError, not FileNotFoundError: transformers rewrites OSErrors raised here into a vague message.
                raise ValueError(f"{source}: no {INDEX_FILE}; an LCRecTokenizer needs its item index")
            item_index = ItemIndex.load(item_index_file)
        if titles is None and item_titles_file is not None and os.path.isfile(item_titles_file):
            titles = _load_titles(item_titles_file)
        super().__init__(*args, **kwargs)
        self._item_index = item_index
        self.titles: dict[int, str] = {int(item): str(title) for item, title in (titles or {}).items()}
        self.index_token_ids = self._resolve_index_token_ids()

    @classmethod
    def register_for_auto_class(cls, auto_class: str = "AutoTokenizer") -> None:
        """Nothing to do: every `save_pretrained` writes the remote code and `auto_map` itself."""

    @classmethod
    def convert_to_native_format(cls, trust_remote_code: bool = False, **kwargs):
        """Our `tokenizer.json` is the complete backend (base vocabulary + index tokens): load it as it is."""
        return kwargs

    @classmethod
    def from_base(
        cls,
        base_tokenizer: PreTrainedTokenizerBase | str | os.PathLike,
        item_index: ItemIndex,
        titles: Mapping[int, str] | None = None,
        **kwargs,
    ) -> LCRecTokenizer:
        """Wrap a base tokenizer (object, folder or hub id) and add every level x code token of `item_index`.

        The base must be a fast (`tokenizers`-backed) tokenizer with an EOS token; a missing pad token
        becomes EOS. Raises ValueError when the base would split an index token.
        """
        if isinstance(base_tokenizer, (str, os.PathLike)):
            from transformers import AutoTokenizer

            base_tokenizer = AutoTokenizer.from_pretrained(base_tokenizer, **kwargs)
        backend = getattr(base_tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(
                f"{type(base_tokenizer).__name__} is not a fast tokenizer; "
                "LCRecTokenizer wraps `tokenizers`-backed tokenizers"
            )
        if base_tokenizer.eos_token is None:
            raise ValueError(
                f"base tokenizer {base_tokenizer.name_or_path!r} has no eos_token; an item index must end with EOS"
            )
        backend = copy.deepcopy(backend)
        backend.add_tokens([AddedToken(token, special=False, normalized=False) for token in item_index.all_tokens()])
        special = {
            name: str(value)
            for name, value in base_tokenizer.special_tokens_map.items()
            if isinstance(value, str) and name != "additional_special_tokens"
        }
        special.setdefault("pad_token", base_tokenizer.eos_token)
        init_kwargs = dict(
            special,
            chat_template=base_tokenizer.chat_template,
            model_max_length=base_tokenizer.model_max_length,
            clean_up_tokenization_spaces=base_tokenizer.clean_up_tokenization_spaces,
            padding_side="left",
            name_or_path=base_tokenizer.name_or_path,
        )
        extra = getattr(base_tokenizer, "extra_special_tokens", None)
        if extra:
            init_kwargs["extra_special_tokens"] = extra
        return cls(tokenizer_object=backend, item_index=item_index, titles=titles, **init_kwargs)

    @property
    def item_index(self) -> ItemIndex:
        return self._item_index

    @item_index.setter
    def item_index(self, item_index: ItemIndex) -> None:
        """Replace the catalogue (e.g. after adding cold-start items); its codebooks must match the tokens."""
        if item_index.codebook_sizes != self._item_index.codebook_sizes:
            raise ValueError(
                f"new index has codebooks {item_index.codebook_sizes}, "
                f"this tokenizer has {self._item_index.codebook_sizes}"
            )
        self._item_index = item_index

    def add_items(self, item_ids: Sequence[int], codes: np.ndarray, titles: Mapping[int, str] | None = None) -> None:
        """Add cold-start items to the catalogue: their tokens already exist, so no model resize is needed."""
        self.item_index = self._item_index.with_items(item_ids, codes)
        self.titles.update({int(item): str(title) for item, title in (titles or {}).items()})

    @property
    def first_index_token_id(self) -> int:
        return int(self.index_token_ids[0, 0])

    def _resolve_index_token_ids(self) -> torch.Tensor:
        """(levels, widest codebook) table of index-token ids, after checking each is one id, also back to back."""
        index = self._item_index
        vocab = self.get_vocab()
        missing = [token for token in index.all_tokens() if token not in vocab]
        if missing:
            raise ValueError(
                f"{len(missing)} index tokens are not in the vocabulary, e.g. {missing[:5]}; "
                "build the tokenizer with LCRecTokenizer.from_base"
            )
        table = torch.full((index.levels, max(index.codebook_sizes)), -1, dtype=torch.int64)
        for level, size in enumerate(index.codebook_sizes):
            table[level, :size] = torch.tensor([vocab[level_token(level, code)] for code in range(size)])
        # Contexts: each level's tokens back to back, and all levels interleaved as in items (every boundary).
        sequences = [[(level, code) for code in range(size)] for level, size in enumerate(index.codebook_sizes)]
        sequences.append(
            [
                (level, step % size)
                for step in range(max(index.codebook_sizes))
                for level, size in enumerate(index.codebook_sizes)
            ]
        )
        for sequence in sequences:
            text = "".join(level_token(level, code) for level, code in sequence)
            expected = [int(table[level, code]) for level, code in sequence]
            if self.backend_tokenizer.encode(text, add_special_tokens=False).ids != expected:
                tokens = [level_token(level, code) for level, code in sequence]
                encode = self.backend_tokenizer.encode
                alone = [token for token in tokens if encode(token, add_special_tokens=False).ids != [vocab[token]]]
                what = (
                    f"{alone[0]!r} encodes to several ids"
                    if alone
                    else f"adjacent index tokens do not encode one id each (in {text[:60]!r}...)"
                )
                raise ValueError(
                    f"the base tokenizer splits index tokens: {what}; such a tokenizer cannot represent item indices"
                )
        return table

    def item_tokens(self, item_id: int) -> str:
        """`"<a_1><b_2><c_3><d_4>"` for an item of the catalogue."""
        return self._item_index.tokens(item_id)

    def title(self, item_id: int) -> str:
        """The item's title, or `"item <id>"` when the tokenizer has no title for it."""
        return self.titles.get(int(item_id), f"item {item_id}")

    def _save_pretrained(self, save_directory, file_names, legacy_format=None, filename_prefix=None):
        file_names = super()._save_pretrained(
            save_directory, file_names, legacy_format=legacy_format, filename_prefix=filename_prefix
        )
        index_file = os.path.join(save_directory, INDEX_FILE)
        titles_file = os.path.join(save_directory, TITLES_FILE)
        self._item_index.save(index_file)
        write_json(titles_file, {str(item): title for item, title in sorted(self.titles.items())}, indent=None)
        code_files = tuple(str(path) for path in write_remote_code(save_directory))
        return file_names + (index_file, titles_file) + code_files


def _load_titles(path: str | os.PathLike) -> dict[int, str]:
    data = read_json(path, expect=dict)
    titles = {}
    for item, title in data.items():
        try:
            titles[int(item)] = title
        except ValueError:
            raise ValueError(f"{path}: item id {item!r} is not an integer") from None
        if not isinstance(title, str):
            raise ValueError(f"{path}: item {item}: the title must be a string, got {type(title).__name__}")
    return titles


__all__ = ["LCRecTokenizer"]
