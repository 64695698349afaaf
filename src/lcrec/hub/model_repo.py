"""Model repos: a model folder as lcrec writes it (weights and/or LoRA adapter, tokenizer with its index, remote code,
generation_config.json, the card's records) published with lcrec's card, after checking its index.

`push_model` publishes a folder (`lcrec push model`); `push_pretrained` publishes a loaded model
(`LCRecForCausalLM.push_to_hub`) the same way, so both give the same repo and the same card.
"""

from __future__ import annotations

import filecmp
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from transformers.utils import CONFIG_NAME, GENERATION_CONFIG_NAME

from ..cards.model_card import (
    CARD_NAME,
    CARD_RECORDS,
    METRICS_NAME,
    TRAINING_RESULTS,
    LCRecModelCardData,
    copy_record,
    index_stats_file,
    is_hub_id,
    publisher_fields,
    require_model_dir,
)
from ..indexing.builder import STATS_NAME as INDEX_STATS_NAME
from ..indexing.item_index import INDEX_FILENAME, ItemIndex, all_index_tokens
from ..io_utils import read_json
from ..lora import ADAPTER_SUBFOLDER
from .commit import PushResult, StagedRepo, folder_listing, push_staged
from .dataset_repo import INDEX_SUBFOLDER, hub_lookup_error, load_index

logger = logging.getLogger(__name__)

# Top-level files of a model folder that make up the model repo besides weights, remote code and card records.
MODEL_FILES = (
    CONFIG_NAME,
    GENERATION_CONFIG_NAME,
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    INDEX_FILENAME,
    "item_titles.json",
)
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
WEIGHT_CHOICES = ("auto", "merged", "adapter", "both")
# Records that describe the weights themselves: a loaded model whose weights changed no longer matches them.
WEIGHT_RECORDS = (TRAINING_RESULTS, METRICS_NAME)


def check_model_index(model_dir: str | os.PathLike, reference: ItemIndex | None = None) -> ItemIndex:
    """The model folder's item index, after checking it agrees with its config, tokenizer and `reference`.

    Raises ValueError naming the disagreement: a model whose index does not match its tokenizer (or the
    dataset's index) would recommend the wrong items, so it is never published.
    """
    model_dir = Path(model_dir)
    if not (model_dir / INDEX_FILENAME).is_file():
        raise FileNotFoundError(
            f"{model_dir}: no {INDEX_FILENAME} (the tokenizer's item index); is this an lcrec model folder?"
        )
    index = ItemIndex.from_path(model_dir / INDEX_FILENAME)
    config = read_json(model_dir / "config.json", expect=dict)
    if config.get("codebook_sizes") is not None and list(config["codebook_sizes"]) != index.codebook_sizes:
        raise ValueError(
            f"{model_dir}: config.json has codebook_sizes {config['codebook_sizes']} but the tokenizer's "
            f"index has {index.codebook_sizes}"
        )
    if config.get("num_items") is not None and int(config["num_items"]) != index.num_items:
        raise ValueError(
            f"{model_dir}: config.json was built for {config['num_items']} items but the tokenizer's index "
            f"has {index.num_items}"
        )
    recorded = config.get("index_fingerprint")
    if recorded is not None and recorded != index.fingerprint:
        raise ValueError(
            f"{model_dir}: the tokenizer's index (fingerprint {index.fingerprint}) is not the one the model "
            f"was built for ({recorded})"
        )
    tokenizer_file = model_dir / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"{model_dir}: no tokenizer.json")
    vocabulary = {
        entry["content"]: entry["id"] for entry in read_json(tokenizer_file, expect=dict).get("added_tokens", [])
    }
    index_tokens = all_index_tokens(index.codebook_sizes)
    absent = [token for token in index_tokens if token not in vocabulary]
    if absent:
        raise ValueError(
            f"{model_dir}: the tokenizer lacks {len(absent)} index tokens of its index, e.g. {absent[:5]}"
        )
    first = config.get("first_index_token_id")
    if first is not None and vocabulary[index_tokens[0]] != first:
        raise ValueError(
            f"{model_dir}: the tokenizer puts {index_tokens[0]} at id {vocabulary[index_tokens[0]]}, the "
            f"model's embeddings expect it at {first}"
        )
    if reference is not None and reference.fingerprint != index.fingerprint:
        if reference.codebook_sizes != index.codebook_sizes:
            raise ValueError(
                f"{model_dir}: the tokenizer's index has codebook sizes {index.codebook_sizes}, the dataset's "
                f"index {reference.codebook_sizes}"
            )
        if set(reference.item_ids) != set(index.item_ids):
            only = sorted(set(reference.item_ids) ^ set(index.item_ids))
            raise ValueError(
                f"{model_dir}: the tokenizer's index and the dataset's index cover different items "
                f"({len(only)} differ, e.g. {only[:5]})"
            )
        differing = [item for item in index.item_ids if index.codes_of(item) != reference.codes_of(item)]
        item = differing[0]
        raise ValueError(
            f"{model_dir}: the tokenizer's index does not match the dataset's index: {len(differing)} items differ, "
            f"e.g. item {item}: {index.tokens(item)} vs {reference.tokens(item)}"
        )
    return index


