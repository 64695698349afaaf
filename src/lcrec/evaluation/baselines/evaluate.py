"""Fit a baseline on the train split and evaluate it on a split with the shared metric code."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, replace

import numpy as np
from datasets import DatasetDict

from ...indexing.collaborative import DEFAULT_ALIGNMENT_WEIGHT
from ..config import UserSelection
from ..metrics import METRIC_NAMES, max_cutoff, mean_metrics
from ..ranking import rank_by_scores, select_rows
from ..report import build_metrics_record
from .popularity import MostPopular
from .sasrec import SASRec, SASRecConfig, train_sasrec

logger = logging.getLogger(__name__)

BASELINES = ("most_popular", "sasrec")
# SASRec epochs for collaborative item vectors: no validation data may shape an index, so no early stopping; 20 is
# about where early stopping lands on MovieLens-100K and Amazon Scientific.
ITEM_VECTOR_EPOCHS = 20
ALIASES = {"pop": "most_popular", "popularity": "most_popular", "most_popular": "most_popular", "sasrec": "sasrec"}


def training_sequences(dataset: DatasetDict) -> list[list[int]]:
    """Each user's full training sequence: the train split's history followed by its target."""
    return [
        list(history) + [int(target)]
        for history, target in zip(dataset["train"]["history"], dataset["train"]["target"])
    ]


def sasrec_item_vectors(dataset: DatasetDict, config: SASRecConfig | None = None) -> np.ndarray:
    """SASRec item embeddings (row i = item id i) learnt from the train split alone, for a collaborative index.

    No validation split is read: training runs `config.max_epochs` epochs (default ITEM_VECTOR_EPOCHS) or until
    `config.max_seconds`.
    """
    config = replace(config or SASRecConfig(max_epochs=ITEM_VECTOR_EPOCHS), num_items=len(dataset["items"]))
    model, log = train_sasrec(training_sequences(dataset), config, validate=None)
    logger.info("SASRec item vectors: %d epochs on the train split, last loss %.4f", len(log), log[-1]["loss"])
    return model.item_embeddings.weight[1:].detach().cpu().numpy().astype(np.float32)


def sasrec_index_arguments(
    dataset: DatasetDict,
    items: list[dict],
    mode: str,
    seed: int,
    weight: float = DEFAULT_ALIGNMENT_WEIGHT,
    epochs: int = ITEM_VECTOR_EPOCHS,
) -> dict:
    """`build_index`'s collaborative arguments from SASRec item vectors of the train split (rows in `items` order):
    what `lcrec index --collaborative sasrec` and the quickstart's collaborative index pass."""
    vectors = sasrec_item_vectors(dataset, SASRecConfig(max_epochs=epochs, seed=seed))
    return {
        "collaborative": vectors[[int(item["item_id"]) for item in items]],
        "collaborative_mode": mode,
        "collaborative_weight": weight,
        "collaborative_source": f"sasrec ({epochs} epochs on the train split)",
    }


def split_rows(dataset: DatasetDict, split: str, rows: list[int] | None = None) -> tuple[list[list[int]], list[int]]:
    """(histories, targets) of `rows` of `split` (all rows by default) as plain lists."""
    table = dataset[split] if rows is None else dataset[split].select(rows)
    return [list(history) for history in table["history"]], [int(target) for target in table["target"]]


def evaluate_scorer(
    score, histories: list[list[int]], targets: list[int], exclude_history: bool = False
) -> dict[str, float]:
    """Mean HR/NDCG of a full-catalogue scorer `score(histories) -> (users, items)` over these users."""
    ranked = rank_by_scores(score, histories, max_cutoff(METRIC_NAMES), exclude_history)
    return mean_metrics(ranked, targets)


def fit_baseline(
    name: str,
    dataset: DatasetDict,
    exclude_history: bool = False,
    sasrec_config: SASRecConfig | None = None,
    item_text: np.ndarray | None = None,
) -> tuple[MostPopular | SASRec, dict]:
    """Train `name` ("most_popular" or "sasrec") on the train split; returns the model and training facts.

    SASRec stops early on the validation split's NDCG@10 (all validation users, the same history exclusion) unless
    its config turns early stopping off; `item_text` (one text vector per item) joins its item table while training.
    """
    method = canonical_name(name)
    num_items = len(dataset["items"])
    sequences = training_sequences(dataset)
    if method == "most_popular":
        return MostPopular.fit(sequences, num_items), {}
    config = sasrec_config or SASRecConfig()
    if config.num_items not in (0, num_items):
        raise ValueError(f"SASRecConfig.num_items is {config.num_items} but the dataset has {num_items} items")
    config = replace(config, num_items=num_items)

    validation_histories, validation_targets = split_rows(dataset, "validation")

    def validate(model: SASRec) -> float:
        return evaluate_scorer(model.score, validation_histories, validation_targets, exclude_history)["NDCG@10"]

    model, log = train_sasrec(sequences, config, validate, item_text)
    best = max(log, key=lambda entry: entry.get("validation", float("-inf")))
    kept = best if config.early_stopping else log[-1]
    return model, {
        "config": asdict(config),
        "item_text": item_text is not None,
        "epochs": len(log),
        "best_epoch": best["epoch"],
        "best_validation_NDCG@10": best.get("validation"),
        "kept_epoch": kept["epoch"],
        "kept_validation_NDCG@10": kept.get("validation"),
    }


def run_baseline(
    name: str,
    dataset: DatasetDict,
    users: UserSelection | None = None,
    sasrec_config: SASRecConfig | None = None,
    model_dir: str | None = None,
    item_text: np.ndarray | None = None,
) -> dict:
    """Fit, evaluate on the users `users` selects (pass the LC-Rec evaluation's config to score the same users with
    the same exclusion rule), and return a metrics.json record; SASRec weights go to `model_dir` when given."""
    method = canonical_name(name)
    users = users or UserSelection()
    started = time.perf_counter()
    if item_text is not None and method != "sasrec":
        raise ValueError(f"item text vectors are a SASRec option; {method} takes none")
    model, facts = fit_baseline(method, dataset, users.exclude_history, sasrec_config, item_text)
    fit_seconds = time.perf_counter() - started
    if model_dir is not None and isinstance(model, SASRec):
        model.save_pretrained(model_dir)
    rows = select_rows(len(dataset[users.split]), users.max_users, users.user_seed)
    started = time.perf_counter()
    metrics = evaluate_scorer(model.score, *split_rows(dataset, users.split, rows), users.exclude_history)
    seconds = time.perf_counter() - started
    logger.info(
        "%s on %d %s users: HR@10 %.4f NDCG@10 %.4f",
        method,
        len(rows),
        users.split,
        metrics["HR@10"],
        metrics["NDCG@10"],
    )
    return build_metrics_record(
        {"none": metrics},
        method=method,
        num_users=len(rows),
        num_beams=None,
        invalid_rate=0.0,
        seconds=seconds,
        exclude_history=users.exclude_history,
        split=users.split,
        max_users=users.max_users,
        user_seed=users.user_seed,
        fit_seconds=round(fit_seconds, 3),
        **facts,
    )


def canonical_name(name: str) -> str:
    try:
        return ALIASES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}: choose one of {', '.join(BASELINES)}") from None
