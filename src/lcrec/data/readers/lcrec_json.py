"""LC-Rec's released layout: `D.inter.json`, `D.item.json`, optional `D.index.json`, `D.user.json`, `D.item2id`,
`D.user2id`.

Some releases ship no `D.item.json` (only interactions and a released index, e.g. LETTER's Amazon Beauty); they
are read without item texts (`RawDataset.item_text` False) and prepared with the released index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lcrec.io_utils import read_json

from ..files import drop_non_text, read_delimited
from ..raw import TEXT_FIELDS, Drop, OnBad, RawDataset
from ..text import join_list_values
from .atomic import dataset_name


def read_lcrec(folder: Path, name: str | None = None, on_bad: OnBad = "error") -> RawDataset:
    """Read the released layout; `D.user.json` per-user texts become the `users` table, `D.index.json` the index.

    A user or item repeated in `D.inter.json` / `D.item.json` keeps its first entry and the others are counted
    drops; so are users with no interactions and null item ids. Text fields must be strings (or lists of them).
    """
    folder = Path(folder)
    name = name or dataset_name(folder, ".inter.json")
    inter_path, item_path, index_path = (
        folder / f"{name}.inter.json",
        folder / f"{name}.item.json",
        folder / f"{name}.index.json",
    )
    drops: list[Drop] = []
    interactions = _read_interactions(inter_path, drops)
    index = _read_index(index_path)
    if item_path.exists() or index is None:
        if not item_path.exists():
            raise FileNotFoundError(
                f"{item_path}: not found; an LC-Rec folder needs item texts ({item_path.name}) or a released index "
                f"({index_path.name})"
            )
        items = _read_items(item_path, drops, on_bad)
        item_text = True
    else:
        items = pd.DataFrame({"item": pd.unique(interactions["item"])})
        item_text = False
    item_names = read_id_map(folder / f"{name}.item2id", drops, on_bad)
    user_names = read_id_map(folder / f"{name}.user2id", drops, on_bad)
    users = _users_table(folder / f"{name}.user.json")
    if item_names is not None:
        renamed = pd.Series(item_names)
        interactions["item"] = interactions["item"].map(renamed).fillna(interactions["item"])
        items["item"] = items["item"].map(renamed).fillna(items["item"])
        index = {item_names.get(key, key): value for key, value in index.items()} if index else index
    if user_names is not None:
        renamed = pd.Series(user_names)
        interactions["user"] = interactions["user"].map(renamed).fillna(interactions["user"])
        if users is not None:
            users["user"] = users["user"].map(renamed).fillna(users["user"])
    return RawDataset(
        interactions,
        items,
        users=users,
        index=index,
        drops=drops,
        source=str(folder),
        format="lcrec",
        item_text=item_text,
    )


def _read_interactions(path: Path, drops: list[Drop]) -> pd.DataFrame:
    """{user: [item ids in time order]} -> (user, item) rows in file order; repeats, empty users, nulls counted."""
    seen: set[str] = set()
    users, items = [], []
    repeated_users = repeated_interactions = empty_users = null_items = 0
    for user, sequence in read_json(path, top_level_pairs=True):
        if not isinstance(sequence, list):
            raise ValueError(f"{path}: user {user!r}: expected a list of item ids, found {type(sequence).__name__}")
        if user in seen:
            repeated_users += 1
            repeated_interactions += len(sequence)
            continue
        seen.add(user)
        kept = 0
        for item in sequence:
            if item is None:
                null_items += 1
                continue
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise ValueError(f"{path}: user {user!r}: item {item!r} is not an item id (a string or an integer)")
            users.append(user)
            items.append(str(item))
            kept += 1
        empty_users += not kept
    if repeated_users:
        drops.append(
            Drop("read", f"repeated user in {path.name} (kept the first)", interactions=repeated_interactions)
        )
    if null_items:
        drops.append(Drop("read", f"null item id in {path.name}", interactions=null_items))
    if empty_users:
        drops.append(Drop("read", f"user without interactions in {path.name}", users=empty_users))
    return pd.DataFrame({"user": pd.array(users, dtype="str"), "item": pd.array(items, dtype="str")})


def _read_items(path: Path, drops: list[Drop], on_bad: OnBad) -> pd.DataFrame:
    """{item: {title, description, brand, categories}} -> item rows in file order (repeats kept for `clean_items`
    to count, which keeps the first)."""
    pairs = read_json(path, top_level_pairs=True)
    bad = next((key for key, value in pairs if not isinstance(value, dict)), None)
    if bad is not None:
        raise ValueError(f"{path}: item {bad!r}: expected an object with title/description/brand/categories")
    frame = pd.DataFrame(
        {"item": [key for key, _ in pairs]} | {name: [value.get(name) for _, value in pairs] for name in TEXT_FIELDS}
    )
    frame = frame.astype({name: object for name in TEXT_FIELDS})
    frame = drop_non_text(
        frame, TEXT_FIELDS, lambda row: f"{path}: item {frame['item'].iloc[row]!r}", drops, on_bad, path.name
    )
    return frame.assign(**{name: join_list_values(frame[name]).to_numpy() for name in TEXT_FIELDS})


def read_id_map(path: Path, drops: list[Drop] | None = None, on_bad: OnBad = "error") -> dict[str, str] | None:
    """LC-Rec's `D.item2id` / `D.user2id` (`raw_id<TAB>integer id` lines) as {integer id: raw id}; None when absent."""
    if not path.exists():
        return None
    frame = read_delimited(
        path, "\t", drops if drops is not None else [], on_bad, column_names=["raw", "id"], quote=False
    )
    return dict(zip(frame["id"].str.strip(), frame["raw"].str.strip()))


