"""Shared steps of the re-ranking examples: data, time split, fitting recgen, evaluation."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from recgen import CatalogData, CatalogStore, EmbeddingCache, Recgen  # noqa: E402
from recgen.evaluation.ranking import leave_last_n_split, ndcg_at_k, recall_at_k  # noqa: E402
from recgen import Enricher  # noqa: E402


def load(movielens: str | None, workdir: Path) -> tuple[CatalogData, CatalogStore]:
    """The bundled sample catalog (default) or MovieLens posters, ingested into a store (embedding cache)."""
    from recgen.datasets import load_movielens_posters
    from recgen.datasets import make_sample_catalog

    workdir.mkdir(parents=True, exist_ok=True)
    data = load_movielens_posters(movielens) if movielens else make_sample_catalog(workdir / "sample", seed=0)
    store = CatalogStore(workdir / "store.db")
    store.ingest(data)
    return store.catalog(), store


def split(interactions: pd.DataFrame, n: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per-user time split: train | the next ``n`` (validation, fits the combiner) | the last ``n`` (test)."""
    rest, test = leave_last_n_split(interactions, n=n)
    train, val = leave_last_n_split(rest, n=n)
    return train, val, test


def fit_recgen(catalog: CatalogData, interactions: pd.DataFrame, store: CatalogStore) -> Enricher:
    """recgen fitted on ``interactions`` only (profiles must not see the period being ranked)."""
    part = CatalogData(items=catalog.items, reviews=catalog.reviews, interactions=interactions, name="train")
    return Enricher(Recgen().fit(part, cache=EmbeddingCache(store.engine)))


def report(test: pd.DataFrame, ranked: dict[str, pd.DataFrame], k: int = 10) -> None:
    """Mean NDCG@k and Recall@k of each ranking (``rank_col`` per frame) over the test users."""
    truth = test.assign(user_id=test["user_id"].astype(str), item_id=test["item_id"].astype(str)) \
        .groupby("user_id")["item_id"].agg(set)
    print(f"{'ranking':<28} NDCG@{k:<4} Recall@{k:<4} users")
    for name, (frame, rank_col) in ranked.items():
        lists = {u: g.sort_values(rank_col)["item_id"].tolist() for u, g in frame.groupby("user_id")}
        nd = [ndcg_at_k(lists.get(u, []), rel, k) for u, rel in truth.items()]
        rc = [recall_at_k(lists.get(u, []), rel, k) for u, rel in truth.items()]
        print(f"{name:<28} {np.mean(nd):.4f}    {np.mean(rc):.4f}     {len(truth)}")
