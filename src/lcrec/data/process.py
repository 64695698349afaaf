"""The preparation protocol: clean item text, drop what cannot be used (counted), k-core, chronological
leave-one-out. Works on integer codes and numpy arrays, so millions of interactions need no Python loop."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .kcore import kcore_mask
from .raw import TEXT_FIELDS, Drop, RawDataset
from .split import MIN_SEQUENCE_LENGTH, leave_one_out
from .stats import interaction_stats
from .text import MAX_TEXT_LENGTH, clean_text

logger = logging.getLogger(__name__)

ITEM_COLUMNS = ("item_id", "raw_id", *TEXT_FIELDS)
SEQUENCE_COLUMNS = ("user_id", "raw_user_id", "history", "target")
USER_COLUMNS = ("user_id", "preference", "intention")


def clean_items(items: pd.DataFrame, drops: list[Drop], max_text_length: int = MAX_TEXT_LENGTH) -> pd.DataFrame:
    """Clean text fields (title and description end with one "."); drop repeated item rows, keeping the first."""
    if isinstance(max_text_length, bool) or not isinstance(max_text_length, int) or max_text_length < 1:
        raise ValueError(f"max_text_length must be a positive number of characters, got {max_text_length!r}")
    repeated = items["item"].duplicated(keep="first").to_numpy()
    if repeated.any():
        drops.append(Drop("items", "repeated item row (kept the first)", items=int(repeated.sum())))
        items = items[~repeated]
    cleaned = {
        field: clean_text(items[field], end_with_period=field in ("title", "description"), max_length=max_text_length)
        for field in TEXT_FIELDS
    }
    return pd.DataFrame(
        {"item": items["item"].to_numpy()} | {field: values.to_numpy() for field, values in cleaned.items()}
    )


class _Tracker:
    """Applies interaction filters and records what each removed: interactions, and users/items that vanished."""

    def __init__(self, users: np.ndarray, items: np.ndarray, num_users: int, num_items: int, drops: list[Drop]):
        self.users, self.items, self.drops = users, items, drops
        self.num_users, self.num_items = num_users, num_items

    def remove(self, remove: np.ndarray, stage: str, reason: str) -> None:
        if not remove.any():
            return
        keep = ~remove
        gone_users = _vanished(self.users, keep, self.num_users)
        gone_items = _vanished(self.items, keep, self.num_items)
        self.drops.append(Drop(stage, reason, interactions=int(remove.sum()), items=gone_items, users=gone_users))
        self.users, self.items = self.users[keep], self.items[keep]


def _vanished(codes: np.ndarray, keep: np.ndarray, size: int) -> int:
    """How many codes occur in `codes` but no longer in `codes[keep]`."""
    return int(((np.bincount(codes, minlength=size) > 0) & (np.bincount(codes[keep], minlength=size) == 0)).sum())


def build_dataset(
    raw: RawDataset, kcore: int = 5, max_text_length: int = MAX_TEXT_LENGTH
) -> tuple[dict[str, pa.Table], dict]:
    """Apply the protocol to `raw`; returns Arrow tables per split (items, train, validation, test, optional users)
    and the statistics (before/after figures and every drop with its reason)."""
    if isinstance(kcore, bool) or not isinstance(kcore, int) or kcore < 0:
        raise ValueError(f"kcore must be an integer >= 0 (0 turns it off), got {kcore!r}")
    start = time.perf_counter()
    drops = list(raw.drops)
    interactions = raw.interactions
    if interactions.empty:
        raise ValueError(f"{raw.source}: no interactions were read")
    user_codes, user_names = _factorize(interactions["user"])
    item_codes, item_names = _factorize(interactions["item"])
    before = interaction_stats(user_codes, item_codes, len(user_names), len(item_names))
    logger.info(
        "read %s interactions, %s users, %s items",
        f"{before['interactions']:,}",
        f"{before['users']:,}",
        f"{before['items']:,}",
    )

    items = clean_items(raw.items, drops, max_text_length)
    catalogue = pa.array(items["item"].to_numpy().astype(str), pa.string())
    interacted = pa.array(item_names, pa.string())
    known = pc.is_in(interacted, value_set=catalogue).to_numpy(zero_copy_only=False)
    if raw.item_text:
        has_text = ((items["title"] != "") | (items["description"] != "")).to_numpy()
        usable = pc.is_in(interacted, value_set=catalogue.filter(pa.array(has_text))).to_numpy(zero_copy_only=False)
        unusable = "item without text"
    else:  # no item texts at all: an item is usable when the released index gives it codes
        usable = pc.is_in(interacted, value_set=pa.array(list(raw.index or ()), pa.string())).to_numpy(
            zero_copy_only=False
        )
        unusable = "item without text or released index"

    # Chronological order per user (stable: file order breaks ties and is the order without timestamps).
    keys = {"user": user_codes}
    if "timestamp" in interactions.columns:
        keys["timestamp"] = interactions["timestamp"].to_numpy(dtype="float64")
    order = pc.sort_indices(
        pa.table(keys), sort_keys=[(name, "ascending") for name in keys]
    ).to_numpy()  # Arrow's sort is stable
    tracker = _Tracker(user_codes[order], item_codes[order], len(user_names), len(item_names), drops)

    tracker.remove(~known[tracker.items], "filter", "item not in the item file (no metadata)")
    tracker.remove(~usable[tracker.items], "filter", unusable)
    pair = tracker.users * np.int64(len(item_names)) + tracker.items
    tracker.remove(
        pd.Series(pair).duplicated(keep="first").to_numpy(), "filter", "repeated user-item pair (kept the first)"
    )
    while True:
        if kcore:
            tracker.remove(
                ~kcore_mask(tracker.users, tracker.items, kcore, kcore),
                "k-core",
                f"user or item with < {kcore} interactions",
            )
        short = np.bincount(tracker.users, minlength=len(user_names))[tracker.users] < MIN_SEQUENCE_LENGTH
        tracker.remove(short, "split", f"user with < {MIN_SEQUENCE_LENGTH} interactions (too short to split)")
        if not short.any() or not kcore:
            break
    if len(tracker.users) == 0:
        raise ValueError(
            f"{raw.source}: nothing is left after filtering ({kcore}-core); see the drops: "
            f"{[drop.to_dict() for drop in drops]}"
        )

    # Ids: users keep their order of first appearance; items are numbered by first appearance in the stream.
    present = np.bincount(tracker.users, minlength=len(user_names)) > 0
    kept_users = np.flatnonzero(present)
    new_users = (np.cumsum(present) - 1)[tracker.users]  # tracker.users is sorted: ids stay in user order
    new_items, kept_items = pd.factorize(tracker.items, sort=False)
    new_items = new_items.astype(np.int64)
    kept_items = np.asarray(kept_items)
    never_used = int((~pc.is_in(catalogue, value_set=interacted).to_numpy(zero_copy_only=False)).sum())
    if never_used:
        drops.append(Drop("items", "item file entry that no interaction uses", items=never_used))
    tables = leave_one_out(new_users.astype(np.int64), new_items, np.asarray(user_names)[kept_users])
    tables["items"] = _items_table(items, np.asarray(item_names)[kept_items])
    if raw.users is not None:
        tables["users"] = _users_table(raw.users, np.asarray(user_names)[kept_users], max_text_length)

    after = interaction_stats(new_users, new_items, len(kept_users), len(kept_items))
    lost = before["interactions"] - after["interactions"]
    counted = sum(drop.interactions for drop in drops if drop.stage != "read")
    if lost != counted:
        raise RuntimeError(f"internal error: {lost} interactions removed but {counted} counted")
    stats = {
        "source": raw.source,
        "format": raw.format,
        "kcore": kcore,
        "max_text_length": max_text_length,
        "item_text": raw.item_text,
        "catalogue_items": len(raw.items),
        "before": before,
        "after": after,
        "drops": [drop.to_dict() for drop in drops],
        "splits": {name: table.num_rows for name, table in tables.items()},
        "columns": {name: table.column_names for name, table in tables.items()},
        "seconds": round(time.perf_counter() - start, 3),
    }
    if raw.index is not None:
        released = pc.is_in(tables["items"]["raw_id"], value_set=pa.array(list(raw.index), pa.string()))
        stats["released_index_items"] = int(pc.sum(released).as_py() or 0)
    return tables, stats


def _factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 codes, unique strings), codes numbered in order of first appearance (Arrow dictionary encoding)."""
    array = values.array
    arrow = (
        array.__arrow_array__()
        if hasattr(array, "__arrow_array__")
        else pa.array(values.astype(str).to_numpy(dtype=object))
    )
    if isinstance(arrow, pa.ChunkedArray):
        arrow = arrow.combine_chunks()
    if not pa.types.is_string(arrow.type) and not pa.types.is_large_string(arrow.type):
        arrow = pc.cast(arrow, pa.string())
    encoded = pc.dictionary_encode(arrow)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_numpy(
        zero_copy_only=False
    ).astype(str)


def _items_table(items: pd.DataFrame, raw_ids: np.ndarray) -> pa.Table:
    ordered = items.set_index("item").loc[raw_ids]
    columns = {
        "item_id": pa.array(np.arange(len(raw_ids), dtype=np.int64)),
        "raw_id": pa.array(raw_ids.astype(str), pa.string()),
    }
    columns |= {field: pa.array(ordered[field].to_numpy().astype(str), pa.string()) for field in TEXT_FIELDS}
    return pa.table(columns)


def _users_table(users: pd.DataFrame, raw_user_ids: np.ndarray, max_text_length: int) -> pa.Table:
    """One row per kept user (user_id order); "" where the user file has no text for that user."""
    texts = users.assign(user=users["user"].astype(str)).drop_duplicates("user").set_index("user")
    texts = texts.reindex(pd.Index(raw_user_ids.astype(str)))
    columns = {"user_id": pa.array(np.arange(len(raw_user_ids), dtype=np.int64))}
    for field in ("preference", "intention"):
        values = clean_text(
            texts[field] if field in texts else pd.Series("", index=texts.index),
            end_with_period=False,
            max_length=max_text_length,
        )
        columns[field] = pa.array(values.to_numpy().astype(str), pa.string())
    return pa.table(columns)
