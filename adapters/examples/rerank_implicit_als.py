"""Re-rank `implicit` ALS (or BPR) candidates with recgen features and a learned combiner.

    .venv/bin/python adapters/examples/rerank_implicit_als.py                       # sample catalog, ~1 min
    .venv/bin/python adapters/examples/rerank_implicit_als.py --model bpr
    .venv/bin/python adapters/examples/rerank_implicit_als.py \\
        --movielens ../shared/data/movielens-posters --work /tmp/rr-ml              # MovieLens posters, ~5 min

Protocol (per-user time split): ALS and recgen are fitted on `train`; ALS proposes
candidates for each user; the combiner learns from which of them the user picked in `val`.
For the test, ALS and recgen are refitted on train + val and their candidates re-ranked.
Needs `pip install 'recgen[cf]'` (implicit). benchmarks/bench_rerank_movielens.py runs the
measured version (global time split, bootstrap intervals).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from _common import fit_recgen, load, report, split

from recgen.interop import implicit_candidates, implicit_model
from recgen_adapters.rerank import LearnedReranker


def cf_candidates(interactions: pd.DataFrame, users: list[str], items: np.ndarray, *, model: str, n: int,
                  seed: int) -> pd.DataFrame:
    """Fit implicit's ALS/BPR on ``interactions`` and return its top-``n`` unseen items per user."""
    cands = implicit_candidates(implicit_model(model, seed=seed), interactions.astype({"user_id": str, "item_id": str}),
                                users, items, n=n)
    if cands.empty:
        raise SystemExit("none of the users to rank has a history the CF model was fitted on")
    return cands


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--movielens", help="movielens-posters folder (default: the bundled sample catalog)")
    p.add_argument("--work", type=Path, default=Path("rerank-example"), help="working folder (store, sample)")
    p.add_argument("--model", choices=["als", "bpr"], default="als")
    p.add_argument("--combiner", choices=["hgb", "logistic", "lambdarank"], default="hgb")
    p.add_argument("--candidates", type=int, default=50, help="CF candidates per user")
    p.add_argument("--holdout", type=int, default=2, help="interactions per user in val and in test")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    catalog, store = load(args.movielens, args.work)
    items = catalog.items["item_id"].astype(str).to_numpy()
    train, val, test = split(catalog.interactions, args.holdout)

    # 1. fit on train, learn the combiner from what val users picked among the candidates
    val_users = sorted(val["user_id"].astype(str).unique())
    val_cands = cf_candidates(train, val_users, items, model=args.model, n=args.candidates, seed=args.seed)
    reranker = LearnedReranker(fit_recgen(catalog, train, store), model=args.combiner).fit(val_cands, val)
    print(f"combiner fitted on {reranker.fit_info_}")

    # 2. refit both on train + val and re-rank the test candidates
    history = pd.concat([train, val], ignore_index=True)
    reranker.use_enricher(fit_recgen(catalog, history, store))
    test_users = sorted(test["user_id"].astype(str).unique())
    test_cands = cf_candidates(history, test_users, items, model=args.model, n=args.candidates, seed=args.seed)
    reranked = reranker.rerank(test_cands)
    report(test, {f"{args.model} alone": (test_cands, "cf_rank"),
                  f"{args.model} + recgen ({args.combiner})": (reranked, "rerank_rank")})
    print(reranked.head(10).to_string(index=False))
    store.close()


if __name__ == "__main__":
    main()
