"""Full-ranking evaluation (HR@K, NDCG@K): options, the LC-Rec evaluation runner, reports, paired comparisons and
baselines."""

from .config import EvaluationConfig, UserSelection, canonical_split, template_ids
from .metrics import METRIC_NAMES, hit_rate_at_k, mean_metrics, ndcg_at_k, rank_of, top_k_from_scores
from .paired import PairedComparison, mcnemar_exact, paired_bootstrap
from .ranking import exclude_seen, finalize_ranking, select_rows
from .report import build_metrics_record, format_table
from .runner import check_catalogue, evaluate_model

__all__ = [
    "METRIC_NAMES",
    "EvaluationConfig",
    "PairedComparison",
    "UserSelection",
    "build_metrics_record",
    "canonical_split",
    "check_catalogue",
    "evaluate_model",
    "exclude_seen",
    "finalize_ranking",
    "format_table",
    "hit_rate_at_k",
    "mcnemar_exact",
    "mean_metrics",
    "ndcg_at_k",
    "paired_bootstrap",
    "rank_of",
    "select_rows",
    "template_ids",
    "top_k_from_scores",
]
