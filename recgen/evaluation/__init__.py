"""Evaluation: splits and ranking metrics, variant comparison, the A/B harness, cross-modal
alignment, generated-content metrics and off-policy estimates.

Names are imported on first use (PEP 562): the CLI loads :mod:`recgen.evaluation.variants`
for every command, and must not pay for SciPy's statistics then.
"""
from __future__ import annotations

from recgen._lazy import lazy_exports

_LAZY = {
    "AlignmentResult": "alignment", "held_out_alignment": "alignment", "image_to_text_retrieval": "alignment",
    "ExposureSimulator": "offpolicy", "OffPolicyEstimate": "offpolicy", "doubly_robust": "offpolicy",
    "ips": "offpolicy", "snips": "offpolicy",
    **{name: "ranking" for name in (
        "average_precision_at_k", "evaluate_rankings", "global_time_split", "hit_rate_at_k", "intra_list_diversity",
        "leave_last_n_split", "mrr_at_k", "ndcg_at_k", "novelty", "paired_comparison", "per_user_metrics",
        "popularity_rankings", "random_rankings", "random_split", "recall_at_k")},
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, {name: f"{__name__}.{mod}" for name, mod in _LAZY.items()})
