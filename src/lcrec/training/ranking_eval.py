"""Recommendation metrics during SFT: checkpoints chosen (and training stopped) by validation NDCG, as for SASRec.

The Trainer's `eval_loss` is a token-level loss on validation seqrec rows; it keeps falling on MovieLens-100K
while HR@10 stalls, and on Amazon Scientific the ranking peaks epochs before training ends. SASRec's baseline stops
early on validation NDCG@10, so LC-Rec gets the same: at every evaluation this callback ranks a seeded sample of
validation users with the model being trained (trie-constrained beam search, exactly as `lcrec evaluate`) and adds
`eval_HR@10`, `eval_NDCG@10`, ... to the metrics, where `metric_for_best_model: NDCG@10` and
`early_stopping_patience` read them.
"""

from __future__ import annotations

import logging

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

RANKING_METRICS = ("HR@5", "HR@10", "NDCG@5", "NDCG@10")


class RankingEvaluationCallback(TrainerCallback):
    """Adds validation ranking metrics (`eval_NDCG@10`, ...) to every evaluation of the Trainer."""

    def __init__(self, dataset, max_users: int | None = None, seed: int = 0):
        self.dataset = dataset
        self.max_users = max_users
        self.seed = seed

    def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
        from ..evaluation.config import EvaluationConfig
        from ..evaluation.runner import evaluate_model

        if model is None or metrics is None:
            return control
        lcrec_model = model.get_base_model() if hasattr(model, "get_base_model") else model
        was_training = lcrec_model.training
        config = EvaluationConfig(split="validation", max_users=self.max_users, user_seed=self.seed)
        record = evaluate_model(lcrec_model, self.dataset, config)
        lcrec_model.train(was_training)
        ranking = {f"eval_{name}": record[name] for name in RANKING_METRICS}
        metrics.update(ranking)
        # The Trainer logged its metrics before calling back: put these next to them in the log history.
        last = state.log_history[-1] if state.log_history else {}
        if last.get("step") == state.global_step and "eval_loss" in last:
            last.update(ranking)
        logger.info(
            "step %d: validation HR@10 %.4f NDCG@10 %.4f on %d users",
            state.global_step,
            record["HR@10"],
            record["NDCG@10"],
            record["num_users"],
        )
        return control
