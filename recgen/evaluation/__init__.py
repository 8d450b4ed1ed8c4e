"""Evaluation: splits and ranking metrics, variant comparison, the A/B harness, cross-modal
alignment, generated-content metrics and off-policy estimates.

Names are imported on first use (PEP 562): the CLI loads :mod:`recgen.evaluation.variants`
for every command, and must not pay for SciPy's statistics then.
"""
from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"recgen.evaluation.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recgen.evaluation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
