"""Dataset repos: a prepared dataset (+ item index, + task mix) as Parquet configs, and the index loaded back.

The repo holds the configs `interactions` (train / validation / test), `items`, optionally `users` and `tasks`
(`load_dataset(repo, "interactions")`), `stats.json`, and the item index folder under `index/`
(`load_index(repo)`). Its card lists only the commands the data, index and task records say were run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ..cards.card_templates import render_card
from ..cards.model_card import TAGS, UNKNOWN_LICENSE, copy_record
from ..data.prepared import LEGACY_SPLIT_NAMES, STATS_FILE
from ..indexing.builder import PLOT_NAME
from ..indexing.builder import STATS_NAME as INDEX_STATS_NAME
from ..indexing.configuration_rqvae import CONFIG_NAME as RQVAE_CONFIG_NAME
from ..indexing.configuration_rqvae import WEIGHTS_NAME as RQVAE_WEIGHTS_NAME
from ..indexing.coverage import check_index_covers_dataset
from ..indexing.item_index import INDEX_FILENAME, ItemIndex
from ..io_utils import read_json, write_json
from .commit import PushResult, StagedRepo, folder_listing, push_staged

logger = logging.getLogger(__name__)

INDEX_SUBFOLDER = "index"
INDEX_FILES = (INDEX_FILENAME, RQVAE_WEIGHTS_NAME, RQVAE_CONFIG_NAME, INDEX_STATS_NAME, PLOT_NAME)
INTERACTION_SPLITS = ("train", "validation", "test")
TASK_MIX_INFO = "mix_info.json"
# The Hub's size buckets (the `size_categories` of a dataset card), by number of rows.
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)


def size_category(rows: int) -> str:
    """The Hub's `size_categories` value for a dataset of `rows` rows."""
    for limit, name in SIZE_CATEGORIES:
        if rows < limit:
            return name
    return "n>1B"


