"""Publish lcrec artifacts to the Hugging Face Hub and load them back.

A dataset repo holds the prepared interactions, items (and per-user texts) and the task mix as Parquet
configs (`load_dataset(repo, "interactions")`), plus the item index folder under `index/`
(`load_index(repo)`). A model repo holds the `save_pretrained` folder (config, tokenizer with its index,
weights and/or the LoRA adapter, remote-code files), a `generation_config.json` with the beam settings and
a model card rendered from `model_cards/`.

Every push first stages the complete repo in a temporary folder (the source folders are only read), then
sends it as ONE commit: a push that fails midway changes nothing remotely and can simply be rerun
(unchanged files are skipped). `dry_run_dir` writes the staged folder instead of uploading it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .evaluation.metrics import METRIC_NAMES
from .indexing.item_index import ItemIndex, all_index_tokens
from .io_utils import atomic_dir, write_json

logger = logging.getLogger(__name__)

INDEX_SUBFOLDER = "index"
INDEX_FILES = ("index.json", "rqvae.safetensors", "rqvae_config.json", "index_stats.json", "index_stats.png")
INTERACTION_SPLITS = ("train", "valid", "test")
# Top-level files of a model folder that make up the model repo (weights are chosen separately).
MODEL_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "index.json",
    "item_titles.json",
)
ADAPTER_SUBFOLDER = "adapter"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
WEIGHT_CHOICES = ("auto", "merged", "adapter", "both")
DEFAULT_NUM_BEAMS = 20
TAGS = ["lcrec", "recommendation", "generative-recommendation", "semantic-ids"]


@dataclass
class StagedRepo:
    """What a push would upload: the staged folder's files, and what the source had that is not published."""

    repo_id: str
    repo_type: str
    files: list[str]
    skipped: list[str] = field(default_factory=list)


@dataclass
class PushResult:
    """Where a push went (`commit_url` is None for a dry run, which fills `folder`)."""

    repo_id: str
    repo_type: str
    revision: str
    files: list[str]
    commit_url: str | None = None
    folder: Path | None = None


# --- loading ----------------------------------------------------------------------------------------


def load_index(repo_or_dir: str | os.PathLike, revision: str | None = None, repo_type: str = "dataset", token: str | bool | None = None, endpoint: str | None = None) -> ItemIndex:
    """The `ItemIndex` of a local index folder, index.json, model folder or dataset repo copy, or of a Hub repo.

    Dataset repos keep it at `index/index.json`, model repos (the tokenizer's copy) at `index.json`.
    """
    path = Path(repo_or_dir)
    if path.is_dir() and not (path / "index.json").is_file() and (path / INDEX_SUBFOLDER / "index.json").is_file():
        path = path / INDEX_SUBFOLDER  # a downloaded dataset repo
    if path.exists():
        return ItemIndex.from_path(path)
    from huggingface_hub import hf_hub_download

    filename = f"{INDEX_SUBFOLDER}/index.json" if repo_type == "dataset" else "index.json"
    local = hf_hub_download(str(repo_or_dir), filename, repo_type=repo_type, revision=revision, token=token, endpoint=endpoint)
    return ItemIndex.load(local)


# --- cards ------------------------------------------------------------------------------------------


def card_templates_dir() -> Path:
    """The `model_cards/` Jinja templates (`LCREC_MODEL_CARDS` overrides where they are)."""
    override = os.environ.get("LCREC_MODEL_CARDS")
    candidates = [Path(override)] if override else [Path(__file__).resolve().parents[2] / "model_cards", Path(__file__).resolve().parent / "model_cards"]
    for candidate in candidates:
        if (candidate / "model_card.md.j2").is_file():
            return candidate
    raise FileNotFoundError(f"model card templates not found in {', '.join(map(str, candidates))} (set LCREC_MODEL_CARDS)")


