"""Cross-modal alignment: held-out item images retrieving their own text, vs chance and an
untrained (random) projection, measured in one run.

    .venv/bin/python benchmarks/bench_alignment.py --dataset sample
    .venv/bin/python benchmarks/bench_alignment.py --dataset movielens --path ../shared/data/movielens-posters
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from recgen.catalog import CatalogStore
from recgen.datasets import load_movielens_posters, make_sample_catalog
from recgen.encoders import EmbeddingCache, MultimodalSpace
from recgen.evaluation import held_out_alignment


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=["sample", "movielens"], default="sample")
    ap.add_argument("--path", type=Path, help="movielens-posters folder")
    ap.add_argument("--held-out", type=float, default=0.2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cache", type=Path, help="SQLite embedding cache (default: a temp file)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="recgen-bench-align-"))
    data = make_sample_catalog(tmp / "sample") if args.dataset == "sample" else load_movielens_posters(args.path)
    store = CatalogStore(tmp / "store.db")
    store.ingest(data)
    catalog = store.catalog(name=data.name)
    cache = EmbeddingCache(args.cache or store.engine)
    base = MultimodalSpace()
    print(f"dataset={data.name} items={len(catalog.items)} held_out={args.held_out}")
    print(f"{'seed':>4} {'projection':>10} {'queries':>7} {'texts':>6} {'top1':>6} {'top10':>6} {'chance@10':>9} {'secs':>6}")
    for seed in args.seeds:
        for label, rand in (("trained", False), ("random", True)):
            t = time.perf_counter()
            r = held_out_alignment(base.sibling(), catalog, held_out_fraction=args.held_out, seed=seed,
                                   cache=cache, random_projection=rand)
            print(f"{seed:>4} {label:>10} {r.n_queries:>7} {r.n_candidates:>6} {r.top1:>6.3f} {r.top10:>6.3f} "
                  f"{r.chance_top10:>9.4f} {time.perf_counter() - t:>6.1f}")


if __name__ == "__main__":
    main()
