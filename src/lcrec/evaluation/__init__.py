"""Full-ranking evaluation (HR@K, NDCG@K), the LC-Rec evaluation runner, baselines and the end-to-end pipeline."""

from .metrics import METRIC_NAMES, hit_rate_at_k, mean_metrics, ndcg_at_k, rank_of, top_k_from_scores
from .ranking import exclude_seen, finalize_ranking, select_rows
from .report import build_metrics_record, format_table
from .runner import EvaluationConfig, check_catalogue, evaluate_model, parse_templates

__all__ = [
    "METRIC_NAMES",
    "EvaluationConfig",
    "build_metrics_record",
    "check_catalogue",
    "evaluate_model",
    "exclude_seen",
    "finalize_ranking",
    "format_table",
    "hit_rate_at_k",
    "mean_metrics",
    "ndcg_at_k",
    "parse_templates",
    "rank_of",
    "select_rows",
    "top_k_from_scores",
]
