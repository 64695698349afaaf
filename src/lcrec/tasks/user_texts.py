"""Per-user texts (preferences, intentions) for the itemsearch and preferenceobtain tasks.

Three sources, all joined to a prepared dataset's users:
- the dataset's optional `users` split (user_id, preference, intention);
- a JSON-lines file written by `lcrec augment` (`{"user_id", "raw_user_id", "preference", "intention"}` per
  line; joined on raw_user_id when present, which survives re-preparing the data, else on user_id);
- LC-Rec's released `D.user.json` (`user_explicit_preference` {user: [texts]} and
  `user_vague_intention` {"train": {user: {"item", "inters", "querys": [texts]}}}; joined on raw_user_id,
  through the `D.user2id` beside it when there is one). Only the "train" intentions are used: the "test"
  ones describe test targets and would leak them into training. itemsearch pairs an intention with the
  user's training target; intentions whose "item" is another item are counted in a warning.
A user may have several alternative texts; the task mix draws one per sample per epoch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from datasets import DatasetDict

from ..data.readers.lcrec_json import (
    read_id_map,
    read_lcrec_user_texts,
    user_text_values,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserTexts:
    """Alternative preference and intention texts per user_id (empty texts are left out)."""

    preferences: Mapping[int, tuple[str, ...]]
    intentions: Mapping[int, tuple[str, ...]]
    source: str

    def __len__(self) -> int:
        return len(set(self.preferences) | set(self.intentions))


def _user_ids(dataset: DatasetDict) -> tuple[set[int], dict[str, int]]:
    """The dataset's user ids, and raw_user_id -> user_id (from every split that has both)."""
    raw_to_id: dict[str, int] = {}
    for name in ("train", "validation", "test"):
        if name in dataset and "raw_user_id" in dataset[name].column_names:
            columns = dataset[name].select_columns(["user_id", "raw_user_id"]).to_dict()
            raw_to_id.update(zip(columns["raw_user_id"], columns["user_id"]))
    ids = set(raw_to_id.values())
    if "train" in dataset:
        ids.update(dataset["train"]["user_id"])
    return ids, raw_to_id


def _from_users_split(dataset: DatasetDict) -> UserTexts:
    columns = dataset["users"].to_dict()
    missing = {"user_id", "preference", "intention"} - set(columns)
    if missing:
        raise ValueError(f"the dataset's users split lacks the columns {sorted(missing)}")
    preferences, intentions = {}, {}
    for user, preference, intention in zip(columns["user_id"], columns["preference"], columns["intention"]):
        if texts := user_text_values(preference or "", f"users split, user {user}"):
            preferences[int(user)] = texts
        if texts := user_text_values(intention or "", f"users split, user {user}"):
            intentions[int(user)] = texts
    return UserTexts(preferences, intentions, "the dataset's users split")


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                hint = (
                    " (an interrupted `lcrec augment`? rerun it to finish the file)" if not line.endswith("\n") else ""
                )
                raise ValueError(f"{path}: line {line_number}: malformed JSON: {error.msg}{hint}") from None
            if not isinstance(row, dict) or ("user_id" not in row and "raw_user_id" not in row):
                raise ValueError(f"{path}: line {line_number}: expected an object with user_id or raw_user_id")
            row["_line"] = line_number
            rows.append(row)
    return rows


def _report_unknown(path: Path, unknown: list, matched: int) -> None:
    """Users of the file missing from the dataset: a warning when some match, an error when none does."""
    if unknown and not matched:
        raise ValueError(
            f"{path}: none of its {len(unknown)} users is in the dataset (e.g. {unknown[:5]}); was it written for "
            "another dataset?"
        )
    if unknown:
        logger.warning(
            "%s: %d users are not in the dataset and were left out, e.g. %s", path, len(unknown), unknown[:5]
        )


