"""Leave-one-out split of chronological sequences into Arrow tables (whole histories, no Python loop per user)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# Per user with sequence s: train = (s[:-3], s[-3]), validation = (s[:-2], s[-2]), test = (s[:-1], s[-1]).
HELD_OUT = {"train": 3, "validation": 2, "test": 1}
MIN_SEQUENCE_LENGTH = 3


def leave_one_out(user_ids: np.ndarray, items: np.ndarray, raw_user_ids: np.ndarray) -> dict[str, pa.Table]:
    """`user_ids` (0..U-1, sorted, grouped) and `items` (chronological within each user) -> train/validation/test
    tables with columns user_id, raw_user_id, history (list<int64>), target.

    Every user needs at least `MIN_SEQUENCE_LENGTH` interactions.
    """
    lengths = np.bincount(user_ids).astype(np.int64)
    if len(lengths) and lengths.min() < MIN_SEQUENCE_LENGTH:
        short = int(np.flatnonzero(lengths < MIN_SEQUENCE_LENGTH)[0])
        raise ValueError(
            f"user {str(raw_user_ids[short])!r} has {lengths[short]} interactions; leave-one-out needs "
            f"{MIN_SEQUENCE_LENGTH}"
        )
    starts = np.cumsum(lengths) - lengths
    positions = np.arange(len(items), dtype=np.int64) - np.repeat(starts, lengths)
    remaining = np.repeat(lengths, lengths) - positions  # 1 for the last item of each user
    tables = {}
    for split, held_out in HELD_OUT.items():
        history_lengths = lengths - held_out
        offsets = np.concatenate([[0], np.cumsum(history_lengths)]).astype(np.int32)
        history = pa.ListArray.from_arrays(pa.array(offsets), pa.array(items[remaining > held_out].astype(np.int64)))
        tables[split] = pa.table(
            {
                "user_id": pa.array(np.arange(len(lengths), dtype=np.int64)),
                "raw_user_id": pa.array(raw_user_ids.astype(str), pa.string()),
                "history": history,
                "target": pa.array(items[starts + lengths - held_out].astype(np.int64)),
            }
        )
    return tables
