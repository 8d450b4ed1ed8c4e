"""Re-rank any recommender's (user, item, score) output with recgen features.

Your own data (candidates and positives as CSV or Parquet, recgen saved with `recgen index`)::

    .venv/bin/python adapters/examples/rerank_generic_frame.py --recgen models/shop \\
        --train-candidates cands_val.parquet --positives clicks_val.parquet \\
        --candidates cands_today.parquet --output reranked.parquet \\
        --user-col customer --item-col sku --score-col cf_score

Without arguments it demonstrates itself on the bundled sample catalog (~1 min), with an
item-to-item co-occurrence recommender written in pandas standing in for "your model".
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from _common import fit_recgen, load, report, split

from recgen._io import atomic_path
from recgen.catalog import read_table
from recgen.interop import candidates_from_frame
from recgen_adapters.rerank import LearnedReranker


def cooccurrence_candidates(history: pd.DataFrame, users: list[str], n: int) -> pd.DataFrame:
    """Item-kNN by co-occurrence: score(u, j) = sum over u's items i of count(i, j) / count(j)^0.5."""
    h = history.assign(user_id=history["user_id"].astype(str), item_id=history["item_id"].astype(str))
    h = h.drop_duplicates(["user_id", "item_id"])[["user_id", "item_id"]]
    pairs = h.merge(h, on="user_id", suffixes=("", "_j"))
    pairs = pairs[pairs["item_id"] != pairs["item_id_j"]]
    co = pairs.groupby(["item_id", "item_id_j"]).size().rename("co").reset_index()
    pop = h["item_id"].value_counts()
    co["co"] = co["co"] / pop.reindex(co["item_id_j"]).to_numpy() ** 0.5
    mine = h[h["user_id"].isin(users)].merge(co, on="item_id")
    scores = mine.groupby(["user_id", "item_id_j"])["co"].sum().rename("score").reset_index()
    scores = scores.rename(columns={"item_id_j": "item_id"}).merge(h.assign(seen=True), how="left",
                                                                   on=["user_id", "item_id"])
    frame = scores[scores["seen"].isna()].drop(columns="seen")   # never recommend what was seen
    return candidates_from_frame(frame, k=n)


def demo(work: Path, n: int) -> None:
    catalog, store = load(None, work)
    train, val, test = split(catalog.interactions, 2)
    val_cands = cooccurrence_candidates(train, sorted(val["user_id"].astype(str).unique()), n)
    reranker = LearnedReranker(fit_recgen(catalog, train, store)).fit(val_cands, val)
    history = pd.concat([train, val], ignore_index=True)
    reranker.use_enricher(fit_recgen(catalog, history, store))
    test_cands = cooccurrence_candidates(history, sorted(test["user_id"].astype(str).unique()), n)
    reranked = reranker.rerank(test_cands)
    report(test, {"co-occurrence alone": (test_cands, "cf_rank"), "co-occurrence + recgen": (reranked, "rerank_rank")})
    store.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recgen", type=Path, help="saved recgen directory (model/ inside, or the model itself)")
    p.add_argument("--train-candidates", type=Path, help="candidates of a past window (to fit the combiner)")
    p.add_argument("--positives", type=Path, help="(user, item) rows users picked in that window")
    p.add_argument("--candidates", type=Path, help="candidates to re-rank")
    p.add_argument("--output", type=Path, help="where to write the re-ranked candidates (.csv or .parquet)")
    p.add_argument("--user-col", default="user_id")
    p.add_argument("--item-col", default="item_id")
    p.add_argument("--score-col", default="score")
    p.add_argument("--k", type=int, default=None, help="keep the top k per user")
    p.add_argument("--combiner", choices=["hgb", "logistic", "lambdarank"], default="hgb")
    p.add_argument("--work", type=Path, default=Path("rerank-example"), help="working folder of the demo")
    p.add_argument("--n", type=int, default=50, help="candidates per user in the demo")
    args = p.parse_args(argv)

    own = [args.recgen, args.train_candidates, args.positives, args.candidates, args.output]
    if not any(own):
        return demo(args.work, args.n)
    if not all(own):
        p.error("with your own data pass all of --recgen --train-candidates --positives --candidates --output")
    cols = dict(user_col=args.user_col, item_col=args.item_col, score_col=args.score_col)
    fit_c = candidates_from_frame(read_table(args.train_candidates), **cols)
    new_c = candidates_from_frame(read_table(args.candidates), **cols)
    rr = LearnedReranker(args.recgen, model=args.combiner, **cols).fit(fit_c, read_table(args.positives))
    out = rr.rerank(new_c, k=args.k)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.output) as tmp:  # a crash never leaves a half-written output
        out.to_parquet(tmp, index=False) if args.output.suffix == ".parquet" else out.to_csv(tmp, index=False)
    print(f"combiner fitted on {rr.fit_info_}; wrote {len(out)} rows to {args.output}")


if __name__ == "__main__":
    main()