def _from_jsonl(path: Path, dataset: DatasetDict) -> UserTexts:
    ids, raw_to_id = _user_ids(dataset)
    preferences, intentions = {}, {}
    unknown = []
    for row in _read_jsonl(path):
        where = f"{path}: line {row['_line']}"
        if "raw_user_id" in row and raw_to_id:
            user = raw_to_id.get(str(row["raw_user_id"]))
            if user is not None and "user_id" in row and int(row["user_id"]) != user:
                raise ValueError(
                    f"{where}: raw_user_id {row['raw_user_id']!r} is user {user} in the dataset but user_id "
                    f"{row['user_id']} in the file; was the dataset prepared again?"
                )
        else:
            user = int(row["user_id"]) if "user_id" in row and int(row["user_id"]) in ids else None
        if user is None:
            unknown.append(row.get("raw_user_id", row.get("user_id")))
            continue
        if texts := user_text_values(row.get("preference", ""), where):
            preferences[user] = texts
        if texts := user_text_values(row.get("intention", ""), where):
            intentions[user] = texts
    _report_unknown(path, unknown, matched=len(set(preferences) | set(intentions)))
    return UserTexts(preferences, intentions, str(path))


def _train_target_raw_ids(dataset: DatasetDict) -> dict[int, str]:
    """user_id -> raw_id of the training target, to check that imported intentions aim at that item."""
    train = dataset["train"].select_columns(["user_id", "target"]).to_dict()
    raw_ids = dataset["items"].select_columns(["raw_id"]).to_dict()["raw_id"]
    return {user: str(raw_ids[target]) for user, target in zip(train["user_id"], train["target"])}


def _from_lcrec_json(path: Path, dataset: DatasetDict) -> UserTexts:
    """Join LC-Rec's `D.user.json` (parsed by `lcrec.data.readers.lcrec_json`) to the dataset's users by raw id."""
    _, raw_to_id = _user_ids(dataset)
    if not raw_to_id:
        raise ValueError(f"{path}: joining LC-Rec user texts needs the dataset's raw_user_id column")
    stem = path.name.removesuffix(".user.json") if path.name.endswith(".user.json") else None
    names = (read_id_map(path.with_name(f"{stem}.user2id")) if stem else None) or {}
    item_names = (read_id_map(path.with_name(f"{stem}.item2id")) if stem else None) or {}
    parsed = read_lcrec_user_texts(path)
    unknown: set[str] = set()

    def user_of(key: str) -> int | None:
        user = raw_to_id.get(names.get(key, key))
        if user is None:
            unknown.add(key)
        return user

    preferences = {user: texts for key, texts in parsed.preferences.items() if (user := user_of(key)) is not None}
    intentions = {user: texts for key, texts in parsed.intentions.items() if (user := user_of(key)) is not None}
    targets = _train_target_raw_ids(dataset) if "raw_id" in dataset["items"].column_names else {}
    mismatched = [
        key
        for key, item in parsed.intention_items.items()
        if (user := raw_to_id.get(names.get(key, key))) in targets and targets[user] != item_names.get(item, item)
    ]
    if mismatched:
        logger.warning(
            "%s: for %d users the intention's item is not the training target itemsearch asks for (e.g. users %s); "
            "was the dataset split differently from LC-Rec's?",
            path,
            len(mismatched),
            mismatched[:5],
        )
    _report_unknown(path, sorted(unknown), matched=len(set(preferences) | set(intentions)))
    return UserTexts(preferences, intentions, str(path))


def load_user_texts(dataset: DatasetDict, source: str | Path | None = None) -> UserTexts | None:
    """Per-user texts from `source` (augment JSON lines or LC-Rec `D.user.json`), else the `users` split, else None."""
    if source is None:
        return _from_users_split(dataset) if "users" in dataset else None
    path = Path(source)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, expected a user texts file (.jsonl or D.user.json)")
    if not path.is_file():
        raise FileNotFoundError(f"user texts file not found: {path}")
    if path.suffix == ".jsonl":
        texts = _from_jsonl(path, dataset)
    else:
        texts = _from_lcrec_json(path, dataset)
    logger.info(
        "user texts from %s: %d users with preferences, %d with intentions",
        texts.source,
        len(texts.preferences),
        len(texts.intentions),
    )
    return texts