def _adapter_folder(model_dir: Path) -> Path | None:
    """Where the folder's LoRA adapter is: `adapter/` beside merged weights, or the folder itself."""
    for folder in (model_dir / ADAPTER_SUBFOLDER, model_dir):
        if (folder / "adapter_config.json").is_file():
            return folder
    return None


def _weights_to_publish(model_dir: Path, weights: str) -> tuple[bool, Path | None]:
    """(publish merged weights, adapter folder to publish or None) for `weights`, checking the files exist."""
    if weights not in WEIGHT_CHOICES:
        raise ValueError(f"weights must be one of {WEIGHT_CHOICES}, got {weights!r}")
    has_merged = any(model_dir.glob("model*.safetensors"))
    adapter = _adapter_folder(model_dir)
    if weights == "auto":
        if not (has_merged or adapter):
            raise FileNotFoundError(
                f"{model_dir}: neither weights (model*.safetensors) nor a LoRA adapter (adapter_config.json) "
                f"to publish"
            )
        return has_merged, adapter
    if weights in ("merged", "both") and not has_merged:
        raise FileNotFoundError(f"{model_dir}: no model*.safetensors to publish as merged weights")
    if weights in ("adapter", "both") and adapter is None:
        raise FileNotFoundError(
            f"{model_dir}: no LoRA adapter (adapter_config.json here or in {ADAPTER_SUBFOLDER}/); was it "
            f"trained with LoRA?"
        )
    return weights in ("merged", "both"), adapter if weights in ("adapter", "both") else None


