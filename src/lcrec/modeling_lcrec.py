"""`LCRecForCausalLM`: a base causal LM with semantic-ID tokens and trie-constrained `recommend()`."""

from __future__ import annotations

import copy
import logging
import numbers
import os
import threading
from collections.abc import Sequence

import torch
from transformers import AutoModelForCausalLM, GenerationConfig, GenerationMixin, LogitsProcessorList, PreTrainedConfig, PreTrainedModel
from transformers.utils import cached_file

from .configuration_lcrec import LCRecConfig
from .generation.logits_process import SemanticIdLogitsProcessor
from .remote_code import MODEL_AUTO_MAP, TOKENIZER_AUTO_MAP, is_packaged, write_remote_code
from .tasks.templates import Template, load_templates
from .tokenization_lcrec import INDEX_FILE, LCRecTokenizer

logger = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
ADAPTER_CONFIG_FILE = "adapter_config.json"
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


class LCRecForCausalLM(PreTrainedModel, GenerationMixin):
    """Wraps any causal LM (`self.language_model`) whose vocabulary holds the index tokens of an `LCRecTokenizer`.

    `recommend()` turns item-id histories into seqrec prompts and runs beam search constrained by the catalogue's
    prefix trie, so every returned item exists. The attached tokenizer (`model.tokenizer`) is loaded and saved
    with the model. Build one with `from_base`, load one with `AutoModel.from_pretrained` after `import lcrec`.
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
        self._recommend_lock = threading.Lock()
        self.post_init()

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
    ) -> "LCRecForCausalLM":
        """Wrap a base LM (model, config, folder or hub id) and size its vocabulary for `tokenizer`.

        For a pretrained base, new rows (the index tokens, and any row past the base vocabulary) start at the
        mean of the base's existing rows plus Gaussian noise of `init_noise` x the per-dimension std, for the
        input embeddings and an untied output head alike. Mean init keeps the new tokens' logits at the average
        level, so the untrained model neither favours nor suppresses them (Hewitt 2021), and the noise lets
        codes differ from the first step. Existing rows are never touched. A base given as a config is trained
        from scratch: every row is already a fresh random row, so index rows keep the model's own init (mean
        init would shrink them to a tenth of the other rows' spread, which slows learning which item is which).
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
            raise ValueError("base_model is already an LCRecForCausalLM; pass its language_model or load it with from_pretrained")
        init_rows = _resize_for_tokenizer(base_model, tokenizer, init_noise=None if from_scratch else init_noise, seed=seed)
        if seqrec_templates is None:
            seqrec_templates = [template.instruction for template in load_templates("seqrec")]
        config = LCRecConfig(
            # Passed on explicitly: a config built without it resets its sub-config's attention backend.
            attn_implementation=base_model.config._attn_implementation,
            text_config=base_model.config,
            codebook_sizes=list(tokenizer.item_index.codebook_sizes),
            first_index_token_id=tokenizer.first_index_token_id,
            num_items=tokenizer.item_index.num_items,
            base_model_name_or_path=name or None,
            seqrec_templates=list(seqrec_templates),
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
        model = cls(config, language_model=base_model)
        model.generation_config = copy.deepcopy(base_model.generation_config)
        model.name_or_path = name
        model.set_tokenizer(tokenizer)
        logger.info("wrapped %s: %d new rows initialised, vocabulary %d", name or type(base_model).__name__, len(init_rows), len(tokenizer))
        return model

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """Load a saved LC-Rec folder (full weights, or an adapter folder: see `lcrec.lora.save_adapter`) and its tokenizer."""
        hub_kwargs = {key: kwargs[key] for key in _HUB_KWARGS if key in kwargs}
        path = str(pretrained_model_name_or_path)
        if _has_file(path, ADAPTER_CONFIG_FILE, hub_kwargs) and not any(_has_file(path, name, hub_kwargs) for name in WEIGHT_FILES):
            return cls._from_adapter_folder(path, hub_kwargs, **kwargs)
        model = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        if _has_file(path, INDEX_FILE, hub_kwargs):
            model.set_tokenizer(LCRecTokenizer.from_pretrained(path, **hub_kwargs))
        return model

    @classmethod
    def _from_adapter_folder(cls, path: str, hub_kwargs: dict, **kwargs) -> "LCRecForCausalLM":
        """An adapter folder holds our config, tokenizer and the adapter; the base LM comes from the config's name."""
        config = kwargs.pop("config", None)
        if not isinstance(config, LCRecConfig):
            config = LCRecConfig.from_pretrained(path, **hub_kwargs)
        if not config.base_model_name_or_path:
            raise ValueError(f"{path}: adapter folder without base_model_name_or_path in config.json; cannot rebuild the base model")
        tokenizer = LCRecTokenizer.from_pretrained(path, **hub_kwargs)
        model_kwargs = {key: kwargs[key] for key in ("dtype", "torch_dtype", "device_map", "attn_implementation") if key in kwargs}
        model = cls.from_base(config.base_model_name_or_path, tokenizer, seqrec_templates=config.seqrec_templates, **model_kwargs)
        model.load_adapter(path, adapter_kwargs={key: value for key, value in hub_kwargs.items() if key != "force_download"})
        return model

    # ---- tokenizer ----------------------------------------------------------------------------------------------

    def set_tokenizer(self, tokenizer: LCRecTokenizer) -> None:
        """Attach the tokenizer recommend() uses; its index must be the one this model was built for."""
        config = self.config
        index = tokenizer.item_index
        if list(index.codebook_sizes) != list(config.codebook_sizes or []):
            raise ValueError(f"tokenizer index has codebooks {index.codebook_sizes}, the model was built for {config.codebook_sizes}")
        if tokenizer.first_index_token_id != config.first_index_token_id:
            raise ValueError(
                f"tokenizer puts the index tokens at id {tokenizer.first_index_token_id}, the model expects {config.first_index_token_id}: "
                "this tokenizer does not belong to this model"
            )
        rows = self.get_input_embeddings().weight.shape[0]
        if int(tokenizer.index_token_ids.max()) >= rows or len(tokenizer) > rows:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens but the model's embeddings have {rows} rows")
        self.tokenizer = tokenizer

    def _require_tokenizer(self, tokenizer: LCRecTokenizer | None) -> LCRecTokenizer:
        if tokenizer is not None:
            self.set_tokenizer(tokenizer)
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer attached: load it from a folder with index.json or call model.set_tokenizer(tokenizer)")
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

    def get_decoder(self):
        return self.language_model.get_decoder()

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

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """Save weights, config and the attached tokenizer; after `register_for_auto_class`, also the remote code."""
        cls = type(self)
        auto_class = cls._auto_class
        remote = auto_class is not None and is_packaged()
        if not remote:
            super().save_pretrained(save_directory, *args, **kwargs)
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(save_directory)
            return
        # The package layout is not flat: write a flattened bundle ourselves instead of transformers' file copy.
        had_auto_map, saved_auto_map = hasattr(self.config, "auto_map"), getattr(self.config, "auto_map", None)
        self.config.auto_map = dict(MODEL_AUTO_MAP)
        cls._auto_class = None
        try:
            super().save_pretrained(save_directory, *args, **kwargs)
            if self.tokenizer is not None:
                self.tokenizer._auto_map = dict(TOKENIZER_AUTO_MAP)
                self.tokenizer.save_pretrained(save_directory)
        finally:
            cls._auto_class = auto_class
            if had_auto_map:
                self.config.auto_map = saved_auto_map
            else:
                del self.config.auto_map
            if self.tokenizer is not None:
                self.tokenizer._auto_map = None
        write_remote_code(save_directory)

    # ---- recommendation -----------------------------------------------------------------------------------------

    def build_prompt(self, history: Sequence[int], template: int = 0, max_history: int | None = None, skip_unknown: bool = False) -> str:
        """The seqrec prompt for one history (the most recent `max_history` items, default the config's 20)."""
        tokenizer = self._require_tokenizer(None)
        templates = self.config.seqrec_templates or []
        if not 0 <= template < len(templates):
            raise ValueError(f"template {template} does not exist: this model has {len(templates)} seqrec templates")
        history_text = tokenizer.format_history(history, max_items=max_history or self.config.max_history, skip_unknown=skip_unknown)
        prompt, _ = Template("seqrec", template, templates[template], "{item}").render(history=history_text, item="")
        return prompt

    def recommend_generation_config(self, num_beams: int) -> GenerationConfig:
        """Deterministic beam search over one item: `levels` index tokens then EOS, `num_beams` ranked sequences."""
        tokenizer = self._require_tokenizer(None)
        return GenerationConfig(
            do_sample=False,
            num_beams=num_beams,
            num_return_sequences=num_beams,
            max_new_tokens=tokenizer.item_index.levels + 1,
            min_new_tokens=0,
            early_stopping=True,
            length_penalty=0.0,
            output_scores=True,
            return_dict_in_generate=True,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )

    @torch.no_grad()
    def recommend(
        self,
        histories: Sequence[Sequence[int]] | Sequence[int],
        top_k: int = 10,
        num_beams: int | None = None,
        batch_size: int = 8,
        template: int = 0,
        max_history: int | None = None,
        skip_unknown: bool = False,
        tokenizer: LCRecTokenizer | None = None,
    ) -> list[list[tuple[int, float]]]:
        """Top-`top_k` (item_id, log-probability) per history, best first; always catalogue items, never repeated.

        `histories` is a list of item-id lists, or one item-id list (one user). `num_beams` defaults to `top_k`
        and is capped at the catalogue size; fewer than `top_k` items come back only when the catalogue is
        smaller. Unknown ids raise KeyError naming them (`skip_unknown=True` drops them with a warning); an
        empty history raises ValueError. Sampling settings in `generation_config` are ignored.
        """
        tokenizer = self._require_tokenizer(tokenizer)
        if len(histories) and isinstance(histories[0], numbers.Integral):
            histories = [histories]
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        num_beams = top_k if num_beams is None else num_beams
        if num_beams < top_k:
            raise ValueError(f"num_beams ({num_beams}) must be at least top_k ({top_k})")
        # No more beams than items; at least two, so transformers runs beam search (which reports sequence scores).
        num_beams = max(2, min(num_beams, tokenizer.trie.num_sequences))
        prompts = []
        for user, history in enumerate(histories):
            try:
                prompts.append(self.build_prompt(history, template, max_history, skip_unknown))
            except (KeyError, ValueError) as error:
                message = str(error).strip("'\"")
                raise type(error)(f"history {user}: {message}") from None
        # Similar lengths batch together (less padding); results go back in input order.
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[list[tuple[int, float]]] = [[] for _ in prompts]
        generation_config = self.recommend_generation_config(num_beams)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            ranked = self._recommend_batch([prompts[i] for i in chunk], tokenizer, generation_config, top_k)
            for user, items in zip(chunk, ranked):
                results[user] = items
        return results

    def _recommend_batch(self, prompts: list[str], tokenizer: LCRecTokenizer, generation_config: GenerationConfig, top_k: int) -> list[list[tuple[int, float]]]:
        inputs = tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left").to(self.device)
        prompt_length = inputs["input_ids"].shape[1]
        processor = SemanticIdLogitsProcessor(tokenizer.trie, tokenizer.index_token_ids, tokenizer.eos_token_id, prompt_length)
        beams = generation_config.num_return_sequences
        with self._recommend_lock, _deterministic_decoding(self):
            cache = self._shared_prefill(inputs["input_ids"], inputs["attention_mask"], beams)
            output = self.generate(**inputs, cache=cache, generation_config=generation_config, logits_processor=LogitsProcessorList([processor]))
        items = tokenizer.decode_items(output.sequences[:, prompt_length:].cpu())
        scores = output.sequences_scores.float().cpu().tolist()
        ranked = []
        for user in range(len(prompts)):
            seen, best = set(), []
            for beam in range(user * beams, (user + 1) * beams):
                item, score = items[beam], scores[beam]
                # Beam search pads short beam sets with copies of live beams (score ~ -1e9) or masked ones (-inf).
                if item is None or item in seen or not score > -1e8:
                    continue
                seen.add(item)
                best.append((item, score))
            ranked.append(sorted(best, key=lambda pair: -pair[1])[:top_k])
        return ranked


    def _shared_prefill(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, beams: int):
        """The KV cache of every prompt but its last token, computed once per user and repeated for each beam.

        generate() would expand the prompts to batch x beams rows before its first forward, so the prompt,
        most of the work, would be computed `beams` times over; from this cache it only runs the last token.
        """
        from transformers import DynamicCache

        if input_ids.shape[1] < 2:
            return None
        cache = DynamicCache(config=self.config.get_text_config(decoder=True))
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        self.language_model(
            input_ids=input_ids[:, :-1],
            attention_mask=attention_mask[:, :-1],
            position_ids=position_ids[:, :-1],
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        cache.batch_repeat_interleave(beams)
        return cache


class _deterministic_decoding:
    """Eval mode, and a bare GenerationConfig so nothing a checkpoint ships (sampling, penalties, forced tokens) leaks in."""

    def __init__(self, model: PreTrainedModel):
        self.model = model

    def __enter__(self):
        self.saved, self.was_training = self.model.generation_config, self.model.training
        self.model.generation_config = GenerationConfig()
        self.model.eval()

    def __exit__(self, *exc):
        self.model.generation_config = self.saved
        self.model.train(self.was_training)


def _has_file(path: str, filename: str, hub_kwargs: dict) -> bool:
    if os.path.isdir(path):
        return os.path.isfile(os.path.join(path, hub_kwargs.get("subfolder") or "", filename))
    kwargs = {key: value for key, value in hub_kwargs.items() if key != "force_download"}
    return cached_file(path, filename, _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False, **kwargs) is not None


@torch.no_grad()
def _resize_for_tokenizer(model: PreTrainedModel, tokenizer: LCRecTokenizer, init_noise: float | None, seed: int) -> list[int]:
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
