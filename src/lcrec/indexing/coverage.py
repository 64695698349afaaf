"""The one check that an item index belongs to a prepared dataset: every item present, with the same raw id."""

from __future__ import annotations

from collections.abc import Mapping

from .item_index import ItemIndex


def check_index_covers_dataset(
    index: ItemIndex,
    dataset: object,
    *,
    exact: bool = False,
    index_source: str = "the item index",
    dataset_source: str = "the dataset",
) -> None:
    """Raise a ValueError naming the mismatch unless `index` holds every item of `dataset` as the same item.

    `dataset` is a prepared `DatasetDict` (its `items` split is used) or the items split itself (columns
    `item_id` and, when present, `raw_id`). Checks: every dataset item id is in the index; with `exact`, the index
    holds no other items (evaluation and publishing need the catalogue itself; training may use an index grown
    with cold-start items); where the index records raw ids (indices built by lcrec do), each item's raw id is the
    dataset's, which refuses the index of another dataset of the same size or a dataset prepared again.
    """
    if isinstance(dataset, Mapping):
        if "items" not in dataset:
            raise ValueError(
                f"{dataset_source} has no 'items' split (splits: {sorted(dataset)}); prepare it with `lcrec prepare`"
            )
        dataset = dataset["items"]
    columns = ["item_id"] + (["raw_id"] if "raw_id" in dataset.column_names and index.raw_ids is not None else [])
    table = dataset.select_columns(columns).to_dict()
    item_ids = [int(item) for item in table["item_id"]]
    missing = [item for item in item_ids if item not in index]
    if missing:
        raise ValueError(
            f"{index_source} lacks {len(missing)} of {dataset_source}'s {len(item_ids)} items, e.g. {missing[:10]}; "
            "was it built for another dataset?"
        )
    if exact and index.num_items != len(item_ids):
        extra = sorted(set(index.item_ids) - set(item_ids))
        raise ValueError(
            f"{index_source} has {index.num_items} items but {dataset_source} has {len(item_ids)}: "
            f"{len(extra)} items are not in the dataset, e.g. {extra[:10]}"
        )
    if "raw_id" in table:
        differing = [
            (item, index.raw_id_of(item), str(raw))
            for item, raw in zip(item_ids, table["raw_id"])
            if index.raw_id_of(item) != str(raw)
        ]
        if differing:
            item, indexed, prepared = differing[0]
            raise ValueError(
                f"{index_source} was built for another dataset: item {item} is {indexed!r} there but {prepared!r} in "
                f"{dataset_source} ({len(differing)} of {len(item_ids)} items differ); build the index from this "
                "dataset"
            )