def _dataset_repo_index_stats(dataset_repo: str, staged: Path, token, endpoint: str | None) -> None:
    """Copy the dataset repo's index/index_stats.json into `staged` when the repo has one."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    try:
        path = hf_hub_download(
            dataset_repo, f"{INDEX_SUBFOLDER}/{INDEX_STATS_NAME}", repo_type="dataset", token=token, endpoint=endpoint
        )
    except RemoteEntryNotFoundError:
        return
    except Exception as error:  # noqa: BLE001 - turned into a one-line error, or re-raised as it is
        raise hub_lookup_error(dataset_repo, f"{INDEX_SUBFOLDER}/{INDEX_STATS_NAME}", error) from None
    copy_record(path, staged / INDEX_STATS_NAME)


def stage_model(
    model_dir: str | os.PathLike,
    staged: Path,
    repo_id: str,
    weights: str = "auto",
    metrics_path: str | os.PathLike | None = None,
    index_dir: str | os.PathLike | None = None,
    dataset_repo: str | None = None,
    license: str | None = None,
    tags: Sequence[str] = (),
    reproduce: Sequence[str] = (),
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> StagedRepo:
    """Write the model repo into `staged`, after refusing a model whose index disagrees with its tokenizer or dataset.

    The repo gets the folder's generation_config.json as it is (the one place the beam settings live; an older folder
    without one gets `default_generation_config`), its card
    records (training_results.json, dataset_stats.json, index_stats.json, metrics.json; `metrics_path` and
    `index_dir` replace the last two) and lcrec's card rendered from what was staged. The publisher's fields not
    given here are kept from the folder's card.
    """
    model_dir = require_model_dir(model_dir)
    if index_dir is not None:
        reference = load_index(index_dir)
    elif dataset_repo is not None:
        reference = load_index(dataset_repo, token=token, endpoint=endpoint)
    else:
        reference = None
    check_model_index(model_dir, reference)
    merged, adapter = _weights_to_publish(model_dir, weights)
    config = read_json(model_dir / "config.json", expect=dict)
    base_model = config.get("base_model_name_or_path")
    if adapter is not None and not merged and not is_hub_id(base_model):
        raise ValueError(
            f"{model_dir}: an adapter-only repo rebuilds its base model from config.json's base_model_name_or_path, "
            f"which is {base_model!r}, not a Hub id; publish merged weights (--weights merged or both)"
        )

    published = [name for name in MODEL_FILES if (model_dir / name).is_file()]
    published += sorted(path.name for path in model_dir.glob("*.py"))
    published += [name for name in CARD_RECORDS if (model_dir / name).is_file()]
    if merged:
        published += sorted(path.name for path in model_dir.glob("model*.safetensors"))
        published += [name for name in ("model.safetensors.index.json",) if (model_dir / name).is_file()]
    for name in published:
        copy_record(model_dir / name, staged / name)
    if adapter is not None:
        # Beside merged weights the adapter goes to adapter/ (for PEFT); alone it sits at the root, where
        # LCRecForCausalLM.from_pretrained rebuilds the base model named in config.json and loads it.
        prefix = f"{ADAPTER_SUBFOLDER}/" if merged else ""
        for name in ADAPTER_FILES:
            if not (adapter / name).is_file():
                raise FileNotFoundError(f"{adapter}: the LoRA adapter lacks {name}")
            copy_record(adapter / name, staged / f"{prefix}{name}")
    if not (model_dir / GENERATION_CONFIG_NAME).is_file():
        # A folder saved before lcrec wrote one gets the generation config every model lcrec builds carries.
        from ..configuration_lcrec import LCRecConfig, default_generation_config

        default_generation_config(LCRecConfig.from_pretrained(model_dir)).save_pretrained(staged)
        logger.info("%s has no %s; publishing lcrec's default one", model_dir, GENERATION_CONFIG_NAME)
    if metrics_path is not None:
        read_json(metrics_path, expect=dict)
        copy_record(metrics_path, staged / METRICS_NAME)
    if index_dir is not None:
        stats = index_stats_file(index_dir)
        if stats is not None:
            copy_record(stats, staged / INDEX_STATS_NAME)
    elif dataset_repo is not None and not (staged / INDEX_STATS_NAME).is_file():
        _dataset_repo_index_stats(dataset_repo, staged, token, endpoint)

    kept = publisher_fields(model_dir)
    card = LCRecModelCardData(
        model_id=repo_id,
        license=license or kept.get("license"),
        language=kept.get("language"),
        dataset_id=dataset_repo or kept.get("dataset_id"),
        tags=list(dict.fromkeys([*kept.get("tags", []), *tags])),
        reproduce=list(reproduce),
    ).read_model_dir(staged)
    (staged / CARD_NAME).write_text(card.render(), encoding="utf-8")
    skipped = sorted(set(folder_listing(model_dir)) - set(folder_listing(staged)))
    if skipped:
        logger.info(
            "not published from %s (%d files): %s",
            model_dir,
            len(skipped),
            ", ".join(skipped[:20]) + (" ..." if len(skipped) > 20 else ""),
        )
    return StagedRepo(repo_id, "model", folder_listing(staged), skipped)


def push_model(
    model_dir: str | os.PathLike,
    repo_id: str,
    weights: str = "auto",
    metrics_path: str | os.PathLike | None = None,
    index_dir: str | os.PathLike | None = None,
    dataset_repo: str | None = None,
    license: str | None = None,
    tags: Sequence[str] = (),
    reproduce: Sequence[str] = (),
    revision: str | None = None,
    private: bool | None = None,
    dry_run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    commit_message: str = "Upload model with lcrec",
    commit_description: str | None = None,
    create_pr: bool = False,
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Publish a model folder with lcrec's card, or stage it into `dry_run_dir`."""
    return push_staged(
        lambda folder: stage_model(
            model_dir,
            folder,
            repo_id,
            weights=weights,
            metrics_path=metrics_path,
            index_dir=index_dir,
            dataset_repo=dataset_repo,
            license=license,
            tags=tags,
            reproduce=reproduce,
            token=token,
            endpoint=endpoint,
        ),
        repo_id,
        "model",
        sources=(model_dir, metrics_path, index_dir),
        revision=revision,
        private=private,
        dry_run_dir=dry_run_dir,
        overwrite=overwrite,
        commit_message=commit_message,
        commit_description=commit_description,
        create_pr=create_pr,
        token=token,
        endpoint=endpoint,
    )


