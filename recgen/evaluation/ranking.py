"""Offline ranking evaluation: time-based splits and top-k metrics."""
from __future__ import annotations

from typing import Mapping, Sequence

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


def global_time_split(interactions: pd.DataFrame, *, test_fraction: float = 0.1, val_fraction: float = 0.0
                      ) -> tuple[pd.DataFrame, ...]:
    """One time cut for everybody: the latest ``test_fraction`` of interactions is test.

    The split closest to deployment (no model sees the future of any user); the default
    for offline evaluation because results change with the split. Ties in ``timestamp``
    keep the original row order.

    Returns
    -------
    (train, test) or (train, val, test) when ``val_fraction > 0``
    """
    for name, f in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0 <= f < 1:
            raise ValueError(f"{name} must be in [0, 1); got {f}")
    if test_fraction <= 0 or test_fraction + val_fraction >= 1:
        raise ValueError(f"need test_fraction > 0 and test_fraction + val_fraction < 1; got {test_fraction}, "
                         f"{val_fraction}")
    if "timestamp" not in interactions.columns:
        raise ValueError("interactions has no timestamp column: use random_split, or add timestamps")
    df = interactions.reset_index(drop=True)
    ts = _timestamps(df["timestamp"])
    order = np.argsort(ts, kind="stable")
    ts_sorted = ts[order]
    n = len(df)
    a, b = int(round(n * (1 - test_fraction - val_fraction))), int(round(n * (1 - test_fraction)))
    # never split one timestamp across two parts: a cut moves to the first row of its timestamp
    b = int(np.searchsorted(ts_sorted, ts_sorted[b], side="left")) if 0 < b < n else b
    a = int(np.searchsorted(ts_sorted, ts_sorted[a], side="left")) if 0 < a < n else a
    a = min(a, b)
    parts = [df.iloc[order[:a]], df.iloc[order[a:b]], df.iloc[order[b:]]]
    parts = [p.reset_index(drop=True) for p in parts]
    if parts[2].empty or parts[0].empty or (val_fraction > 0 and parts[1].empty):
        raise ValueError(f"the time split of {n} interactions leaves an empty part (train {len(parts[0])}, "
                         f"val {len(parts[1])}, test {len(parts[2])}): use larger fractions or more data")
    return (parts[0], parts[1], parts[2]) if val_fraction > 0 else (parts[0], parts[2])


def _timestamps(values: pd.Series) -> np.ndarray:
    """Timestamps as float seconds: numbers as they are, text/datetimes parsed; any unparsable one raises."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        ts = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        num = pd.to_numeric(values, errors="coerce")
        if num.notna().all():
            ts = num.to_numpy(dtype=np.float64)
        else:
            dt = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
            ts = (dt - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(ts))
    if len(bad):
        raise ValueError(f"{len(bad)} timestamps are missing or unparsable, e.g. row {int(bad[0])}: "
                         f"{values.iloc[int(bad[0])]!r}; fix or drop them before a time split")
    return ts


def random_split(interactions: pd.DataFrame, *, test_fraction: float = 0.2, seed: int = 0
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Interactions split uniformly at random (leaks the future: report it next to a time split)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}")
    df = interactions.reset_index(drop=True)
    is_test = np.random.default_rng(seed).random(len(df)) < test_fraction
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)


def _top(recommended: Sequence[str], k: int) -> list[str]:
    """The first ``k`` distinct items (a repeated item counts once, at its first rank)."""
    return list(dict.fromkeys(recommended))[:k]


def recall_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of ``relevant`` items found in the top ``k`` (0 when nothing is relevant)."""
    if not relevant:
        return 0.0
    return len(set(_top(recommended, k)) & relevant) / len(relevant)


