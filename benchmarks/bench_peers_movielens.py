"""Peers side by side on MovieLens-100K posters: same split, same metrics, one table.

    .venv/bin/python -m pip install -c requirements/constraints.txt -r requirements/bench-peers.txt
    .venv/bin/python benchmarks/bench_peers_movielens.py --store .cache/ml.db

Split: one global time cut (train 80% | val 10% | test 10% of the ratings). Every system is
fitted on train + val and ranks the full catalog for each test user with their train + val
items masked, except the combiner's weight, picked on val with models fitted on train only.
Systems: popularity; implicit ALS and BPR; Cornac VBPR with the posters' image vectors from
recgen's encoder; recgen content-only retrieval; ALS candidates re-ranked with recgen
(``BlendReranker``). LightFM is missing: it does not build on Python 3.11 (see
requirements/bench-peers.txt). Metrics from ``recgen.evaluation.compare.compare_rankings``:
Recall/NDCG/MRR@20 with 95% bootstrap intervals over users, paired deltas vs ALS, slices
(all, cold-start items, short histories).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from recgen import CatalogData, CatalogStore, EmbeddingCache, Recgen  # noqa: E402
from recgen.datasets import load_movielens_posters  # noqa: E402
from recgen.evaluation import global_time_split, popularity_rankings  # noqa: E402
from recgen.evaluation.compare import compare_rankings  # noqa: E402
from recgen import Enricher  # noqa: E402
from recgen.interop import implicit_candidates  # noqa: E402
from recgen_adapters.rerank import BlendReranker  # noqa: E402

K = 20


def implicit_lists(model, history, users, items, n):
    return implicit_candidates(model, history, users, items, n=n)


def to_lists(cands: pd.DataFrame, rank_col: str, k: int = K) -> dict[str, list[str]]:
    c = cands.sort_values(["user_id", rank_col])
    return {u: g["item_id"].tolist()[:k] for u, g in c.groupby("user_id", sort=False)}


def vbpr_lists(history, users, items, image_vecs, args):
    import cornac
    from cornac.data import ImageModality

    triples = list(zip(history["user_id"], history["item_id"], np.ones(len(history))))
    feats = {i: v for i, v in zip(items, image_vecs)}
    train_items = pd.unique(history["item_id"])
    modality = ImageModality(features=np.stack([feats[i] for i in train_items]), ids=list(train_items),
                             normalized=True)
    ds = cornac.data.Dataset.from_uir(triples, seed=args.seed)
    modality.build(id_map=ds.iid_map)
    ds.add_modalities(item_image=modality)
    model = cornac.models.VBPR(k=10, k2=10, n_epochs=args.vbpr_epochs, batch_size=100, learning_rate=0.005,
                               lambda_w=1.0, lambda_b=0.01, lambda_e=0.0, verbose=False, seed=args.seed)
    model.fit(ds)
    inv_items = {v: k for k, v in ds.iid_map.items()}
    seen = history.groupby("user_id")["item_id"].agg(set)
    out = {}
    for u in users:
        if u not in ds.uid_map:
            continue
        s = model.score(ds.uid_map[u])
        order = np.argsort(-s)
        lst = [inv_items[j] for j in order[: K + len(seen.get(u, ()))] if inv_items[j] not in seen.get(u, ())]
        out[u] = lst[:K]
    return out


def main() -> None:
    import implicit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-posters"))
    ap.add_argument("--store", help="SQLite file reused as the embedding cache across runs")
    ap.add_argument("--vbpr-epochs", type=int, default=20)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    store = CatalogStore(args.store or Path(tempfile.mkdtemp()) / "store.db")
    store.ingest(load_movielens_posters(args.data))
    catalog = store.catalog(name="movielens")
    cache = EmbeddingCache(store.engine)
    inter = catalog.interactions.assign(user_id=lambda d: d["user_id"].astype(str), item_id=lambda d: d["item_id"].astype(str))
    items = catalog.items["item_id"].astype(str).to_numpy()
    train, val, test = global_time_split(inter, test_fraction=0.1, val_fraction=0.1)
    history = pd.concat([train, val], ignore_index=True)
    users = sorted(set(test["user_id"]) & set(history["user_id"]))
    test = test[test["user_id"].isin(users)]

    def fit_recgen(h):
        return Recgen().fit(CatalogData(items=catalog.items, reviews=catalog.reviews, interactions=h, name="ml"),
                            cache=cache)

    timings, lists = {}, {}
    t = time.perf_counter()
    lists["popularity"] = popularity_rankings(history, users, K)
    timings["popularity"] = time.perf_counter() - t
    t = time.perf_counter()
    als = lambda: implicit.cpu.als.AlternatingLeastSquares(factors=64, regularization=0.05, iterations=15,  # noqa: E731
                                                            random_state=args.seed)
    als_c = implicit_lists(als(), history, users, items, 100)
    lists["implicit ALS"] = to_lists(als_c, "cf_rank")
    timings["implicit ALS"] = time.perf_counter() - t
    t = time.perf_counter()
    bpr = implicit.cpu.bpr.BayesianPersonalizedRanking(factors=64, iterations=100, random_state=args.seed,
                                                       num_threads=1)  # multithreaded BPR is not reproducible
    lists["implicit BPR"] = to_lists(implicit_lists(bpr, history, users, items, K), "cf_rank")
    timings["implicit BPR"] = time.perf_counter() - t
    t = time.perf_counter()
    model = fit_recgen(history)
    timings["recgen fit (train+val)"] = time.perf_counter() - t
    t = time.perf_counter()
    ids, _ = model.recommend_batch(users, k=K)
    lists["recgen content-only"] = {u: [i for i in row if i] for u, row in zip(users, ids)}
    timings["recgen content-only"] = time.perf_counter() - t
    t = time.perf_counter()
    val_users = sorted(set(val["user_id"]) & set(train["user_id"]))
    blend = BlendReranker(Enricher(fit_recgen(train)), k=K).fit(implicit_lists(als(), train, val_users, items, 100), val)
    blend.use_enricher(Enricher(model))
    lists[f"ALS + recgen (blend, w={blend.weight_:g})"] = to_lists(blend.rerank(als_c), "rerank_rank")
    timings["ALS + recgen"] = time.perf_counter() - t
    try:
        t = time.perf_counter()
        img = model.items.vectors["image"]
        lists["Cornac VBPR (recgen image vectors)"] = vbpr_lists(history, users, items, img, args)
        timings["Cornac VBPR"] = time.perf_counter() - t
    except ImportError:
        print("(Cornac not installed: pip install -r requirements/bench-peers.txt; VBPR skipped)")

    vecs = dict(zip(model.items.ids, model.items.vectors["fused"]))
    table = compare_rankings(lists, test, train=history, baseline="implicit ALS", k=K, metrics=("recall", "ndcg", "mrr"),
                             item_vectors=vecs, n_items=len(items), n_boot=args.boot, seed=args.seed)
    print(f"# Peers on MovieLens-100K posters (global time split; {len(users)} test users, "
          f"{len(test)} test ratings, {len(set(test['item_id']) - set(history['item_id']))} test items never seen before)\n")
    for slice_name, part in table.groupby("slice", sort=False):
        print(f"### {slice_name} ({int(part['users'].iloc[0])} users)\n")
        print(f"| system | NDCG@{K} [95% CI] | Recall@{K} [95% CI] | MRR@{K} | ΔNDCG@{K} vs ALS [CI], p | coverage | diversity |")
        print("|---|---|---|---|---|---|---|")
        for _, r in part.iterrows():
            lo, hi = r[f"ndcg@{K} ci"]
            rl, rh = r[f"recall@{K} ci"]
            d = "—" if pd.isna(r.get(f"Δndcg@{K}")) else (
                f"{r[f'Δndcg@{K}']:+.4f} [{r[f'Δndcg@{K} ci'][0]:+.4f}, {r[f'Δndcg@{K} ci'][1]:+.4f}], p={r[f'p ndcg@{K}']:.2g}")
            print(f"| {r['variant']} | {r[f'ndcg@{K}']:.4f} [{lo:.4f}, {hi:.4f}] | {r[f'recall@{K}']:.4f} "
                  f"[{rl:.4f}, {rh:.4f}] | {r[f'mrr@{K}']:.4f} | {d} | {r[f'coverage@{K}']:.3f} | "
                  f"{r[f'diversity@{K}']:.3f} |")
        print()
    print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    print(f"total {time.perf_counter() - t0:.0f} s; command: {' '.join(sys.argv)}")
    store.close()


if __name__ == "__main__":
    main()