def hub_lookup_error(name: str, what: str, error: Exception) -> Exception:
    """A one-line error for a name that is no local path and could not be fetched from the Hub."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    if isinstance(error, HFValidationError):
        return FileNotFoundError(f"{name}: no such local path, and not a valid Hub repo id either")
    if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
        return FileNotFoundError(
            f"{name}: no such local path, and {what} cannot be fetched from the Hub while offline "
            "(HF_HUB_OFFLINE=1 or no connection) nor found in the local cache"
        )
    if isinstance(error, RepositoryNotFoundError):
        return FileNotFoundError(
            f"{name}: no such local path, and no such Hub repo (or it is private and no token was given)"
        )
    if isinstance(error, EntryNotFoundError):
        return FileNotFoundError(f"{name}: the Hub repo has no {what}")
    return error


def load_index(
    repo_or_dir: str | os.PathLike,
    revision: str | None = None,
    repo_type: str = "dataset",
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> ItemIndex:
    """The `ItemIndex` of a local index folder, index.json, model folder or downloaded dataset repo, or of a Hub repo.

    Dataset repos keep it at `index/index.json`, model repos (the tokenizer's copy) at `index.json`.
    """
    path = Path(repo_or_dir)
    if path.is_dir() and not (path / INDEX_FILENAME).is_file() and (path / INDEX_SUBFOLDER / INDEX_FILENAME).is_file():
        path = path / INDEX_SUBFOLDER  # a downloaded dataset repo
    if path.exists():
        return ItemIndex.from_path(path)
    from huggingface_hub import hf_hub_download

    filename = f"{INDEX_SUBFOLDER}/{INDEX_FILENAME}" if repo_type == "dataset" else INDEX_FILENAME
    try:
        local = hf_hub_download(
            str(repo_or_dir), filename, repo_type=repo_type, revision=revision, token=token, endpoint=endpoint
        )
    except Exception as error:  # noqa: BLE001 - turned into a one-line error, or re-raised as it is
        raise hub_lookup_error(str(repo_or_dir), filename, error) from None
    return ItemIndex.from_path(local)


def _parquet_config(dataset_dict, config_name: str, staged: Path) -> dict:
    """Write each split as `<config>/<split>-00000-of-00001.parquet` (push_to_hub's layout); returns the card's
    `configs` entry."""
    data_files = []
    (staged / config_name).mkdir(parents=True, exist_ok=True)
    for split, dataset in dataset_dict.items():
        path = f"{config_name}/{split}-00000-of-00001.parquet"
        dataset.to_parquet(str(staged / path))
        data_files.append({"split": split, "path": path})
    return {"config_name": config_name, "data_files": data_files}


def _stage_index(index_dir: Path, staged: Path) -> tuple[dict | None, list[str]]:
    """Copy the index folder's published files under `index/` (an index file given by path, whatever its name, as
    `index/index.json`, e.g. a prepared release's released_index.json); returns (index_stats.json or None, files)."""
    folder = index_dir if index_dir.is_dir() else index_dir.parent
    sources = {name: folder / name for name in INDEX_FILES}
    if not index_dir.is_dir():
        sources[INDEX_FILENAME] = index_dir
    copied = []
    for name, source in sources.items():
        if source.is_file():
            (staged / INDEX_SUBFOLDER).mkdir(parents=True, exist_ok=True)
            copy_record(source, staged / INDEX_SUBFOLDER / name)
            copied.append(name)
    stats = folder / INDEX_STATS_NAME
    return (read_json(stats, expect=dict) if stats.is_file() else None), copied


def _recorded_command(record: dict | None) -> list[str]:
    command = (record or {}).get("command")
    return [command] if isinstance(command, str) and command.strip() else []


def stage_dataset(
    prepared_dir: str | os.PathLike,
    staged: Path,
    repo_id: str,
    index_dir: str | os.PathLike | None = None,
    tasks_dir: str | os.PathLike | None = None,
    pretty_name: str | None = None,
    license: str | None = None,
    reproduce: Sequence[str] = (),
) -> StagedRepo:
    """Write the dataset repo into `staged`: Parquet configs, `index/`, `stats.json` and README.md.

    The card's Reproduce section lists the commands recorded in stats.json, index_stats.json and the task mix's
    mix_info.json (key `command`), then `reproduce`; nothing else.
    """
    from datasets import DatasetDict, load_from_disk
    from huggingface_hub import DatasetCard, DatasetCardData

    from ..data import load_prepared, load_stats

    prepared = load_prepared(prepared_dir)  # an old `valid` split comes back as `validation`
    stats = load_stats(prepared_dir)
    splits = {name: prepared[name] for name in INTERACTION_SPLITS if name in prepared}
    missing = [name for name in INTERACTION_SPLITS if name not in splits]
    if missing or "items" not in prepared:
        raise ValueError(
            f"{prepared_dir}: not a prepared dataset (lacks {', '.join(missing) or 'items'}); prepare it with "
            f"`lcrec prepare`"
        )
    # Every check before any file is written: an index or task mix that belongs to other data is refused.
    index = None
    if index_dir is not None:
        index = load_index(index_dir)
        check_index_covers_dataset(
            index, prepared, exact=True, index_source=f"the index {index_dir}", dataset_source=str(prepared_dir)
        )
    tasks, tasks_info = None, None
    if tasks_dir is not None:
        tasks = load_from_disk(str(tasks_dir))
        if not isinstance(tasks, DatasetDict):
            raise ValueError(f"{tasks_dir}: expected a DatasetDict folder (`lcrec tasks --out`)")
        info_path = Path(tasks_dir) / TASK_MIX_INFO
        tasks_info = read_json(info_path, expect=dict) if info_path.is_file() else {}
        built_for = tasks_info.get("index_fingerprint")
        if index is not None and built_for is not None and built_for != index.fingerprint:
            raise ValueError(
                f"{tasks_dir}: the task mix was built with another item index (fingerprint {built_for}) than "
                f"{index_dir} ({index.fingerprint}); rebuild it with `lcrec tasks --index {index_dir}`"
            )

    configs = [
        _parquet_config(DatasetDict({split: splits[split] for split in INTERACTION_SPLITS}), "interactions", staged),
        _parquet_config(DatasetDict({"train": prepared["items"]}), "items", staged),
    ]
    rows = {
        "interactions": {split: len(splits[split]) for split in INTERACTION_SPLITS},
        "items": {"train": len(prepared["items"])},
    }
    if "users" in prepared:
        configs.append(_parquet_config(DatasetDict({"train": prepared["users"]}), "users", staged))
        rows["users"] = {"train": len(prepared["users"])}
    commands = _recorded_command(stats)
    index_stats, index_files = None, []
    if index_dir is not None:
        index_stats, index_files = _stage_index(Path(index_dir), staged)
        commands += _recorded_command(index_stats)
    if tasks is not None:
        tasks = DatasetDict({LEGACY_SPLIT_NAMES.get(name, name): split for name, split in tasks.items()})
        configs.append(_parquet_config(tasks, "tasks", staged))
        rows["tasks"] = {split: len(dataset) for split, dataset in tasks.items()}
        commands += _recorded_command(tasks_info)
    commands = list(dict.fromkeys([*commands, *(command for command in reproduce if command.strip())]))
    write_json(staged / STATS_FILE, stats)

    card_data = DatasetCardData(
        pretty_name=pretty_name or repo_id.split("/")[-1],
        license=license or UNKNOWN_LICENSE,
        size_categories=[size_category(sum(rows["interactions"].values()))],
        task_categories=["text-generation"],
        tags=list(TAGS),
        configs=[{**config, "default": config["config_name"] == "interactions"} for config in configs],
    )
    source = stats.get("source")
    text = render_card(
        "dataset_card.md.j2",
        card_data,
        repo_id=repo_id,
        pretty_name=card_data.pretty_name,
        license=license,
        source=Path(str(source)).name if source else None,
        rows=rows,
        stats=stats,
        index_stats=index_stats,
        index_files=[name for name in index_files if name != INDEX_FILENAME],
        has_index=index_dir is not None,
        columns={"items": list(prepared["items"].column_names), "interactions": list(splits["train"].column_names)},
        commands=commands,
    )
    DatasetCard(text).save(staged / "README.md")
    return StagedRepo(repo_id, "dataset", folder_listing(staged))


def push_dataset(
    prepared_dir: str | os.PathLike,
    repo_id: str,
    index_dir: str | os.PathLike | None = None,
    tasks_dir: str | os.PathLike | None = None,
    revision: str | None = None,
    private: bool | None = None,
    dry_run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    license: str | None = None,
    reproduce: Sequence[str] = (),
    token: str | bool | None = None,
    endpoint: str | None = None,
) -> PushResult:
    """Publish a prepared dataset (+ index folder, + task mix) as a dataset repo, or stage it into `dry_run_dir`."""
    return push_staged(
        lambda folder: stage_dataset(
            prepared_dir,
            folder,
            repo_id,
            index_dir=index_dir,
            tasks_dir=tasks_dir,
            license=license,
            reproduce=reproduce,
        ),
        repo_id,
        "dataset",
        sources=(prepared_dir, index_dir, tasks_dir),
        revision=revision,
        private=private,
        dry_run_dir=dry_run_dir,
        overwrite=overwrite,
        commit_message="Upload dataset with lcrec",
        token=token,
        endpoint=endpoint,
    )