def _read_index(path: Path) -> dict[str, list[str]] | None:
    if not path.exists():
        return None
    data = read_json(path, expect=dict)
    for key, tokens in data.items():
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise ValueError(f"{path}: item {key!r}: expected a list of index tokens such as ['<a_1>', '<b_2>']")
    return data


@dataclass
class LCRecUserTexts:
    """What an LC-Rec `D.user.json` says per user key: alternative preference texts and training-time intentions.

    Only the "train" intentions are kept: the "test" ones describe test targets and would leak them. Each
    intention may name the item it is about (`intention_items`).
    """

    preferences: dict[str, tuple[str, ...]] = field(default_factory=dict)
    intentions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    intention_items: dict[str, str] = field(default_factory=dict)


def read_lcrec_user_texts(path: Path) -> LCRecUserTexts:
    """Parse `D.user.json`: LC-Rec's {"user_explicit_preference": {u: [texts]}, "user_vague_intention": {"train":
    {u: {"item", "inters", "querys": [texts]}}, "test": ...}} (older dumps: a list of texts per user, newest last),
    or a flat {u: {"preference": ..., "intention": ...}}. Errors name the file, user and field."""
    data = read_json(path, expect=dict)
    texts = LCRecUserTexts()
    if "user_explicit_preference" not in data and "user_vague_intention" not in data:
        for user, value in data.items():
            if not isinstance(value, dict):
                raise ValueError(
                    f"{path}: user {user!r}: expected an object with preference/intention, or LC-Rec's "
                    "user_explicit_preference layout"
                )
            _add(texts.preferences, user, value.get("preference"), f"{path}: user {user!r}: preference")
            _add(texts.intentions, user, value.get("intention"), f"{path}: user {user!r}: intention")
        return texts
    preferences = data.get("user_explicit_preference") or {}
    vague = data.get("user_vague_intention") or {}
    if not isinstance(preferences, dict) or not isinstance(vague, dict):
        raise ValueError(f"{path}: user_explicit_preference and user_vague_intention must be objects")
    if vague and "train" not in vague:
        raise ValueError(f"{path}: user_vague_intention has no 'train' part (found {sorted(vague)})")
    for user, value in preferences.items():
        _add(texts.preferences, user, value, f"{path}: user_explicit_preference[{user}]")
    train = vague.get("train") or {}
    if not isinstance(train, dict):
        raise ValueError(f"{path}: user_vague_intention.train must be an object {{user: intention}}")
    for user, value in train.items():
        where = f"{path}: user_vague_intention.train[{user}]"
        if isinstance(value, dict):
            if "querys" not in value and "query" not in value:
                raise ValueError(f"{where}: expected an object with 'querys'")
            _add(texts.intentions, user, value.get("querys", value.get("query")), f"{where}.querys")
            if value.get("item") is not None:
                texts.intention_items[str(user)] = str(value["item"])
        elif isinstance(value, list):  # older dumps: texts, newest last
            _add(texts.intentions, user, list(reversed(value)), where)
        else:
            _add(texts.intentions, user, value, where)
    return texts


def user_text_values(value: object, where: str) -> tuple[str, ...]:
    """The non-empty stripped texts of a per-user text field: a string, a list of strings, or missing."""
    values = [] if value is None else value if isinstance(value, list) else [value]
    if not all(isinstance(text, str) for text in values):
        raise ValueError(f"{where}: expected a string or a list of strings, got {str(value)[:80]!r}")
    return tuple(text.strip() for text in values if text.strip())


def _add(texts: dict[str, tuple[str, ...]], user: str, value: object, where: str) -> None:
    if kept := user_text_values(value, where):
        texts[str(user)] = kept


def _users_table(path: Path) -> pd.DataFrame | None:
    """The `users` table of a prepared dataset: all preference texts joined, the first training intention."""
    if not path.exists():
        return None
    texts = read_lcrec_user_texts(path)
    users = sorted(set(texts.preferences) | set(texts.intentions), key=lambda user: (len(user), user))
    return pd.DataFrame(
        {
            "user": users,
            "preference": [" ".join(texts.preferences.get(user, ())) for user in users],
            "intention": [texts.intentions.get(user, ("",))[0] for user in users],
        }
    )
