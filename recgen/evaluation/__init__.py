"""Evaluation: splits and ranking metrics, cross-modal alignment, off-policy estimates."""
from recgen.evaluation.alignment import AlignmentResult, held_out_alignment, image_to_text_retrieval
from recgen.evaluation.offpolicy import ExposureSimulator, OffPolicyEstimate, doubly_robust, ips, snips
from recgen.evaluation.ranking import (
    average_precision_at_k, evaluate_rankings, global_time_split, hit_rate_at_k, intra_list_diversity,
    leave_last_n_split, mrr_at_k, ndcg_at_k, novelty, paired_comparison, per_user_metrics, popularity_rankings,
    random_rankings, random_split, recall_at_k,
)

__all__ = ["AlignmentResult", "ExposureSimulator", "OffPolicyEstimate", "average_precision_at_k", "doubly_robust",
           "evaluate_rankings", "global_time_split", "held_out_alignment", "hit_rate_at_k", "image_to_text_retrieval",
           "intra_list_diversity", "ips", "leave_last_n_split", "mrr_at_k", "ndcg_at_k", "novelty",
           "paired_comparison", "per_user_metrics", "popularity_rankings", "random_rankings", "random_split",
           "recall_at_k", "snips"]
