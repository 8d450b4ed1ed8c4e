"""Benchmark: recgen ``ItemIndex`` vs raw FAISS, and approximate (IVF) vs exact search.

Standalone script (never imported by tests). Every speed figure is a ratio against a
reference measured in the same run, alternating the two sides to share the machine's noise:

1. Overhead: ``ItemIndex`` vs a raw FAISS index of the same factory string on the same
   random unit vectors (same ``nprobe`` for IVF): build/add, batch search, single-query
   p50 latency. ``overhead = recgen_time / raw_time``.
2. Approximate vs exact on clustered data (Gaussian mixture, like real embeddings):
   ``ItemIndex(factory="auto")`` (IVF at >= 20k vectors) vs ``factory="Flat"``: recall@k of
   the approximate ids against the exact ones, and the search speed-up. Plus an nprobe sweep.

Run::

    .venv/bin/python benchmarks/bench_index.py                 # n=100000, dim=384, 1000 queries, k=10
    .venv/bin/python benchmarks/bench_index.py --n 20000 --queries 200   # quick
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np


def _faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover
        raise SystemExit("faiss is missing: pip install 'recgen[cpu]'   (or: pip install faiss-cpu)") from exc
    return faiss


def unit_random(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x)


def gaussian_mixture(n: int, dim: int, n_clusters: int, spread: float, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors drawn around ``n_clusters`` random unit centres of Zipf-like sizes.

    ``spread`` is the expected norm of the noise added to a centre before normalizing
    (1.0 gives a cosine of ~0.7 to the own centre and ~0.5 between members of a cluster).
    """
    centres = unit_random(n_clusters, dim, rng)
    weights = 1.0 / np.arange(1, n_clusters + 1) ** 0.7
    weights /= weights.sum()
    labels = rng.choice(n_clusters, size=n, p=weights)
    x = centres[labels] + rng.standard_normal((n, dim), dtype=np.float32) * np.float32(spread / np.sqrt(dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def alternate(fns: dict[str, callable], rounds: int) -> dict[str, float]:
    """Median seconds of each callable, run alternately ``rounds`` times (order flipped each round)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(timed(fns[name])[0])
    return {k: statistics.median(v) for k, v in times.items()}


def p50_latency(fns: dict[str, callable], queries: np.ndarray) -> dict[str, float]:
    """Median single-query latency of each callable(q), interleaved query by query."""
    lat: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for i, q in enumerate(queries):
        for name in (names if i % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            fns[name](q)
            lat[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in lat.items()}


def raw_index(factory: str, x: np.ndarray, nprobe: int | None):
    faiss = _faiss()
    index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(x)
    index.add(x)
    if nprobe is not None:
        faiss.extract_index_ivf(index).nprobe = nprobe
    return index


def ivf_nprobe(item_index) -> int | None:
    """nprobe the recgen index uses (None for non-IVF); read from the FAISS index it built."""
    faiss = _faiss()
    try:
        return int(faiss.extract_index_ivf(item_index._index).nprobe)
    except RuntimeError:
        return None


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n## {title}\n")
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def bench_overhead(args, ids: list[str], x: np.ndarray, q: np.ndarray) -> None:
    from recgen.index.item_index import ItemIndex

    rows_build, rows_search, rows_lat = [], [], []
    for factory in ["Flat", args.ivf]:
        trained = factory != "Flat"
        build_rounds = args.build_repeats if trained else args.repeats
        # build/add: alternate raw and recgen; training (IVF) is inside both timings
        built: dict[str, object] = {}
        bt: dict[str, list[float]] = {"raw": [], "recgen": []}
        nprobe = None
        for r in range(build_rounds):
            order = ["raw", "recgen"] if r % 2 == 0 else ["recgen", "raw"]
            for side in order:
                if side == "recgen":
                    t, idx = timed(lambda: ItemIndex.build(ids, x, factory=factory))
                    nprobe = ivf_nprobe(idx)
                else:
                    t, idx = timed(lambda: raw_index(factory, x, None))
                bt[side].append(t)
                built[side] = idx
        raw, rec = built["raw"], built["recgen"]
        if nprobe is not None:  # search the raw index with the nprobe ItemIndex picked
            _faiss().extract_index_ivf(raw).nprobe = nprobe
        b = {k: statistics.median(v) for k, v in bt.items()}
        rows_build.append([factory, build_rounds, ms(b["raw"]), ms(b["recgen"]), f"{b['recgen'] / b['raw']:.3f}"])

        # results must agree before speed means anything
        _, labels = raw.search(q, args.k)
        rec_ids, _ = rec.search_batch(q, k=args.k)
        same = float(np.mean(np.array(ids, dtype=object)[labels] == rec_ids))

        s = alternate({"raw": lambda: raw.search(q, args.k), "recgen": lambda: rec.search_batch(q, k=args.k)},
                      args.repeats)
        rows_search.append([factory, "-" if nprobe is None else nprobe, len(q), ms(s["raw"]), ms(s["recgen"]),
                            f"{s['recgen'] / s['raw']:.3f}", f"{same:.4f}"])

        lq = q[: args.latency_queries]
        lat = p50_latency({"raw": lambda v: raw.search(v[None, :], args.k), "recgen": lambda v: rec.search(v, args.k)},
                          lq)
        rows_lat.append([factory, len(lq), f"{lat['raw'] * 1e3:.3f}", f"{lat['recgen'] * 1e3:.3f}",
                         f"{lat['recgen'] / lat['raw']:.3f}", f"{(lat['recgen'] - lat['raw']) * 1e3:+.3f}"])
        del built, raw, rec

    table(f"ItemIndex vs raw faiss: build (train + add), n={len(x)}, dim={x.shape[1]}, uniform unit vectors",
          ["factory", "rounds", "raw ms", "recgen ms", "overhead (recgen/raw)"], rows_build)
    table(f"ItemIndex.search_batch vs raw index.search, k={args.k} (median of {args.repeats})",
          ["factory", "nprobe", "queries", "raw ms", "recgen ms", "overhead (recgen/raw)", "same ids"], rows_search)
    table(f"single-query latency: ItemIndex.search(q) vs raw index.search(q[None]) (p50, k={args.k})",
          ["factory", "queries", "raw p50 ms", "recgen p50 ms", "overhead (recgen/raw)", "added ms"], rows_lat)


def bench_approx(args, rng: np.random.Generator) -> None:
    from recgen.index.item_index import ItemIndex, auto_factory

    data = gaussian_mixture(args.n + args.queries, args.dim, args.clusters, args.spread, rng)
    x, q = data[: args.n], data[args.n:]  # queries: held-out draws from the same mixture
    ids = [f"item{i:07d}" for i in range(args.n)]

    t_exact, exact = timed(lambda: ItemIndex.build(ids, x, factory="Flat"))
    t_approx, approx = timed(lambda: ItemIndex.build(ids, x, factory="auto"))
    nprobe = ivf_nprobe(approx)

    ex_ids, _ = exact.search_batch(q, k=args.k)
    ap_ids, _ = approx.search_batch(q, k=args.k)
    recall = float(np.mean([len(set(a) & set(e)) / args.k for a, e in zip(ap_ids, ex_ids)]))

    s = alternate({"exact": lambda: exact.search_batch(q, k=args.k),
                   "approx": lambda: approx.search_batch(q, k=args.k)}, args.repeats)
    lq = q[: args.latency_queries]
    lat = p50_latency({"exact": lambda v: exact.search(v, args.k), "approx": lambda v: approx.search(v, args.k)}, lq)

    table(f"approximate (factory='auto') vs exact ('Flat'): clustered data, n={args.n}, dim={args.dim}, "
          f"{args.clusters} Gaussian clusters (spread {args.spread}), {len(q)} held-out queries",
          ["index", "resolved factory", "nprobe", "build s", "batch search ms", "single p50 ms",
           f"recall@{args.k}", "search speed-up vs exact"],
          [["exact", exact.resolved_factory, "-", f"{t_exact:.2f}", ms(s["exact"]), f"{lat['exact'] * 1e3:.3f}",
            "1.0000", "1.00x"],
           ["approx", approx.resolved_factory, nprobe, f"{t_approx:.2f}", ms(s["approx"]),
            f"{lat['approx'] * 1e3:.3f}", f"{recall:.4f}",
            f"{s['exact'] / s['approx']:.2f}x batch, {lat['exact'] / lat['approx']:.2f}x single"]])
    assert approx.resolved_factory == auto_factory(args.n)

    if args.nprobe_sweep and nprobe is not None:
        # benchmark-only: change nprobe on the built IVF index in place (ItemIndex takes nprobe= at build)
        ivf = _faiss().extract_index_ivf(approx._index)
        rows = []
        for p in [int(v) for v in args.nprobe_sweep.split(",")]:
            ivf.nprobe = p
            ids_p, _ = approx.search_batch(q, k=args.k)
            rec_p = float(np.mean([len(set(a) & set(e)) / args.k for a, e in zip(ids_p, ex_ids)]))
            sp = alternate({"exact": lambda: exact.search_batch(q, k=args.k),
                            "approx": lambda: approx.search_batch(q, k=args.k)}, args.repeats)
            rows.append([p, f"{rec_p:.4f}", ms(sp["approx"]), ms(sp["exact"]), f"{sp['exact'] / sp['approx']:.2f}x",
                         "<- recgen default" if p == nprobe else ""])
        ivf.nprobe = nprobe
        table(f"nprobe sweep on {approx.resolved_factory} (same data; batch of {len(q)} queries)",
              ["nprobe", f"recall@{args.k}", "approx ms", "exact ms", "speed-up", ""], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="vectors in the index (default 100000)")
    ap.add_argument("--dim", type=int, default=384, help="vector dimension (default 384, all-MiniLM-L6-v2)")
    ap.add_argument("--queries", type=int, default=1000, help="queries per batch search (default 1000)")
    ap.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ivf", default="IVF1024,Flat", help="IVF factory for the overhead comparison")
    ap.add_argument("--repeats", type=int, default=5, help="alternating rounds per timing, median taken (default 5)")
    ap.add_argument("--build-repeats", type=int, default=1, help="rounds for IVF builds (training is slow; default 1)")
    ap.add_argument("--latency-queries", type=int, default=300, help="queries in the single-query loops")
    ap.add_argument("--clusters", type=int, default=500, help="Gaussian mixture components (default 500)")
    ap.add_argument("--spread", type=float, default=1.0, help="noise norm around each centre (default 1.0)")
    ap.add_argument("--nprobe-sweep", default="8,16,32,64,128", help="comma list; empty to skip")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--skip-approx", action="store_true")
    args = ap.parse_args()

    faiss = _faiss()
    print(f"# bench_index: faiss {faiss.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, faiss OpenMP threads {faiss.omp_get_max_threads()}")
    print(f"# args: {vars(args)}")
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    if not args.skip_overhead:
        x = unit_random(args.n, args.dim, rng)
        q = unit_random(args.queries, args.dim, rng)
        ids = [f"item{i:07d}" for i in range(args.n)]
        bench_overhead(args, ids, x, q)
        del x, q, ids
    if not args.skip_approx:
        bench_approx(args, rng)
    print(f"\n# total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
