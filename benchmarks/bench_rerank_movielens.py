"""ALS candidates re-ranked with recgen features vs ALS alone, on MovieLens-100K posters.

    .venv/bin/python benchmarks/bench_rerank_movielens.py --store .cache/ml.db     # ~5-10 min, 2 cores

Protocol (global time split, so no model sees the future):

* interactions sorted by time; the first 80% are ``train``, the next 10% ``val``, the last
  10% ``test`` (``--cuts``). Every rating counts as an interaction (implicit feedback).
* ``implicit`` ALS and recgen are fitted on ``train``; ALS proposes its top ``--candidates``
  unseen items to each val user; the combiner learns which of them the user rated in ``val``.
* ALS and recgen are refitted on ``train + val``; the test users' ALS candidates are ranked
  by (a) ALS alone, (b) recgen's fused similarity alone, (c) a combiner on CF features only
  (the ablation: is the gain recgen's, or just re-calibrated CF scores?), (d) CF + recgen
  through HistGradientBoosting, (e) LightGBM lambdarank, (f) logistic regression, (g) a one-weight
  blend ``cf_z + w * z(sim_fused)`` with ``w`` picked on val (BlendReranker).
* Metrics per test user (users with history before the test window): NDCG@10, Recall@20;
  means with 95% percentile-bootstrap intervals over users; differences to ALS alone paired
  per user (bootstrap interval + Wilcoxon signed-rank p).

Prints Markdown tables for benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice; ALS has its own threads

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import wilcoxon  # noqa: E402

from recgen import CatalogData, CatalogStore, EmbeddingCache, Recgen  # noqa: E402
from recgen.datasets import load_movielens_posters  # noqa: E402
from recgen.evaluation.generation import bootstrap_ci  # noqa: E402
from recgen.evaluation.ranking import ndcg_at_k, recall_at_k  # noqa: E402
from recgen import Enricher  # noqa: E402
from recgen.interop import implicit_candidates, implicit_model  # noqa: E402
from recgen_adapters.rerank import BlendReranker, LearnedReranker  # noqa: E402


def global_time_split(inter: pd.DataFrame, cuts: tuple[float, float]):
    order = inter.assign(_row=np.arange(len(inter))).sort_values(["timestamp", "_row"], kind="stable")
    n = len(order)
    a, b = int(n * cuts[0]), int(n * cuts[1])
    parts = order.iloc[:a], order.iloc[a:b], order.iloc[b:]
    t = [pd.to_datetime(p["timestamp"].agg(["min", "max"]), unit="s").dt.date.tolist() for p in parts]
    return [p.drop(columns="_row").reset_index(drop=True) for p in parts], t


def als_candidates(history: pd.DataFrame, users, items: np.ndarray, n: int, args) -> pd.DataFrame:
    weighting = None
    if args.bm25:
        from implicit.nearest_neighbours import bm25_weight

        weighting = lambda ui: bm25_weight(ui, K1=100, B=0.8)  # noqa: E731
    als = implicit_model("als", seed=args.seed, factors=args.factors, regularization=args.reg,
                         iterations=args.iters, alpha=args.alpha)
    return implicit_candidates(als, history, users, items, n=n, weighting=weighting)


def fit_recgen(catalog: CatalogData, interactions: pd.DataFrame, cache: EmbeddingCache) -> Enricher:
    part = CatalogData(items=catalog.items, reviews=catalog.reviews, interactions=interactions, name="movielens")
    return Enricher(Recgen().fit(part, cache=cache))


def by_score(frame: pd.DataFrame, score: np.ndarray) -> pd.DataFrame:
    """``frame`` with ``r`` = rank of ``score`` within each user (1 = highest)."""
    out = frame.assign(_s=score)
    return out.assign(r=out.groupby("user_id")["_s"].rank(method="first", ascending=False))


def per_user(frame: pd.DataFrame, rank_col: str, truth: pd.Series) -> dict[str, np.ndarray]:
    lists = {u: g.sort_values(rank_col, kind="stable")["item_id"].tolist() for u, g in frame.groupby("user_id")}
    users = truth.index
    return {"ndcg@10": np.array([ndcg_at_k(lists.get(u, []), truth[u], 10) for u in users]),
            "recall@20": np.array([recall_at_k(lists.get(u, []), truth[u], 20) for u in users])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-posters"))
    ap.add_argument("--store", help="SQLite file reused as the embedding cache across runs")
    ap.add_argument("--cuts", type=float, nargs=2, default=(0.8, 0.9))
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--reg", type=float, default=0.05)
    ap.add_argument("--iters", type=int, default=15)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--bm25", action="store_true", help="BM25-weight the ALS input (often better on MovieLens)")
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not Path(args.data).is_dir():
        sys.exit(f"movielens-posters not found at {args.data}; pass --data")
    try:
        import implicit  # noqa: F401
    except ImportError:
        sys.exit("needs implicit: pip install 'recgen[cf]'")

    t0 = time.perf_counter()
    store = CatalogStore(args.store or Path(tempfile.mkdtemp()) / "store.db")
    store.ingest(load_movielens_posters(args.data))
    catalog = store.catalog(name="movielens")
    cache = EmbeddingCache(store.engine)
    inter = catalog.interactions.assign(user_id=lambda d: d["user_id"].astype(str),
                                        item_id=lambda d: d["item_id"].astype(str))
    items = catalog.items["item_id"].astype(str).to_numpy()
    (train, val, test), spans = global_time_split(inter, tuple(args.cuts))
    history = pd.concat([train, val], ignore_index=True)

    val_users = sorted(set(val["user_id"]) & set(train["user_id"]))
    test_users = sorted(set(test["user_id"]) & set(history["user_id"]))
    truth = test[test["user_id"].isin(test_users)].groupby("user_id")["item_id"].agg(set)
    new_items = set(test["item_id"]) - set(history["item_id"])

    print("# ALS + recgen re-ranking on MovieLens-100K posters\n")
    print(f"split (global time): train {len(train)} ({spans[0][0]}..{spans[0][1]}), val {len(val)} "
          f"({spans[1][0]}..{spans[1][1]}), test {len(test)} ({spans[2][0]}..{spans[2][1]}); "
          f"val users {len(val_users)}, test users {len(truth)}; test items never seen before the test window: "
          f"{len(new_items)} (ALS cannot propose them)\n")

    tf = time.perf_counter()
    val_c = als_candidates(train, val_users, items, args.candidates, args)
    enr_train = fit_recgen(catalog, train, cache)
    t_fit1 = time.perf_counter() - tf
    hgb = LearnedReranker(enr_train, model="hgb", random_state=args.seed).fit(val_c, val)
    lam = LearnedReranker(enr_train, model="lambdarank", random_state=args.seed).fit(val_c, val)
    logi = LearnedReranker(enr_train, model="logistic", random_state=args.seed).fit(val_c, val)
    blend = BlendReranker(enr_train).fit(val_c, val)
    # ablation: the same HGB on the CF features only (no recgen)
    from sklearn.ensemble import HistGradientBoostingClassifier

    cf_cols = ["score", "cf_rank", "cf_gap", "cf_z"]
    Xv = hgb._inputs(val_c)
    pos = set(zip(val["user_id"], val["item_id"]))
    yv = np.array([(u, i) in pos for u, i in zip(Xv["user_id"], Xv["item_id"])], dtype=int)
    cf_only = HistGradientBoostingClassifier(**hgb.pipeline_.named_steps["model"].get_params()).fit(Xv[cf_cols], yv)

    tf = time.perf_counter()
    enr_all = fit_recgen(catalog, history, cache)
    test_c = als_candidates(history, test_users, items, args.candidates, args)
    t_fit2 = time.perf_counter() - tf
    hgb.use_enricher(enr_all)
    lam.use_enricher(enr_all)
    logi.use_enricher(enr_all)
    blend.use_enricher(enr_all)
    ranked = {"ALS alone": (test_c, "cf_rank")}
    sim = enr_all.enrich(test_c)["recgen_sim_fused"].fillna(-2.0).to_numpy()
    ranked["recgen fused similarity alone (over ALS candidates)"] = (by_score(test_c, sim), "r")
    Xt = hgb._inputs(test_c)
    ranked["ALS + learned combiner, CF features only (ablation)"] = (
        by_score(test_c, cf_only.predict_proba(Xt[cf_cols])[:, 1]), "r")
    ranked["ALS + recgen, HistGradientBoosting"] = (hgb.rerank(test_c), "rerank_rank")
    ranked["ALS + recgen, LightGBM lambdarank"] = (lam.rerank(test_c), "rerank_rank")
    ranked["ALS + recgen, logistic regression"] = (logi.rerank(test_c), "rerank_rank")
    ranked[f"ALS + recgen, blend (weight {blend.weight_:g} picked on val)"] = (blend.rerank(test_c), "rerank_rank")

    ceiling = np.mean([len(set(g["item_id"]) & truth[u]) / len(truth[u])
                       for u, g in test_c.groupby("user_id") if u in truth.index])
    print(f"combiner fitted on {hgb.fit_info_}; ALS candidate recall@{args.candidates} (the ceiling of any "
          f"re-ranking): {ceiling:.4f}; fit times: train models {t_fit1:.0f} s, train+val models {t_fit2:.0f} s\n")

    base = per_user(*ranked["ALS alone"], truth)
    print("| ranking | NDCG@10 [95% CI] | Recall@20 [95% CI] | ΔNDCG@10 vs ALS [95% CI], Wilcoxon p | "
          "ΔRecall@20 vs ALS [95% CI], p |")
    print("|---|---|---|---|---|")
    for name, (frame, col) in ranked.items():
        m = per_user(frame, col, truth)
        cells = []
        for key in ("ndcg@10", "recall@20"):
            lo, hi = bootstrap_ci(m[key], n_boot=args.boot, seed=args.seed)
            cells.append(f"{m[key].mean():.4f} [{lo:.4f}, {hi:.4f}]")
        for key in ("ndcg@10", "recall@20"):
            d = m[key] - base[key]
            if not d.any():
                cells.append("—")
                continue
            lo, hi = bootstrap_ci(d, n_boot=args.boot, seed=args.seed)
            p = wilcoxon(m[key], base[key], zero_method="wilcox").pvalue
            cells.append(f"{d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}], p={p:.2g}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("\nblend: val NDCG@10 per weight: " + ", ".join(f"{w:g}: {v:.4f}" for w, v in blend.scores_.items()))
    imp = hgb.feature_importance(test_c, test)
    print("\npermutation importance of the HGB combiner on the test candidates (drop in ROC AUC): "
          + ", ".join(f"{k} {v:+.4f}" for k, v in imp.items()))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; command: {' '.join(sys.argv)}")
    store.close()


if __name__ == "__main__":
    main()
