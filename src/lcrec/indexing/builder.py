"""`build_index`: item texts -> embeddings -> RQ-VAE -> collision-free `ItemIndex`, written as an index folder.

`add_items` gives cold-start items codes from the trained RQ-VAE without touching existing codes.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..io_utils import atomic_dir, check_output_dir, write_json
from .assignment import (
    assign_unique_codes,
    check_capacity,
    colliding_groups,
    make_unique,
)
from .collaborative import (
    DEFAULT_ALIGNMENT_WEIGHT,
    DEFAULT_COLLABORATIVE_MODE,
    CollaborativeAlignment,
    check_collaborative,
    prefix_sharing,
    quantiser_inputs,
)
from .configuration_rqvae import RQVAEConfig
from .embedding import (
    DEFAULT_FIELDS,
    EMBEDDINGS_NAME,
    check_fields,
    check_finite,
    embed_items,
    encoder_name,
    resolve_device,
)
from .item_index import ItemIndex
from .modeling_rqvae import RQVAE
from .stats import index_stats, plot_index_stats
from .training_rqvae import RQVAETrainingArguments, encode_all, train_rqvae

logger = logging.getLogger(__name__)

INDEX_NAME = "index.json"
STATS_NAME = "index_stats.json"
PLOT_NAME = "index_stats.png"
COMMAND = "index"
# Files every index folder holds; folders written before the output marker are recognised by them.
OUTPUT_SIGNATURE = (INDEX_NAME, STATS_NAME)


@dataclass
class IndexBuildResult:
    """The index, its RQ-VAE and the numbers written to `index_stats.json`."""

    index: ItemIndex
    model: RQVAE
    stats: dict


def build_index(
    items: Sequence[Mapping[str, object]],
    out_dir: str | os.PathLike,
    encoder: str | os.PathLike | None = None,
    embeddings: np.ndarray | None = None,
    config: RQVAEConfig | None = None,
    training_args: RQVAETrainingArguments | None = None,
    fields: Sequence[str] = DEFAULT_FIELDS,
    embedding_mode: str = "paper",
    sinkhorn_rounds: int = 20,
    progress: bool = True,
    overwrite: bool = False,
    command: str | None = None,
    collaborative: np.ndarray | None = None,
    collaborative_mode: str = DEFAULT_COLLABORATIVE_MODE,
    collaborative_weight: float = DEFAULT_ALIGNMENT_WEIGHT,
    collaborative_source: str | None = None,
    sequences: Sequence[Sequence[int]] | None = None,
) -> IndexBuildResult:
    """Build and write an index folder for `items`: dicts with `item_id` and text fields, such as
    `load_prepared(path)["items"].to_list()`.

    Give either `encoder` (`minilm`, a model folder or a Hub id; embeddings are cached in the folder) or
    precomputed `embeddings` aligned with `items`. `config` sets the RQ-VAE shape (its `input_dim` follows the
    embeddings). Every item gets a distinct index. The folder is checked before any work (`check_output_dir`:
    a non-empty folder that is not an index folder needs `overwrite=True`) and replaced whole when the index is
    complete, so a failed build leaves the previous folder as it was. Items with a `raw_id` have it recorded in the
    index, which then names the dataset it was built for (`check_index_covers_dataset`).

    `collaborative` (one row per item, e.g. SASRec item embeddings trained on the training split; named by
    `collaborative_source` in the stats) adds the interaction signal as `collaborative_mode` says (see
    `lcrec.indexing.collaborative`); `letter` weighs its alignment term by `collaborative_weight`. With
    `sequences` (training item sequences) index_stats.json records how often consecutive items share code prefixes.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    training_args = training_args or RQVAETrainingArguments()
    config = config or RQVAEConfig()
    item_ids = [int(item.get("item_id", position)) for position, item in enumerate(items)]
    if not item_ids:
        raise ValueError("the catalogue has no items")
    if len(set(item_ids)) != len(item_ids):
        raise ValueError("item ids are not unique")
    check_capacity(len(item_ids), config.codebook_sizes)
    if collaborative is not None:
        collaborative = check_collaborative(collaborative, len(item_ids), collaborative_mode)
        if collaborative_mode == "letter" and collaborative_weight <= 0:
            raise ValueError(f"collaborative_weight must be positive, got {collaborative_weight}")
    if (encoder is None) == (embeddings is None):
        raise ValueError("give exactly one of `encoder` or `embeddings`")
    if encoder is not None:
        check_fields(items, fields)
    resolve_device(training_args.device)
    check_output_dir(out_dir, COMMAND, overwrite=overwrite, signature=OUTPUT_SIGNATURE)
    raw_ids = [str(item["raw_id"]) for item in items] if all("raw_id" in item for item in items) else None
    with atomic_dir(out_dir, command=COMMAND) as tmp:
        if embeddings is None:
            cached = out_dir / EMBEDDINGS_NAME
            if cached.is_file():  # the previous folder's cache: reused when its key matches
                shutil.copy2(cached, tmp / EMBEDDINGS_NAME)
            embeddings = embed_items(
                items,
                encoder,
                fields,
                embedding_mode,
                cache_path=tmp / EMBEDDINGS_NAME,
                device=training_args.device,
                progress=progress,
            )
            config = replace(
                config, embedding={"encoder": encoder_name(encoder), "fields": list(fields), "mode": embedding_mode}
            )
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != len(item_ids):
            raise ValueError(f"embeddings must have one row per item ({len(item_ids)}), got shape {embeddings.shape}")
        check_finite(embeddings, item_ids)
        auxiliary, collaborative_stats = None, None
        if collaborative is not None:
            embeddings = quantiser_inputs(embeddings, collaborative, collaborative_mode)
            collaborative_stats = {
                "source": collaborative_source,
                "mode": collaborative_mode,
                "dim": int(collaborative.shape[1]),
            }
            config = replace(config, embedding={**config.embedding, "collaborative": collaborative_mode})
            if collaborative_mode == "letter":
                auxiliary = CollaborativeAlignment(collaborative, config.code_dim, weight=collaborative_weight)
                collaborative_stats["weight"] = collaborative_weight
        config = replace(config, input_dim=int(embeddings.shape[1]))
        embedded = time.perf_counter()

        data = torch.from_numpy(embeddings)
        trained = train_rqvae(data, config, training_args, auxiliary=auxiliary)
        codes, residuals = encode_all(trained.model, data)
        assignment = assign_unique_codes(
            codes.numpy(),
            residuals,
            list(trained.model.codebooks),
            sinkhorn_rounds,
            config.sinkhorn_epsilon,
            config.sinkhorn_iterations,
        )
        shared = colliding_groups(assignment.codes)
        if shared:
            examples = [[item_ids[row] for row in rows] for rows in shared[:3]]
            raise RuntimeError(
                f"index assignment left {len(shared)} groups of items sharing an index, e.g. {examples}; nothing was "
                "written"
            )
        index = ItemIndex(item_ids, assignment.codes, config.codebook_sizes, raw_ids)
        finished = time.perf_counter()
        stats = index_stats(
            assignment.codes,
            config.codebook_sizes,
            assignment.collision_rate_before_resolution,
            finished - started,
            embedding_seconds=round(embedded - started, 3),
            training_seconds=round(finished - embedded, 3),
            colliding_items_before_resolution=assignment.colliding_items_before,
            colliding_items_after_sinkhorn=assignment.colliding_items_after_sinkhorn,
            sinkhorn_rounds=assignment.sinkhorn_rounds_used,
            moved_to_free_codes=assignment.moved_by_guarantee,
            epochs=training_args.epochs,
            best_epoch=trained.best_epoch,
            restarted_codes=trained.restarted_codes,
            encoder=config.embedding.get("encoder"),
            fingerprint=index.fingerprint,
            **({"command": command} if command is not None else {}),
            **({"collaborative": collaborative_stats} if collaborative_stats else {}),
            **({"train_pair_prefix_sharing": _pair_sharing(index, sequences)} if sequences is not None else {}),
        )
        trained.model.save_pretrained(tmp)
        plot_index_stats(assignment.codes, config.codebook_sizes, tmp / PLOT_NAME)
        write_json(tmp / STATS_NAME, stats)
        index.save(tmp / INDEX_NAME)
    logger.info("index: %d items, 0 collisions, written to %s", len(item_ids), out_dir)
    return IndexBuildResult(index, trained.model, stats)


