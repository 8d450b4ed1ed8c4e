"""Offline ranking evaluation: time-based splits and top-k metrics."""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd


def leave_last_n_split(interactions: pd.DataFrame, n: int = 2, *, min_history: int = 3
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-user time split: each user's last ``n`` interactions go to test.

    Users with fewer than ``min_history + n`` interactions stay entirely in train (they
    still shape popularity but are not evaluated). Ties in ``timestamp`` are broken by
    the original row order, so the split is deterministic.

    Returns
    -------
    train, test : pandas.DataFrame
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    df = interactions.reset_index(drop=True)
    order = df.assign(_row=np.arange(len(df))).sort_values(["user_id", "timestamp", "_row"], kind="stable")
    rank_from_end = order.groupby("user_id").cumcount(ascending=False)
    size = order.groupby("user_id")["item_id"].transform("size")
    is_test = (rank_from_end < n) & (size >= min_history + n)
    test_rows = order.index[is_test.to_numpy()]
    return df.drop(index=test_rows).reset_index(drop=True), df.loc[test_rows].reset_index(drop=True)


def recall_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of ``relevant`` items found in the top ``k`` (0 when nothing is relevant)."""
    if not relevant:
        return 0.0
    return len(set(list(recommended)[:k]) & relevant) / len(relevant)


def ndcg_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Binary-relevance NDCG@k."""
    gains = [1.0 / np.log2(r + 2) for r, i in enumerate(list(recommended)[:k]) if i in relevant]
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(k, len(relevant))))
    return float(sum(gains) / ideal) if ideal else 0.0


def evaluate_rankings(rankings: Mapping[str, Sequence[str]], test: pd.DataFrame, *, k: int = 20,
                      n_items: int | None = None) -> dict[str, float]:
    """Mean Recall@k, NDCG@k and HitRate@k over the users of ``test`` (+ catalog coverage).

    Parameters
    ----------
    rankings : mapping user_id -> ranked item ids
    test : DataFrame with user_id, item_id
    k : int
    n_items : int, optional
        Catalog size, for coverage (share of items recommended to anyone).
    """
    truth = test.groupby("user_id")["item_id"].agg(lambda s: set(map(str, s)))
    rec, nd, hit, shown = [], [], [], set()
    for user, relevant in truth.items():
        ranked = list(rankings.get(str(user), []))[:k]
        shown.update(ranked)
        rec.append(recall_at_k(ranked, relevant, k))
        nd.append(ndcg_at_k(ranked, relevant, k))
        hit.append(float(bool(set(ranked) & relevant)))
    out = {f"recall@{k}": float(np.mean(rec)) if rec else 0.0, f"ndcg@{k}": float(np.mean(nd)) if nd else 0.0,
           f"hit@{k}": float(np.mean(hit)) if hit else 0.0, "users": len(truth)}
    if n_items:
        out["coverage"] = len(shown) / n_items
    return out


def popularity_rankings(train: pd.DataFrame, users: Sequence[str], k: int) -> dict[str, list[str]]:
    """Most-interacted items not yet seen by each user (the standard baseline)."""
    popular = train["item_id"].astype(str).value_counts().index.tolist()
    seen = train.groupby("user_id")["item_id"].agg(lambda s: set(map(str, s)))
    out = {}
    for u in users:
        s = seen.get(u, set())
        out[u] = [i for i in popular[: k + len(s)] if i not in s][:k]
    return out


def random_rankings(item_ids: Sequence[str], train: pd.DataFrame, users: Sequence[str], k: int,
                    seed: int = 0) -> dict[str, list[str]]:
    """Uniformly random unseen items (the chance level)."""
    rng = np.random.default_rng(seed)
    items = np.asarray(item_ids, dtype=object)
    seen = train.groupby("user_id")["item_id"].agg(lambda s: set(map(str, s)))
    out = {}
    for u in users:
        s = seen.get(u, set())
        pick = rng.permutation(len(items))[: k + len(s)]
        out[u] = [i for i in items[pick] if i not in s][:k]
    return out
