"""Offline A/B: several ranking variants on the same test users, one table with deltas and p-values.

>>> from recgen.evaluation.compare import compare_rankings
>>> table = compare_rankings({"ALS": als_lists, "ALS + recgen": reranked_lists}, test, train=train,
...                          baseline="ALS", k=20, seed=0)
>>> table[table["slice"] == "all"][["variant", "ndcg@20", "ndcg@20 ci", "Δndcg@20", "p"]]

Every variant is scored on every test user (a user a variant has no list for scores 0), so
differences are paired per user. Slices: ``all``; ``cold-start items`` (test interactions with
items never seen in train, i.e. can the variant recommend new items at all); ``short history``
(users with at most ``short_history`` train interactions).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from recgen.evaluation.generation import bootstrap_ci
from recgen.evaluation.ranking import paired_comparison, per_user_metrics

__all__ = ["compare_rankings", "slice_tests"]


def slice_tests(test: pd.DataFrame, train: pd.DataFrame, *, short_history: int = 5) -> dict[str, pd.DataFrame]:
    """The test interactions of each slice (``all``, ``cold-start items``, ``short history``)."""
    t = test.assign(user_id=test["user_id"].astype(str), item_id=test["item_id"].astype(str))
    seen_items = set(train["item_id"].astype(str))
    counts = train["user_id"].astype(str).value_counts()
    short_users = set(counts[counts <= short_history].index) | (set(t["user_id"]) - set(counts.index))
    return {"all": t, "cold-start items": t[~t["item_id"].isin(seen_items)],
            f"short history (<= {short_history})": t[t["user_id"].isin(short_users)]}


def compare_rankings(variants: Mapping[str, Mapping[str, Sequence[str]]], test: pd.DataFrame, *,
                     train: pd.DataFrame, baseline: str | None = None, k: int = 20,
                     metrics: Sequence[str] = ("recall", "ndcg", "mrr", "map", "hit"),
                     item_vectors: Mapping[str, np.ndarray] | None = None, n_items: int | None = None,
                     short_history: int = 5, n_boot: int = 2000, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """One row per (slice, variant): metric means with bootstrap intervals, deltas to ``baseline``.

    Parameters
    ----------
    variants : mapping name -> (mapping user_id -> ranked item ids)
    test, train : DataFrame
        ``user_id, item_id``; train defines the cold-start and short-history slices, novelty.
    baseline : str, optional
        Variant the others are compared with (default: the first).
    k : int
    metrics : sequence of {"recall", "ndcg", "mrr", "map", "hit"}
    item_vectors : mapping item id -> vector, optional
        Adds diversity@k.
    n_items : int, optional
        Adds catalog coverage@k.
    short_history, n_boot, seed, ci
        Slice threshold and bootstrap settings (reproducible from ``seed``).

    Returns
    -------
    pandas.DataFrame
        Columns: ``slice, variant, users``, then per metric ``m@k``, ``m@k ci`` (low, high),
        ``Δm@k``, ``Δm@k ci``, ``p m@k`` (Wilcoxon signed-rank: it drops users with equal
        values and tests a shift in ranks, not in means, so for sparse metrics such as hit or
        MRR read it with the interval of the mean difference), ``p_boot m@k`` (paired
        bootstrap of the mean difference), and ``novelty@k`` / ``diversity@k`` /
        ``coverage@k`` when available.
    """
    if not variants:
        raise ValueError("variants is empty: pass {name: {user_id: [item ids]}}")
    names = list(variants)
    baseline = names[0] if baseline is None else baseline
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not one of the variants {names}")
    bad = [m for m in metrics if m not in ("recall", "ndcg", "mrr", "map", "hit")]
    if bad:
        raise ValueError(f"unknown metrics {bad}; choose from recall, ndcg, mrr, map, hit")
    rows = []
    for slice_name, part in slice_tests(test, train, short_history=short_history).items():
        if part.empty:
            continue
        per = {v: per_user_metrics({str(u): list(r) for u, r in variants[v].items()}, part, k=k,
                                   item_vectors=item_vectors, train=train) for v in names}
        for v in names:
            row = {"slice": slice_name, "variant": v, "users": len(per[v])}
            for m in metrics:
                col = f"{m}@{k}"
                vals = per[v][col].to_numpy()
                row[col] = float(vals.mean())
                row[f"{col} ci"] = bootstrap_ci(vals, n_boot=n_boot, seed=seed, ci=ci)
                if v != baseline:
                    pc = paired_comparison(vals, per[baseline][col].to_numpy(), n_boot=n_boot, seed=seed, ci=ci)
                    row[f"Δ{col}"], row[f"Δ{col} ci"], row[f"p {col}"], row[f"p_boot {col}"] = (
                        pc["delta"], (pc["ci_low"], pc["ci_high"]), pc["p_wilcoxon"], pc["p_bootstrap"])
            for extra in (f"novelty@{k}", f"diversity@{k}"):
                if extra in per[v].columns:
                    row[extra] = float(np.nanmean(per[v][extra])) if per[v][extra].notna().any() else float("nan")
            if n_items:
                shown = {str(i) for u in per[v].index for i in list(variants[v].get(u, []))[:k]}
                row[f"coverage@{k}"] = len(shown) / n_items
            rows.append(row)
    return pd.DataFrame(rows)