def _pair_sharing(index: ItemIndex, sequences: Sequence[Sequence[int]]) -> dict:
    """How often consecutive training items share their first one and two codes (and the random-code rate)."""
    depths = range(1, min(2, index.levels) + 1)
    return {f"first_{depth}": prefix_sharing(index.codes, index.item_ids, sequences, depth) for depth in depths}


def assign_new_items(
    index: ItemIndex,
    model: RQVAE,
    embeddings: np.ndarray,
    item_ids: Sequence[int],
    raw_ids: Sequence[str] | None = None,
) -> ItemIndex:
    """A new index with `item_ids` added: nearest RQ-VAE codes, moved to the nearest free code where taken.

    Existing items keep their codes; raises a ValueError for ids already in the index or bad embeddings.
    """
    item_ids = [int(item) for item in item_ids]
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(item_ids):
        raise ValueError(f"embeddings must have one row per new item ({len(item_ids)}), got shape {embeddings.shape}")
    known = [item for item in item_ids if item in index]
    if known:
        raise ValueError(f"{len(known)} items are already in the index, e.g. {known[:10]}")
    if len(set(item_ids)) != len(item_ids):
        raise ValueError("new item ids are not unique")
    if list(model.config.codebook_sizes) != index.codebook_sizes:
        raise ValueError(
            f"the RQ-VAE's codebook sizes {model.config.codebook_sizes} differ from the index's {index.codebook_sizes}"
        )
    check_finite(embeddings, item_ids)
    codes, residuals = encode_all(model, torch.from_numpy(embeddings))
    all_codes = np.concatenate([index.codes, codes.numpy()])
    all_residuals = np.concatenate(
        [np.zeros((index.num_items, *residuals.shape[1:]), dtype=np.float32), residuals.numpy()]
    )
    fixed = np.arange(len(all_codes)) < index.num_items
    books = [codebook.detach().cpu().numpy() for codebook in model.codebooks]
    unique, moved = make_unique(all_codes, all_residuals, books, fixed=fixed, item_ids=index.item_ids + item_ids)
    logger.info("add_items: %d new items, %d moved to a free code", len(item_ids), moved)
    return index.with_items(item_ids, unique[index.num_items :], raw_ids)


