"""LC-Rec's released layout: `D.inter.json`, `D.item.json`, optional `D.index.json`, `D.user.json`, `D.item2id`, `D.user2id`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..files import read_delimited, require_file
from ..raw import TEXT_FIELDS, Drop, OnBad, RawDataset
from ..text import join_list_values
from .atomic import dataset_name


def load_json(path: Path) -> object:
    """Parse a JSON file; errors name the file, line and column."""
    try:
        with open(require_file(path, "JSON file"), encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}:{error.colno}: malformed JSON: {error.msg}") from None
    except UnicodeDecodeError as error:
        from ..files import first_non_utf8_line

        raise ValueError(f"{path}:{first_non_utf8_line(path)}: not valid UTF-8 text ({error.reason})") from None


def _require_mapping(data: object, path: Path) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level, found {type(data).__name__}")
    return data


def read_lcrec(folder: Path, name: str | None = None, on_bad: OnBad = "error") -> RawDataset:
    """Read the released layout; `D.user.json` per-user texts become the `users` table, `D.index.json` the index."""
    folder = Path(folder)
    name = name or dataset_name(folder, ".inter.json")
    inter_path, item_path = folder / f"{name}.inter.json", folder / f"{name}.item.json"
    drops: list[Drop] = []
    inter = _require_mapping(load_json(inter_path), inter_path)
    for user, sequence in inter.items():
        if not isinstance(sequence, list):
            raise ValueError(f"{inter_path}: user {user!r}: expected a list of item ids, found {type(sequence).__name__}")
    sequences = pd.Series(list(inter.values()), index=pd.Index(list(inter.keys()), dtype=str), dtype=object).explode().dropna()
    interactions = pd.DataFrame({"user": sequences.index.astype(str), "item": sequences.astype(str).to_numpy()})

    records = _require_mapping(load_json(item_path), item_path)
    bad = [key for key, value in records.items() if not isinstance(value, dict)]
    if bad:
        raise ValueError(f"{item_path}: item {bad[0]!r}: expected an object with title/description/brand/categories")
    items = pd.DataFrame.from_dict(records, orient="index")
    items = pd.DataFrame({"item": pd.Index(list(records.keys()), dtype=str)} | {field: join_list_values(items[field]).to_numpy() if field in items.columns else "" for field in TEXT_FIELDS})

    item_names = _id_map(folder / f"{name}.item2id", drops, on_bad)
    user_names = _id_map(folder / f"{name}.user2id", drops, on_bad)
    index = _read_index(folder / f"{name}.index.json")
    users = _read_users(folder / f"{name}.user.json")
    if item_names is not None:
        renamed = {str(key): value for key, value in item_names.items()}
        interactions["item"] = interactions["item"].map(renamed).fillna(interactions["item"])
        items["item"] = items["item"].map(renamed).fillna(items["item"])
        index = {renamed.get(key, key): value for key, value in index.items()} if index else index
    if user_names is not None:
        interactions["user"] = interactions["user"].map(user_names).fillna(interactions["user"])
        if users is not None:
            users["user"] = users["user"].map(user_names).fillna(users["user"])
    return RawDataset(interactions, items, users=users, index=index, drops=drops, source=str(folder), format="lcrec")


def _id_map(path: Path, drops: list[Drop], on_bad: OnBad) -> pd.Series | None:
    """`raw_id<TAB>integer id` lines -> Series integer id (str) -> raw id; None when the file is absent."""
    if not path.exists():
        return None
    frame = read_delimited(path, "\t", drops, on_bad, column_names=["raw", "id"], quote=False)
    return pd.Series(frame["raw"].to_numpy(), index=frame["id"].str.strip().to_numpy())


def _read_index(path: Path) -> dict[str, list[str]] | None:
    if not path.exists():
        return None
    data = _require_mapping(load_json(path), path)
    for key, tokens in data.items():
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise ValueError(f"{path}: item {key!r}: expected a list of index tokens such as ['<a_1>', '<b_2>']")
    return {str(key): value for key, value in data.items()}


def _read_users(path: Path) -> pd.DataFrame | None:
    """Per-user texts. Accepts LC-Rec's {"user_explicit_preference": {u: [...]}, "user_vague_intention":
    {"train": {u: [...]}, "test": {...}}} and a flat {u: {"preference": ..., "intention": ...}}.

    `intention` is the user's most recent training-time intention (the test one would leak the test target).
    """
    if not path.exists():
        return None
    data = _require_mapping(load_json(path), path)
    if "user_explicit_preference" in data or "user_vague_intention" in data:
        preference = _require_mapping(data.get("user_explicit_preference", {}), path)
        intentions = data.get("user_vague_intention", {})
        intention = _require_mapping(intentions.get("train", {}) if isinstance(intentions, dict) else {}, path)
        preference_text = {str(user): _as_text(value) for user, value in preference.items()}
        intention_text = {str(user): _intention_text(value) for user, value in intention.items()}
    else:
        records = {str(user): value for user, value in data.items() if isinstance(value, dict)}
        preference_text = {user: _as_text(value.get("preference")) for user, value in records.items()}
        intention_text = {user: _as_text(value.get("intention")) for user, value in records.items()}
    users = sorted(set(preference_text) | set(intention_text), key=lambda user: (len(user), user))
    return pd.DataFrame(
        {
            "user": users,
            "preference": [preference_text.get(user, "") for user in users],
            "intention": [intention_text.get(user, "") for user in users],
        }
    )


def _intention_text(value: object) -> str:
    """LC-Rec stores {"item", "inters", "querys": [texts]} per user (older dumps: a list of texts, newest last); take one."""
    if isinstance(value, dict):
        queries = value.get("querys", value.get("query"))
        return _as_text(queries[0] if isinstance(queries, list) and queries else queries)
    if isinstance(value, list):
        return _intention_text(value[-1]) if value else ""
    return _as_text(value)


def _as_text(value: object) -> str:
    if isinstance(value, list):
        return " ".join(_as_text(part) for part in value)
    return "" if value is None else str(value)
