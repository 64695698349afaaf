"""Classic baselines scored with the same metric code on the same split: most-popular and SASRec."""

from .evaluate import (
    BASELINES,
    ITEM_VECTOR_EPOCHS,
    evaluate_scorer,
    fit_baseline,
    run_baseline,
    sasrec_index_arguments,
    sasrec_item_vectors,
    split_rows,
    training_sequences,
)
from .popularity import MostPopular
from .sasrec import SASRec, SASRecConfig, train_sasrec

__all__ = [
    "BASELINES",
    "ITEM_VECTOR_EPOCHS",
    "MostPopular",
    "SASRec",
    "SASRecConfig",
    "evaluate_scorer",
    "fit_baseline",
    "run_baseline",
    "sasrec_index_arguments",
    "sasrec_item_vectors",
    "split_rows",
    "train_sasrec",
    "training_sequences",
]
