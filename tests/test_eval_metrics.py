"""HR@K / NDCG@K against hand-computed values, history exclusion and shared user selection."""

import math

import numpy as np
import pytest

from lcrec.evaluation.metrics import hit_rate_at_k, mean_metrics, ndcg_at_k, rank_of, top_k_from_scores, user_metrics
from lcrec.evaluation.ranking import finalize_ranking, rank_by_scores, select_rows
from lcrec.evaluation.report import build_metrics_record


def test_hand_computed_single_user():
    ranked = [7, 3, 9, 1, 4, 8]
    assert rank_of(ranked, 9) == 2
    assert hit_rate_at_k(ranked, 9, 1) == 0.0
    assert hit_rate_at_k(ranked, 9, 3) == 1.0
    assert ndcg_at_k(ranked, 9, 5) == pytest.approx(1 / math.log2(4))  # rank 3 -> 1/log2(3+1) = 0.5
    assert ndcg_at_k(ranked, 7, 5) == 1.0
    assert ndcg_at_k(ranked, 8, 5) == 0.0  # 6th place is outside the top 5
    assert user_metrics(ranked, 3) == {
        "HR@1": 0.0,
        "HR@5": 1.0,
        "HR@10": 1.0,
        "NDCG@5": pytest.approx(1 / math.log2(3)),
        "NDCG@10": pytest.approx(1 / math.log2(3)),
    }


def test_k_beyond_list_length_and_missing_target():
    assert hit_rate_at_k([5, 6], 6, 10) == 1.0
    assert ndcg_at_k([5, 6], 6, 10) == pytest.approx(1 / math.log2(3))
    assert hit_rate_at_k([5, 6], 4, 10) == 0.0
    assert ndcg_at_k([], 4, 10) == 0.0
    with pytest.raises(ValueError, match="k must be"):
        hit_rate_at_k([1], 1, 0)


def test_ties_and_duplicates_count_by_rank_order():
    # Items 1 and 2 share the top score: the lower id is ranked first, so target 2 sits at rank 1.
    scores = np.array([0.1, 0.9, 0.9, 0.5])
    assert top_k_from_scores(scores, 3).tolist() == [1, 2, 3]
    assert ndcg_at_k(top_k_from_scores(scores, 3).tolist(), 2, 3) == pytest.approx(1 / math.log2(3))
    # A repeated item counts at its first position.
    assert rank_of([4, 2, 2], 2) == 1


def test_mean_over_users_hand_computed():
    ranked = [[1, 2, 3], [3, 2, 1], [9, 8, 7]]
    targets = [1, 2, 5]
    out = mean_metrics(ranked, targets, names=("HR@1", "HR@5", "NDCG@5"))
    assert out["HR@1"] == pytest.approx(1 / 3)
    assert out["HR@5"] == pytest.approx(2 / 3)
    assert out["NDCG@5"] == pytest.approx((1 + 1 / math.log2(3) + 0) / 3)
    with pytest.raises(ValueError, match="2 ranked lists for 3 targets"):
        mean_metrics(ranked[:2], targets)


def test_history_exclusion_is_the_same_rule_for_lists_and_scores():
    history = [2, 0]
    assert finalize_ranking([2, 5, 0, 1, 3], history, 2, exclude_history=True) == [5, 1]
    assert finalize_ranking([2, 5, 0, 1, 3], history, 2, exclude_history=False) == [2, 5]
    scores = np.array([[5.0, 1.0, 4.0, 3.0, 2.0]])
    assert rank_by_scores(lambda batch: scores, [history], 2, exclude_history=True) == [[3, 4]]
    assert rank_by_scores(lambda batch: scores, [history], 2, exclude_history=False) == [[0, 2]]


def test_user_selection_is_seeded_and_complete_by_default():
    assert select_rows(5, None) == [0, 1, 2, 3, 4]
    assert select_rows(5, 10) == [0, 1, 2, 3, 4]
    sample = select_rows(100, 7, seed=3)
    assert sample == select_rows(100, 7, seed=3) and len(set(sample)) == 7 and sample == sorted(sample)


def test_record_mean_min_max_over_templates():
    a = dict.fromkeys(("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10"), 0.2)
    b = dict.fromkeys(a, 0.4)
    record = build_metrics_record(
        {"0": a, "1": b},
        method="lcrec",
        num_users=10,
        num_beams=20,
        invalid_rate=0.0,
        seconds=2.0,
        exclude_history=False,
    )
    assert record["HR@10"] == pytest.approx(0.3)
    assert record["template_min"]["HR@10"] == 0.2 and record["template_max"]["NDCG@5"] == 0.4
    assert record["users_per_second"] == 5.0 and record["exclude_history"] is False