def render_card(template_name: str, card_data, **fields: Any) -> str:
    """Render `model_cards/<template_name>` with the card's YAML block as `card_data` (undefined names are errors)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(card_templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return environment.get_template(template_name).render(card_data=card_data.to_yaml(), **fields)


def _eval_results(metrics: Mapping[str, Any], dataset_name: str, dataset_repo: str | None) -> list:
    from huggingface_hub import EvalResult

    return [
        EvalResult(
            task_type="text-generation",
            task_name="Sequential recommendation (full ranking, leave-one-out test)",
            dataset_type=dataset_repo or dataset_name,
            dataset_name=dataset_name,
            dataset_split="test",
            dataset_config="interactions",
            metric_type=name.lower().replace("@", "_at_"),
            metric_name=name,
            metric_value=float(metrics[name]),
            metric_config=f"num_beams={metrics.get('num_beams')}",
        )
        for name in METRIC_NAMES
        if name in metrics
    ]


# --- staging ----------------------------------------------------------------------------------------


def _copy(source: Path, staged: Path, name: str) -> None:
    target = staged / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: malformed JSON at line {error.lineno}: {error.msg}") from None


def _stage_index(index_dir: Path, staged: Path, prefix: str) -> dict | None:
    """Copy the index folder's published files; returns its index_stats.json (None when absent)."""
    if not (index_dir / "index.json").is_file():
        raise FileNotFoundError(f"{index_dir}: no index.json (expected an `lcrec index --out` folder)")
    for name in INDEX_FILES:
        if (index_dir / name).is_file():
            _copy(index_dir / name, staged, f"{prefix}{name}")
    stats = index_dir / "index_stats.json"
    return _read_json(stats) if stats.is_file() else None


def _parquet_config(dataset_dict, config_name: str, staged: Path) -> dict:
    """Write each split as `<config>/<split>-00000-of-00001.parquet` (push_to_hub's layout); the card's `configs` entry."""
    data_files = []
    for split, dataset in dataset_dict.items():
        path = f"{config_name}/{split}-00000-of-00001.parquet"
        (staged / config_name).mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(str(staged / path))
        data_files.append({"split": split, "path": path})
    return {"config_name": config_name, "data_files": data_files}


def stage_dataset(
    prepared_dir: str | os.PathLike,
    staged: Path,
    repo_id: str,
    index_dir: str | os.PathLike | None = None,
    tasks_dir: str | os.PathLike | None = None,
    pretty_name: str | None = None,
    license: str | None = None,
) -> StagedRepo:
    """Write the dataset repo into `staged`: Parquet configs, `index/`, `stats.json`, README.md."""
    from datasets import DatasetDict, load_from_disk
    from huggingface_hub import DatasetCard, DatasetCardData

    from .data import load_prepared, load_stats

    prepared = load_prepared(prepared_dir)
    stats = load_stats(prepared_dir)
    configs = [
        _parquet_config(DatasetDict({split: prepared[split] for split in INTERACTION_SPLITS}), "interactions", staged),
        _parquet_config(DatasetDict({"train": prepared["items"]}), "items", staged),
    ]
    rows = {"interactions": {split: len(prepared[split]) for split in INTERACTION_SPLITS}, "items": {"train": len(prepared["items"])}}
    if "users" in prepared:
        configs.append(_parquet_config(DatasetDict({"train": prepared["users"]}), "users", staged))
        rows["users"] = {"train": len(prepared["users"])}
    if tasks_dir is not None:
        tasks = load_from_disk(str(tasks_dir))
        if not isinstance(tasks, DatasetDict):
            raise ValueError(f"{tasks_dir}: expected a DatasetDict folder (`lcrec tasks --out`)")
        configs.append(_parquet_config(tasks, "tasks", staged))
        rows["tasks"] = {split: len(dataset) for split, dataset in tasks.items()}
    write_json(staged / "stats.json", stats)
    index_stats = None
    if index_dir is not None:
        index = load_index(index_dir)
        catalogue = set(range(len(prepared["items"])))
        if set(index.item_ids) != catalogue:
            unknown, missing = sorted(set(index.item_ids) - catalogue), sorted(catalogue - set(index.item_ids))
            raise ValueError(f"{index_dir}: the index does not cover this dataset's items: {len(missing)} items have no index (e.g. {missing[:5]}), {len(unknown)} indexed ids are not items (e.g. {unknown[:5]})")
        index_stats = _stage_index(Path(index_dir), staged, f"{INDEX_SUBFOLDER}/")

    card_data = DatasetCardData(
        pretty_name=pretty_name or repo_id.split("/")[-1],
        license=license,
        task_categories=["text-generation"],
        tags=TAGS,
        configs=[{**config, "default": config["config_name"] == "interactions"} for config in configs],
    )
    text = render_card(
        "dataset_card.md.j2",
        card_data,
        repo_id=repo_id,
        pretty_name=card_data.pretty_name,
        rows=rows,
        stats=stats,
        index_stats=index_stats,
        has_index=index_dir is not None,
        columns={name: list(prepared[name].column_names) for name in ("items", "train")},
    )
    DatasetCard(text).save(staged / "README.md")
    return StagedRepo(repo_id, "dataset", _listing(staged))