def _is_lcrec_folder(path: Path) -> bool:
    """Whether `path` is a local lcrec model folder (a model built by from_base names its base LM's folder instead)."""
    config = path / "config.json"
    return config.is_file() and read_json(config, expect=dict).get("model_type") == "lcrec"


def _same_weights(first: Path, second: Path) -> bool:
    """Whether two folders hold byte-identical weight files (safetensors output is deterministic)."""
    names = sorted(path.name for path in first.glob("model*.safetensors"))
    if not names or names != sorted(path.name for path in second.glob("model*.safetensors")):
        return False
    return all(filecmp.cmp(first / name, second / name, shallow=False) for name in names)


def push_pretrained(
    model,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str | None = "50GB",
    tags: Sequence[str] | None = None,
    license: str | None = None,
    dataset_repo: str | None = None,
    dry_run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    endpoint: str | None = None,
):
    """Publish a loaded LCRecForCausalLM as `lcrec push model` publishes its folder; returns the CommitInfo (None for
    a dry run, which writes the repo into `dry_run_dir` instead).

    The model is saved with `save_pretrained` into a temporary folder. When it was loaded from a local folder, that
    folder's card records come along (index and dataset statistics always; training and evaluation records only
    while the weights are still byte-identical to the folder's, since they describe those weights).
    """
    with tempfile.TemporaryDirectory(prefix="lcrec-save-") as tmp:
        folder = Path(tmp)
        model.save_pretrained(folder, max_shard_size=max_shard_size)
        source = Path(model.name_or_path) if model.name_or_path else None
        if source is not None and _is_lcrec_folder(source) and source.resolve() != folder.resolve():
            unchanged = _same_weights(source, folder)
            for name in (*CARD_RECORDS, CARD_NAME):
                if not (source / name).is_file() or (folder / name).exists():
                    continue
                if name in WEIGHT_RECORDS and not unchanged:
                    logger.info("not publishing %s of %s: the weights changed since it was written", name, source)
                    continue
                copy_record(source / name, folder / name)
        result = push_model(
            folder,
            repo_id,
            license=license,
            dataset_repo=dataset_repo,
            tags=tags or (),
            revision=revision,
            private=private,
            dry_run_dir=dry_run_dir,
            overwrite=overwrite,
            commit_message=commit_message or "Upload model with lcrec",
            commit_description=commit_description,
            create_pr=create_pr,
            token=token,
            endpoint=endpoint,
        )
    return result.commit