def ndcg_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Binary-relevance NDCG@k."""
    gains = [1.0 / np.log2(r + 2) for r, i in enumerate(_top(recommended, k)) if i in relevant]
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(k, len(relevant))))
    return float(sum(gains) / ideal) if ideal else 0.0


def hit_rate_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """1 when any relevant item is in the top ``k``, else 0."""
    return float(bool(set(_top(recommended, k)) & relevant))


def mrr_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """Reciprocal rank of the first relevant item in the top ``k`` (0 when none)."""
    for r, i in enumerate(_top(recommended, k)):
        if i in relevant:
            return 1.0 / (r + 1)
    return 0.0


def average_precision_at_k(recommended: Sequence[str], relevant: set[str], k: int) -> float:
    """AP@k: mean of precision@r over the ranks r of relevant hits, divided by ``min(k, |relevant|)``."""
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for r, i in enumerate(_top(recommended, k)):
        if i in relevant:
            hits += 1
            total += hits / (r + 1)
    return total / min(k, len(relevant))


def intra_list_diversity(recommended: Sequence[str], vectors: Mapping[str, np.ndarray], k: int) -> float:
    """Mean pairwise cosine distance (1 - cos) between the top-``k`` items in a vector space.

    ``vectors`` maps item id -> vector (e.g. recgen's fused space); items without a vector
    are skipped; fewer than 2 vectors gives NaN.
    """
    vecs = [np.asarray(vectors[i], dtype=np.float64) for i in _top(recommended, k) if i in vectors]
    if len(vecs) < 2:
        return float("nan")
    m = np.vstack(vecs)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    m = m / np.where(norms > 0, norms, 1.0)
    sims = m @ m.T
    n = len(m)
    return float(1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))


def novelty(recommended: Sequence[str], popularity: Mapping[str, int], n_users: int, k: int) -> float:
    """Mean self-information ``-log2(p(i))`` of the top ``k``, ``p(i)`` = share of users who had item i.

    Items never seen in training count as seen by one user (the most novel).
    """
    items = _top(recommended, k)
    if not items or n_users < 1:
        return float("nan")
    return float(np.mean([-np.log2(max(popularity.get(i, 0), 1) / n_users) for i in items]))


def paired_comparison(a: Sequence[float], b: Sequence[float], *, n_boot: int = 2000, seed: int = 0,
                      ci: float = 0.95) -> dict[str, float]:
    """Paired difference ``a - b`` of per-user metrics: mean, bootstrap interval, Wilcoxon and bootstrap p.

    Returns
    -------
    dict
        ``delta``, ``ci_low``, ``ci_high``, ``p_wilcoxon`` (two-sided signed-rank; 1.0 when all
        differences are 0), ``p_bootstrap`` (two-sided, share of resampled means on the other
        side of 0, doubled).
    """
    from scipy.stats import wilcoxon

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or not len(x):
        raise ValueError(f"a and b must be 1-D, non-empty and paired (same length); got {x.shape}, {y.shape}")
    d = x - y
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - ci) / 2, (1 + ci) / 2])
    p_w = float(wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    p_b = float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean())))
    return {"delta": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi), "p_wilcoxon": p_w,
            "p_bootstrap": p_b}


def per_user_metrics(rankings: Mapping[str, Sequence[str]], test: pd.DataFrame, *, k: int = 20,
                     item_vectors: Mapping[str, np.ndarray] | None = None, train: pd.DataFrame | None = None
                     ) -> pd.DataFrame:
    """One row per test user: recall, ndcg, hit, mrr, map at ``k`` (+ diversity, novelty).

    Parameters
    ----------
    rankings : mapping user_id -> ranked item ids (seen items should already be masked)
    test : DataFrame with user_id, item_id
    k : int
    item_vectors : mapping item id -> vector, optional
        Adds ``diversity@k`` (intra-list cosine distance in that space).
    train : DataFrame, optional
        Adds ``novelty@k`` (self-information from train popularity).

    Returns
    -------
    pandas.DataFrame
        Indexed by user id (str); users without a ranking score 0 (NaN for diversity).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    truth = test.assign(user_id=test["user_id"].astype(str), item_id=test["item_id"].astype(str)) \
        .groupby("user_id")["item_id"].agg(set)
    rankings = {str(u): r for u, r in rankings.items()}   # user ids 1 and "1" are the same user
    pop, n_users = None, 0
    if train is not None:
        pop = train.assign(item_id=train["item_id"].astype(str)).drop_duplicates(["user_id", "item_id"])[
            "item_id"].value_counts().to_dict()
        n_users = int(train["user_id"].nunique())
    rows = []
    for user, relevant in truth.items():
        ranked = [str(i) for i in list(rankings.get(user, []))[:k]]
        row = {"user_id": user, f"recall@{k}": recall_at_k(ranked, relevant, k), f"ndcg@{k}": ndcg_at_k(ranked, relevant, k),
               f"hit@{k}": hit_rate_at_k(ranked, relevant, k), f"mrr@{k}": mrr_at_k(ranked, relevant, k),
               f"map@{k}": average_precision_at_k(ranked, relevant, k)}
        if item_vectors is not None:
            row[f"diversity@{k}"] = intra_list_diversity(ranked, item_vectors, k)
        if pop is not None:
            row[f"novelty@{k}"] = novelty(ranked, pop, n_users, k)
        rows.append(row)
    cols = ["user_id", f"recall@{k}", f"ndcg@{k}", f"hit@{k}", f"mrr@{k}", f"map@{k}"]
    return pd.DataFrame(rows, columns=cols + [c for c in (rows[0] if rows else {}) if c not in cols]).set_index("user_id")


def evaluate_rankings(rankings: Mapping[str, Sequence[str]], test: pd.DataFrame, *, k: int = 20,
                      n_items: int | None = None, item_vectors: Mapping[str, np.ndarray] | None = None,
                      train: pd.DataFrame | None = None) -> dict[str, float]:
    """Means of :func:`per_user_metrics` over the users of ``test`` (+ catalog coverage).

    Parameters
    ----------
    rankings : mapping user_id -> ranked item ids
    test : DataFrame with user_id, item_id
    k : int
    n_items : int, optional
        Catalog size, for coverage (share of items recommended to anyone in the top ``k``).
    item_vectors, train : optional
        See :func:`per_user_metrics`.
    """
    rankings = {str(u): r for u, r in rankings.items()}
    per = per_user_metrics(rankings, test, k=k, item_vectors=item_vectors, train=train)
    out = {c: (float(per[c].mean()) if len(per) else 0.0) for c in per.columns}
    out["users"] = len(per)
    if n_items:
        shown = {str(i) for u in per.index for i in _top(rankings.get(u, []), k)}
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