def check_model_index(model_dir: str | os.PathLike, reference: ItemIndex | None = None) -> ItemIndex:
    """The model folder's item index, after checking it agrees with its config, tokenizer and `reference`.

    Raises ValueError naming the disagreement: a model whose index does not match its tokenizer (or the
    dataset's index) would recommend the wrong items, so it is never published.
    """
    model_dir = Path(model_dir)
    if not (model_dir / "index.json").is_file():
        raise FileNotFoundError(f"{model_dir}: no index.json (the tokenizer's item index); is this an lcrec model folder?")
    index = ItemIndex.load(model_dir / "index.json")
    config = _read_json(model_dir / "config.json")
    if config.get("codebook_sizes") is not None and list(config["codebook_sizes"]) != index.codebook_sizes:
        raise ValueError(f"{model_dir}: config.json has codebook_sizes {config['codebook_sizes']} but the tokenizer's index has {index.codebook_sizes}")
    if config.get("num_items") is not None and int(config["num_items"]) != index.num_items:
        raise ValueError(f"{model_dir}: config.json was built for {config['num_items']} items but the tokenizer's index has {index.num_items}")
    tokenizer_file = model_dir / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"{model_dir}: no tokenizer.json")
    vocabulary = {entry["content"]: entry["id"] for entry in _read_json(tokenizer_file).get("added_tokens", [])}
    index_tokens = all_index_tokens(index.codebook_sizes)
    absent = [token for token in index_tokens if token not in vocabulary]
    if absent:
        raise ValueError(f"{model_dir}: the tokenizer lacks {len(absent)} index tokens of its index, e.g. {absent[:5]}")
    first = config.get("first_index_token_id")
    if first is not None and vocabulary[index_tokens[0]] != first:
        raise ValueError(f"{model_dir}: the tokenizer puts {index_tokens[0]} at id {vocabulary[index_tokens[0]]}, the model's embeddings expect it at {first}")
    collisions = index.collisions()
    if collisions:
        raise ValueError(f"{model_dir}: {len(collisions)} groups of items share an index, e.g. items {collisions[0]}")
    if reference is not None:
        if reference.codebook_sizes != index.codebook_sizes:
            raise ValueError(f"{model_dir}: the tokenizer's index has codebook sizes {index.codebook_sizes}, the dataset's index {reference.codebook_sizes}")
        if set(reference.item_ids) != set(index.item_ids):
            only = sorted(set(reference.item_ids) ^ set(index.item_ids))
            raise ValueError(f"{model_dir}: the tokenizer's index and the dataset's index cover different items ({len(only)} differ, e.g. {only[:5]})")
        differing = [item for item in index.item_ids if index.codes_of(item) != reference.codes_of(item)]
        if differing:
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
            raise FileNotFoundError(f"{model_dir}: neither weights (model*.safetensors) nor a LoRA adapter (adapter_config.json) to publish")
        return has_merged, adapter
    if weights in ("merged", "both") and not has_merged:
        raise FileNotFoundError(f"{model_dir}: no model*.safetensors to publish as merged weights")
    if weights in ("adapter", "both") and adapter is None:
        raise FileNotFoundError(f"{model_dir}: no LoRA adapter (adapter_config.json here or in {ADAPTER_SUBFOLDER}/); was it trained with LoRA?")
    return weights in ("merged", "both"), adapter if weights in ("adapter", "both") else None


def _generation_config(model_dir: Path, config: dict, levels: int, num_beams: int):
    """The model's generation config with LC-Rec's beam settings: greedy-free beam search over `num_beams` beams."""
    from transformers import GenerationConfig

    if (model_dir / "generation_config.json").is_file():
        generation = GenerationConfig.from_pretrained(str(model_dir))
    else:
        text_config = config.get("text_config") or config
        generation = GenerationConfig(**{key: text_config.get(key) for key in ("bos_token_id", "eos_token_id", "pad_token_id") if text_config.get(key) is not None})
    generation.update(do_sample=False, num_beams=num_beams, num_return_sequences=num_beams, max_new_tokens=levels + 1, early_stopping=True)
    generation.validate(strict=True)
    return generation


