"""Evaluation: ranking metrics with time-based splits, and cross-modal alignment."""
from recgen.evaluation.alignment import AlignmentResult, held_out_alignment, image_to_text_retrieval
from recgen.evaluation.ranking import (
    evaluate_rankings, leave_last_n_split, ndcg_at_k, popularity_rankings, random_rankings, recall_at_k,
)

__all__ = ["AlignmentResult", "evaluate_rankings", "held_out_alignment", "image_to_text_retrieval",
           "leave_last_n_split", "ndcg_at_k", "popularity_rankings", "random_rankings", "recall_at_k"]
