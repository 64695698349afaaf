"""`LCRecForCausalLM`: a base causal LM with semantic-ID tokens; `recommend()` ranks catalogue items.

The class holds construction (`from_base`), forward, embedding plumbing, save/load and the Auto contract.
What recommending involves (checking histories, prompts, batching, constrained decoding) lives in
`lcrec.generation`; `recommend()` is the user-facing call into it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.utils import cached_file

from .configuration_lcrec import LCRecConfig, default_generation_config
from .io_utils import make_readable
from .prompts import DEFAULT_SEQREC_TEMPLATE, default_seqrec_instructions
from .remote_code import write_remote_code
from .tokenization_lcrec import INDEX_FILE, LCRecTokenizer

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
ADAPTER_CONFIG_FILE = "adapter_config.json"
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")
_PUSH_KWARGS = ("repo_id", "commit_message", "commit_description", "private", "token", "revision", "create_pr", "tags")


class LCRecForCausalLM(PreTrainedModel, GenerationMixin):
    """Wraps any causal LM (`self.language_model`) whose vocabulary holds the index tokens of an `LCRecTokenizer`.

    `recommend()` turns item-id histories into seqrec prompts and runs beam search constrained by the catalogue's
    prefix trie, so every returned item exists. The attached tokenizer (`model.tokenizer`) is loaded and saved
    with the model. Build one with `from_base`, load one with `AutoModel.from_pretrained` after `import lcrec`, or
    with `trust_remote_code=True` where lcrec is not installed: every saved folder carries its code.
    """

    config_class = LCRecConfig
    config: LCRecConfig
    base_model_prefix = ""
    # Ties are the base LM's: transformers collects them from the child model (`language_model.lm_head` etc.).
    _tied_weights_keys: dict[str, str] = {}
    supports_gradient_checkpointing = True
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_compile_fullgraph = True

    def __init__(self, config: LCRecConfig, language_model: PreTrainedModel | None = None):
        if language_model is not None:
            config.text_config = language_model.config
        super().__init__(config)
        if language_model is None:
            language_model = AutoModelForCausalLM.from_config(config.text_config)
        else:
            # A built base keeps its weights: mark them so post_init never re-initialises them.
            for module in language_model.modules():
                module._is_hf_initialized = True
        self.language_model = language_model
        self.tokenizer: LCRecTokenizer | None = None
        self.post_init()
        # A tied head is never saved: say so where the Trainer looks when it reloads a checkpoint
        # (load_best_model_at_end), so it re-ties instead of warning about a missing `lm_head.weight`.
        self._keys_to_ignore_on_save = set(self._keys_to_ignore_on_save or ()) | set(self.all_tied_weights_keys)

    @property
    def base_model(self) -> torch.nn.Module:
        """The base LM's backbone (e.g. LlamaModel): what transformers and TRL call the model's main body."""
        language_model = self._modules.get("language_model")
        return self if language_model is None else language_model.base_model

    @classmethod
    def register_for_auto_class(cls, auto_class: str = "AutoModel") -> None:
        """Nothing to do: every `save_pretrained` writes the remote code and `auto_map` itself."""

    # ---- construction -------------------------------------------------------------------------------------------

    @classmethod
    def from_base(
        cls,
        base_model: PreTrainedModel | PreTrainedConfig | str | os.PathLike,
        tokenizer: LCRecTokenizer,
        init_noise: float = 0.1,
        seed: int = 0,
        seqrec_templates: Sequence[str] | None = None,
        **model_kwargs,
    ) -> LCRecForCausalLM:
        """Wrap a base LM (model, config, folder or hub id) and size its vocabulary for `tokenizer`.

        For a pretrained base, new rows (the index tokens, and any row past the base vocabulary) start at the
        mean of the base's existing rows plus Gaussian noise of `init_noise` x the per-dimension std, for the
        input embeddings and an untied output head alike. Mean init keeps the new tokens' logits at the average
        level, so the untrained model neither favours nor suppresses them (Hewitt 2021), and the noise lets
        codes differ from the first step. Existing rows are never touched. A base given as a config is trained
        from scratch: every row is already a fresh random row, so index rows keep the model's own init (mean
        init would shrink them to a tenth of the other rows' spread, which slows learning which item is which).
        `seqrec_templates` are the instructions recommend() renders (default: those lcrec's task mix trains with).
        The tokenizer's `model_max_length` becomes the base's position limit when that is smaller.
        """
        name = ""
        from_scratch = isinstance(base_model, PreTrainedConfig)
        if from_scratch:
            name = base_model.name_or_path or ""
            base_model = AutoModelForCausalLM.from_config(base_model, **model_kwargs)
        elif isinstance(base_model, (str, os.PathLike)):
            name = str(base_model)
            base_model = AutoModelForCausalLM.from_pretrained(base_model, **model_kwargs)
        else:
            name = base_model.name_or_path or ""
        if isinstance(base_model, LCRecForCausalLM):
            raise ValueError(
                "base_model is already an LCRecForCausalLM; pass its language_model or load it with from_pretrained"
            )
        init_rows = _resize_for_tokenizer(
            base_model, tokenizer, init_noise=None if from_scratch else init_noise, seed=seed
        )
        config = LCRecConfig(
            # Passed on explicitly: a config built without it resets its sub-config's attention backend.
            attn_implementation=base_model.config._attn_implementation,
            text_config=base_model.config,
            codebook_sizes=list(tokenizer.item_index.codebook_sizes),
            first_index_token_id=tokenizer.first_index_token_id,
            num_items=tokenizer.item_index.num_items,
            index_fingerprint=tokenizer.item_index.fingerprint,
            base_model_name_or_path=name or None,
            seqrec_templates=list(default_seqrec_instructions() if seqrec_templates is None else seqrec_templates),
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
        model = cls(config, language_model=base_model)
        model.generation_config = default_generation_config(config)
        model.name_or_path = name
        positions = getattr(base_model.config, "max_position_embeddings", None)
        if positions and tokenizer.model_max_length > positions:
            tokenizer.model_max_length = int(positions)
        model.set_tokenizer(tokenizer)
        logger.info(
            "wrapped %s: %d new rows initialised, vocabulary %d",
            name or type(base_model).__name__,
            len(init_rows),
            len(tokenizer),
        )
        return model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Load a saved LC-Rec folder (full weights, or an adapter folder: see `lcrec.lora.save_adapter`) and its
        tokenizer. An index that is not the one the folder was saved with (edited or replaced) is refused."""
        hub_kwargs = {key: kwargs[key] for key in _HUB_KWARGS if key in kwargs}
        path = str(pretrained_model_name_or_path)
        if _has_file(path, ADAPTER_CONFIG_FILE, hub_kwargs) and not any(
            _has_file(path, name, hub_kwargs) for name in WEIGHT_FILES
        ):
            return cls._from_adapter_folder(path, hub_kwargs, **kwargs)
        model = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        if _has_file(path, INDEX_FILE, hub_kwargs):
            tokenizer = LCRecTokenizer.from_pretrained(path, **hub_kwargs)
            model.check_saved_index(tokenizer, source=path)
            model.set_tokenizer(tokenizer)
        return model

    @classmethod
    def _from_adapter_folder(cls, path: str, hub_kwargs: dict, **kwargs) -> LCRecForCausalLM:
        """An adapter folder holds our config, tokenizer and the adapter; the base LM comes from the config's name."""
        config = kwargs.pop("config", None)
        if not isinstance(config, LCRecConfig):
            config = LCRecConfig.from_pretrained(path, **hub_kwargs)
        if not config.base_model_name_or_path:
            raise ValueError(
                f"{path}: adapter folder without base_model_name_or_path in config.json; cannot rebuild the base model"
            )
        tokenizer = LCRecTokenizer.from_pretrained(path, **hub_kwargs)
        model_kwargs = {
            key: kwargs[key] for key in ("dtype", "torch_dtype", "device_map", "attn_implementation") if key in kwargs
        }
        model = cls.from_base(
            config.base_model_name_or_path, tokenizer, seqrec_templates=config.seqrec_templates, **model_kwargs
        )
        model.config.max_history = config.max_history
        model.check_saved_index(tokenizer, source=path, config=config)
        model.load_adapter(
            path, adapter_kwargs={key: value for key, value in hub_kwargs.items() if key != "force_download"}
        )
        return model

    # ---- tokenizer ----------------------------------------------------------------------------------------------

    def set_tokenizer(self, tokenizer: LCRecTokenizer) -> None:
        """Attach the tokenizer recommend() uses: its index tokens must be this model's (codebooks, token ids).

        Its catalogue may have grown (`tokenizer.add_items`: cold-start items reuse the existing tokens); the
        next `save_pretrained` records the attached catalogue's fingerprint.
        """
        config = self.config
        index = tokenizer.item_index
        if list(index.codebook_sizes) != list(config.codebook_sizes or []):
            raise ValueError(
                f"tokenizer index has codebooks {index.codebook_sizes}, the model has {config.codebook_sizes}"
            )
        if tokenizer.first_index_token_id != config.first_index_token_id:
            raise ValueError(
                f"tokenizer puts the index tokens at id {tokenizer.first_index_token_id}, the model expects "
                f"{config.first_index_token_id}: this tokenizer does not belong to this model"
            )
        rows = self.get_input_embeddings().weight.shape[0]
        if int(tokenizer.index_token_ids.max()) >= rows or len(tokenizer) > rows:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens but the model's embeddings have {rows} rows")
        self.tokenizer = tokenizer

    def check_saved_index(
        self, tokenizer: LCRecTokenizer, source: str = "the model folder", config: LCRecConfig | None = None
    ) -> None:
        """Refuse an index that is not the one the model was saved with (config's item count and fingerprint)."""
        config = config or self.config
        index = tokenizer.item_index
        if config.num_items is not None and index.num_items != config.num_items:
            raise ValueError(
                f"{source}: {INDEX_FILE} has {index.num_items} items but the model was saved with {config.num_items}: "
                "the index was edited or belongs to another model"
            )
        if config.index_fingerprint is not None and index.fingerprint != config.index_fingerprint:
            raise ValueError(
                f"{source}: {INDEX_FILE} (fingerprint {index.fingerprint}) is not the index the model was saved with "
                f"({config.index_fingerprint}): it was edited or belongs to another model"
            )

    def record_index(self) -> None:
        """Record the attached catalogue (item count, fingerprint) in the config; every save does this first."""
        if self.tokenizer is not None:
            self.config.num_items = self.tokenizer.item_index.num_items
            self.config.index_fingerprint = self.tokenizer.item_index.fingerprint

    def _require_tokenizer(self, tokenizer: LCRecTokenizer | None) -> LCRecTokenizer:
        if tokenizer is not None:
            self.set_tokenizer(tokenizer)
        if self.tokenizer is None:
            raise ValueError(
                "this model has no tokenizer attached: load it from a folder with index.json "
                "or call model.set_tokenizer(tokenizer)"
            )
        return self.tokenizer

    # ---- transformers plumbing ----------------------------------------------------------------------------------

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> torch.nn.Module | None:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: torch.nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ):
        """The base LM's forward, unchanged (attention and other kwargs pass through)."""
        if cache is not None:
            kwargs["cache"] = cache
        return self.language_model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            labels=labels,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )

    def prepare_inputs_for_generation(self, *args, **kwargs):
        return self.language_model.prepare_inputs_for_generation(*args, **kwargs)

    # ---- saving -------------------------------------------------------------------------------------------------

    def save_pretrained(self, save_directory: str | os.PathLike, *args, push_to_hub: bool = False, **kwargs) -> None:
        """Save weights, config (recording the attached catalogue), generation config, tokenizer with its index,
        and the remote code, so the folder loads with `trust_remote_code=True` where lcrec is not installed.
        `push_to_hub=True` then publishes the folder through `push_to_hub` (lcrec's model card)."""
        push = {key: kwargs.pop(key) for key in _PUSH_KWARGS if key in kwargs} if push_to_hub else {}
        self.record_index()
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            for weights in Path(save_directory).glob("model*.safetensors*"):
                make_readable(weights)  # safetensors writes 0600; a published folder is readable by others
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(save_directory)
            write_remote_code(save_directory)
        if push_to_hub:
            self.push_to_hub(push.pop("repo_id", Path(save_directory).name), **push)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
    ):
        """Publish as `lcrec push model` does: lcrec's model card, generation config and remote code in one commit."""
        options = dict(
            commit_message=commit_message,
            commit_description=commit_description,
            private=private,
            token=token,
            revision=revision,
            create_pr=create_pr,
            max_shard_size=max_shard_size,
            tags=tags,
        )
        try:
            from lcrec.hub import push_pretrained
        except ImportError:  # loaded as remote code where lcrec is not installed: transformers' upload
            return super().push_to_hub(repo_id, **options)
        return push_pretrained(self, repo_id, **options)

    # ---- recommendation -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def recommend(
        self,
        histories: Sequence[Sequence[int]] | Sequence[int],
        top_k: int = 10,
        num_beams: int | None = None,
        batch_size: int | None = None,
        template: int = DEFAULT_SEQREC_TEMPLATE,
        max_history: int | None = None,
        skip_unknown: bool = False,
        tokenizer: LCRecTokenizer | None = None,
    ) -> list[list[tuple[int, float]]]:
        """Top-`top_k` (item_id, log-probability) per history, best first; always catalogue items, never repeated.

        `histories`: a list of item-id lists, or one item-id list (one user); a 1-D integer tensor/array is one
        history, a 2-D one a history per row (no padding value). Strings, floats, booleans and None are refused
        (TypeError naming the history and position), as are empty histories (ValueError). Unknown ids raise
        KeyError naming them (`skip_unknown=True` drops them with a warning).
        `num_beams` defaults to the model's `generation_config.num_beams` (20), raised to `top_k` when smaller, so
        a top 5 is the top 5 of the evaluated ranking; an explicit `num_beams` below `top_k` is an error. A `top_k`
        above the catalogue returns the whole catalogue, with a warning. `batch_size` users share one prefill and
        one decoding loop (default: as many as fit a memory budget). Histories are cut to the most recent
        `max_history` items (default: the config's, i.e. what training used). Sampling settings in
        `generation_config` are ignored; dropout is off while decoding.
        """
        from .generation.recommendation import recommend_items

        return recommend_items(
            self,
            self._require_tokenizer(tokenizer),
            histories,
            top_k=top_k,
            num_beams=num_beams,
            batch_size=batch_size,
            template=template,
            max_history=max_history,
            skip_unknown=skip_unknown,
        )