def _index_stats_file(index_dir: str | os.PathLike | None, dataset_repo: str | None, token, endpoint: str | None) -> Path | None:
    """index_stats.json of the local index folder, else of the dataset repo (None when neither has one)."""
    if index_dir is not None:
        path = Path(index_dir) / "index_stats.json"
        return path if path.is_file() else None
    if dataset_repo is None:
        return None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    try:
        return Path(hf_hub_download(dataset_repo, f"{INDEX_SUBFOLDER}/index_stats.json", repo_type="dataset", token=token, endpoint=endpoint))
    except RemoteEntryNotFoundError:
        return None


def stage_model(
    model_dir: str | os.PathLike,
    staged: Path,
    repo_id: str,
    weights: str = "auto",
    metrics_path: str | os.PathLike | None = None,
    index_dir: str | os.PathLike | None = None,
    dataset_repo: str | None = None,
    num_beams: int | None = None,
    license: str | None = None,
    reproduce: Sequence[str] = (),
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> StagedRepo:
    """Write the model repo into `staged`, after refusing a model whose index disagrees with its tokenizer or dataset."""
    from huggingface_hub import ModelCard, ModelCardData

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir}: no config.json (expected a save_pretrained model folder)")
    config = _read_json(model_dir / "config.json")
    if config.get("model_type") != "lcrec":
        raise ValueError(f"{model_dir}: config.json has model_type {config.get('model_type')!r}, expected 'lcrec'")
    if index_dir is not None:
        reference = load_index(index_dir)
    elif dataset_repo is not None:
        reference = load_index(dataset_repo, token=token, endpoint=endpoint)
    else:
        reference = None
    if metrics_path is None and (model_dir / "metrics.json").is_file():
        metrics_path = model_dir / "metrics.json"  # where `lcrec evaluate` writes by default
        logger.info("using %s for the card's results", metrics_path)
    index = check_model_index(model_dir, reference)
    merged, adapter = _weights_to_publish(model_dir, weights)
    base_model = config.get("base_model_name_or_path")
    base_is_hub_id = bool(base_model) and not Path(base_model).exists() and base_model.count("/") == 1
    if adapter is not None and not merged and not base_is_hub_id:
        raise ValueError(f"{model_dir}: an adapter-only repo rebuilds its base model from config.json's base_model_name_or_path, which is {base_model!r}, not a Hub id; publish merged weights (--weights merged or both)")

    published = [name for name in MODEL_FILES if (model_dir / name).is_file()]
    published += sorted(path.name for path in model_dir.glob("*.py"))
    if merged:
        published += sorted(path.name for path in model_dir.glob("model*.safetensors"))
        published += [name for name in ("model.safetensors.index.json",) if (model_dir / name).is_file()]
    for name in published:
        _copy(model_dir / name, staged, name)
    if adapter is not None:
        # Beside merged weights the adapter goes to adapter/ (for PEFT); alone it sits at the root, where
        # LCRecForCausalLM.from_pretrained rebuilds the base model named in config.json and loads it.
        prefix = f"{ADAPTER_SUBFOLDER}/" if merged else ""
        for name in ADAPTER_FILES:
            if not (adapter / name).is_file():
                raise FileNotFoundError(f"{adapter}: the LoRA adapter lacks {name}")
            _copy(adapter / name, staged, prefix + name)

    metrics = _read_json(Path(metrics_path)) if metrics_path is not None else None
    if metrics is not None:
        _copy(Path(metrics_path), staged, "metrics.json")
    index_stats_file = _index_stats_file(index_dir, dataset_repo, token, endpoint)
    index_stats = _read_json(index_stats_file) if index_stats_file is not None else None
    if index_stats_file is not None:
        _copy(index_stats_file, staged, "index_stats.json")
    beams = num_beams or (metrics or {}).get("num_beams") or DEFAULT_NUM_BEAMS
    _generation_config(model_dir, config, index.levels, int(beams)).save_pretrained(str(staged))

    dataset_name = dataset_repo or "the prepared dataset"
    card_data = ModelCardData(
        model_name=repo_id.split("/")[-1],
        library_name="transformers",
        pipeline_tag="text-generation",
        license=license,
        tags=TAGS,
        base_model=base_model if base_is_hub_id else None,
        datasets=[dataset_repo] if dataset_repo else None,
        eval_results=_eval_results(metrics, dataset_name, dataset_repo) if metrics else None,
    )
    text = render_card(
        "model_card.md.j2",
        card_data,
        repo_id=repo_id,
        base_model=base_model,
        dataset_repo=dataset_repo,
        index=index,
        index_stats=index_stats,
        metrics=metrics,
        metric_names=[name for name in METRIC_NAMES if metrics and name in metrics],
        num_beams=int(beams),
        merged=merged,
        adapter=adapter is not None,
        adapter_at_root=adapter is not None and not merged,
        has_remote_code=any(name.endswith(".py") for name in published),
        reproduce=list(reproduce),
    )
    ModelCard(text).save(staged / "README.md")
    skipped = sorted(set(_listing(model_dir)) - set(_listing(staged)))
    if skipped:
        logger.info("not published from %s (%d files): %s", model_dir, len(skipped), ", ".join(skipped[:20]) + (" ..." if len(skipped) > 20 else ""))
    return StagedRepo(repo_id, "model", _listing(staged), skipped)