def add_items(
    index_dir: str | os.PathLike, items: Sequence[Mapping[str, object]], device: str = "auto", progress: bool = True
) -> ItemIndex:
    """Cold-start: embed `items` (dicts with `item_id` and text fields) as the folder's index was built and add them.

    Returns the new `ItemIndex`; save it with `.save(path)`. Existing items keep their codes; the items' raw ids
    are recorded when the index has them.
    """
    index_dir = Path(index_dir)
    index = ItemIndex.from_path(index_dir)
    model = RQVAE.from_pretrained(index_dir)
    recipe = model.config.embedding
    if not recipe.get("encoder"):
        raise ValueError(
            f"{index_dir}: the index was built from precomputed embeddings; use assign_new_items with embeddings made "
            "the same way"
        )
    if recipe.get("collaborative") in ("concat", "only"):
        raise ValueError(
            f"{index_dir}: the index quantised collaborative vectors ({recipe['collaborative']}), which new items do "
            "not have; use assign_new_items with vectors made the same way"
        )
    missing = [position for position, item in enumerate(items) if "item_id" not in item]
    if missing:
        raise ValueError(f"new items need an `item_id`; items at positions {missing[:10]} have none")
    embeddings = embed_items(
        items, recipe["encoder"], recipe["fields"], recipe["mode"], device=device, progress=progress
    )
    raw_ids = [str(item["raw_id"]) for item in items] if all("raw_id" in item for item in items) else None
    return assign_new_items(index, model, embeddings, [int(item["item_id"]) for item in items], raw_ids)