def _has_file(path: str, filename: str, hub_kwargs: dict) -> bool:
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, hub_kwargs.get("subfolder") or "", filename))
    kwargs = {key: value for key, value in hub_kwargs.items() if key != "force_download"}
    return (
        cached_file(
            path,
            filename,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
            **kwargs,
        )
        is not None
    )


@torch.no_grad()
def _resize_for_tokenizer(
    model: PreTrainedModel, tokenizer: LCRecTokenizer, init_noise: float | None, seed: int
) -> list[int]:
    """Grow the embeddings (and an untied head) to the tokenizer and initialise the index rows; returns them.

    `init_noise=None` keeps the rows as the model initialised them (a model built from a config).
    """
    old_rows = model.get_input_embeddings().weight.shape[0]
    new_rows = max(len(tokenizer), old_rows)
    if new_rows > old_rows:
        model.resize_token_embeddings(new_rows, mean_resizing=False)
    index_ids = tokenizer.index_token_ids[tokenizer.index_token_ids >= 0]
    init_rows = torch.unique(torch.cat([index_ids, torch.arange(old_rows, new_rows)]))
    if init_noise is None:
        return init_rows.tolist()
    generator = torch.Generator().manual_seed(seed)
    matrices = [model.get_input_embeddings().weight]
    head = model.get_output_embeddings()
    if head is not None and head.weight is not matrices[0]:
        matrices.append(head.weight)
    for weight in matrices:
        keep = torch.ones(weight.shape[0], dtype=torch.bool)
        keep[init_rows] = False
        keep[old_rows:] = False
        existing = weight[keep].float()
        mean, std = existing.mean(dim=0), existing.std(dim=0)
        noise = torch.randn((len(init_rows), weight.shape[1]), generator=generator)
        weight[init_rows] = (mean + init_noise * std * noise).to(weight.dtype)
    return init_rows.tolist()


__all__ = ["LCRecForCausalLM"]