# --- pushing ----------------------------------------------------------------------------------------


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    repo_type: str,
    revision: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload with lcrec",
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> str:
    """Make the repo's `revision` hold exactly `folder` (besides `.gitattributes`) in one commit; returns the commit URL."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    folder = Path(folder)
    api = HfApi(endpoint=endpoint, token=token)
    repo_id = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True).repo_id
    if revision is not None:
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    local = _listing(folder)
    remote = api.list_repo_files(repo_id, repo_type=repo_type, revision=revision)
    operations = [CommitOperationDelete(path) for path in remote if path not in local and path != ".gitattributes"]
    operations += [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(folder / path)) for path in local]
    info = api.create_commit(repo_id, operations, commit_message=commit_message, repo_type=repo_type, revision=revision)
    return info.commit_url


def _push(stage, repo_id: str, repo_type: str, revision: str | None, private: bool | None, dry_run_dir, token, endpoint: str | None, commit_message: str) -> PushResult:
    """Stage into a temporary folder, then upload it (or move it to `dry_run_dir`); sources are only read."""
    if dry_run_dir is not None:
        with atomic_dir(dry_run_dir) as tmp:
            staged = stage(tmp)
        return PushResult(repo_id, repo_type, revision or "main", staged.files, folder=Path(dry_run_dir))
    with tempfile.TemporaryDirectory(prefix="lcrec-push-") as tmp:
        staged = stage(Path(tmp))
        url = push_folder(tmp, repo_id, repo_type, revision=revision, private=private, commit_message=commit_message, token=token, endpoint=endpoint)
    logger.info("pushed %d files to %s", len(staged.files), url)
    return PushResult(repo_id, repo_type, revision or "main", staged.files, commit_url=url)


def push_dataset(
    prepared_dir: str | os.PathLike,
    repo_id: str,
    index_dir: str | os.PathLike | None = None,
    tasks_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    private: bool | None = None,
    dry_run_dir: str | os.PathLike | None = None,
    license: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Publish a prepared dataset (+ index folder, + task mix) as a dataset repo, or stage it into `dry_run_dir`."""
    return _push(
        lambda folder: stage_dataset(prepared_dir, folder, repo_id, index_dir=index_dir, tasks_dir=tasks_dir, license=license),
        repo_id, "dataset", revision, private, dry_run_dir, token, endpoint, "Upload dataset with lcrec",
    )


def push_model(
    model_dir: str | os.PathLike,
    repo_id: str,
    weights: str = "auto",
    metrics_path: str | os.PathLike | None = None,
    index_dir: str | os.PathLike | None = None,
    dataset_repo: str | None = None,
    num_beams: int | None = None,
    reproduce: Sequence[str] = (),
    revision: str | None = None,
    private: bool | None = None,
    dry_run_dir: str | os.PathLike | None = None,
    license: str | None = None,
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Publish a model folder with its card and beam-search generation config, or stage it into `dry_run_dir`."""
    return _push(
        lambda folder: stage_model(
            model_dir, folder, repo_id, weights=weights, metrics_path=metrics_path, index_dir=index_dir,
            dataset_repo=dataset_repo, num_beams=num_beams, license=license, reproduce=reproduce, token=token, endpoint=endpoint,
        ),
        repo_id, "model", revision, private, dry_run_dir, token, endpoint, "Upload model with lcrec",
    )


__all__ = [
    "PushResult",
    "StagedRepo",
    "check_model_index",
    "load_index",
    "push_dataset",
    "push_folder",
    "push_model",
    "render_card",
    "stage_dataset",
    "stage_model",
]
