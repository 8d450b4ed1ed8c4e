"""Enrichment throughput (vectorized vs per-row loops) and HTTP /enrich latency under load.

    .venv/bin/python benchmarks/bench_enrich.py                      # ~3 min on 2 cores
    .venv/bin/python benchmarks/bench_enrich.py --skip-http --rows 200000

Part 1, features only, one process: ``Enricher.enrich`` on ``--rows`` candidates (1M by
default; random users x items of the fitted sample catalog, 1% unknown ids) against two
references measured in the same run on a sample of the same rows:

* ``per-row enrich call``: ``Enricher.enrich`` on a one-row frame per candidate (what a naive
  integration calling the API inside a row loop does);
* ``hand-written numpy loop``: per row, dictionary look-ups of the user and item rows and one
  ``np.dot`` per modality (the fastest plausible row-at-a-time code).

The sides alternate in rounds so they share the machine's noise; the loops run on a sample
(``--loop-rows``) and are reported as candidates/s like the vectorized side.

Part 1b: the same on a large synthetic catalog (50k items x 20k users, random unit vectors,
profiles fitted by ``UserProfiles`` on random histories), where almost every candidate pair is
distinct: the sample catalog has only 28,800 distinct pairs, which ``enrich`` computes once each.

Part 2, HTTP: a real ``recgen serve`` process (one uvicorn worker) on loopback; ``--clients``
concurrent clients (httpx, asyncio) each send ``/enrich`` requests of ``--batch`` candidates,
until ``--requests`` requests or ``--seconds`` seconds, whichever comes first. Reports
p50/p99 latency, requests/s, candidates/s and errors; reference: the same 50-candidate
``Enricher.enrich`` call in-process (the HTTP + JSON overhead is the difference).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from recgen import CatalogStore, Recgen  # noqa: E402
from recgen.datasets import make_sample_catalog  # noqa: E402
from recgen import Enricher  # noqa: E402
from recgen_adapters.testing import serve_subprocess  # noqa: E402


def build(work: Path) -> Path:
    """Fit recgen on the sample catalog and save it as ``work/model`` (kept for the next run)."""
    if (work / "model" / "manifest.json").is_file():
        return work
    sample = make_sample_catalog(work / "sample", seed=0)
    store = CatalogStore(work / "store.db")
    store.ingest(sample)
    Recgen().fit(store).save(work / "model")
    store.close()
    return work


def make_candidates(enricher: Enricher, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = np.asarray(enricher.model.profiles.user_ids_, dtype=object)
    items = np.asarray(enricher.model.items.ids, dtype=object)
    df = pd.DataFrame({"user_id": users[rng.integers(0, len(users), n)], "item_id": items[rng.integers(0, len(items), n)],
                       "score": rng.normal(size=n)})
    unknown = rng.random(n) < 0.01
    df.loc[unknown, "item_id"] = "UNKNOWN-ITEM"
    return df


def numpy_loop(enricher: Enricher, df: pd.DataFrame, modalities: list[str]) -> np.ndarray:
    """Row-at-a-time reference: dict look-ups and one dot product per modality."""
    prof, items = enricher.model.profiles, enricher.model.items
    u_row = {u: r for r, u in enumerate(prof.user_ids_)}
    i_row = {i: r for r, i in enumerate(items.ids)}
    out = np.full((len(df), len(modalities)), np.nan, dtype=np.float32)
    for n, (u, i) in enumerate(zip(df["user_id"], df["item_id"])):
        r, c = u_row.get(u, -1), i_row.get(i, -1)
        if r < 0 or c < 0:
            continue
        for m_i, m in enumerate(modalities):
            if prof.present_[m][r] and items.present[m][c]:
                out[n, m_i] = np.dot(prof.vectors_[m][r], items.vectors[m][c])
    return out


def part_throughput(enricher: Enricher, args) -> None:
    df = make_candidates(enricher, args.rows, args.seed)
    loop_df = df.iloc[: args.loop_rows].reset_index(drop=True)
    call_df = df.iloc[: args.call_rows].reset_index(drop=True)
    modalities = [c.removeprefix("recgen_sim_") for c in enricher.feature_names() if "_sim_" in c]
    enricher.enrich(df.head(1000))  # warm-up
    rates = {"vectorized Enricher.enrich": [], "hand-written numpy loop": [], "per-row enrich call": []}
    for _ in range(args.rounds):
        t = time.perf_counter()
        full = enricher.enrich(df)
        rates["vectorized Enricher.enrich"].append(len(df) / (time.perf_counter() - t))
        t = time.perf_counter()
        ref = numpy_loop(enricher, loop_df, modalities)
        rates["hand-written numpy loop"].append(len(loop_df) / (time.perf_counter() - t))
        t = time.perf_counter()
        for k in range(len(call_df)):
            enricher.enrich(call_df.iloc[k:k + 1])
        rates["per-row enrich call"].append(len(call_df) / (time.perf_counter() - t))
    cols = [f"recgen_sim_{m}" for m in modalities]
    np.testing.assert_allclose(full[cols].to_numpy()[: len(loop_df)], ref, rtol=1e-5, atol=1e-6)  # same values
    best = {k: max(v) for k, v in rates.items()}
    vec = best["vectorized Enricher.enrich"]
    print(f"### features only: {len(df):,} candidates ({len(modalities)} similarities + 2 flags), "
          f"best of {args.rounds} rounds\n")
    print("| path | rows timed | candidates/s | vectorized speed-up |")
    print("|---|---|---|---|")
    rows = {"vectorized Enricher.enrich": len(df), "hand-written numpy loop": len(loop_df),
            "per-row enrich call": len(call_df)}
    for k, r in best.items():
        print(f"| {k} | {rows[k]:,} | {r:,.0f} | {vec / r:,.1f}x |")
    print(f"\n1M-candidate wall time, vectorized: {args.rows / vec:.2f} s (rounds: "
          + ", ".join(f"{args.rows / r:.2f}" for r in rates["vectorized Enricher.enrich"]) + " s)\n")


class _Model:
    """Just what ``numpy_loop`` and ``Enricher.enrich`` need: items and profiles."""

    def __init__(self, items, profiles) -> None:
        self.items, self.profiles = items, profiles


def part_distinct(args) -> None:
    """Large synthetic catalog: almost every candidate pair is distinct (no reuse to exploit)."""
    from recgen.encoders.space import ItemVectors
    from recgen.features import enrich_candidates
    from recgen.profiles import UserProfiles

    rng = np.random.default_rng(args.seed)
    n_items, n_users, dim = args.synthetic_items, args.synthetic_users, 384
    mods = ["fused", "text", "image", "review"]
    vec = {m: rng.standard_normal((n_items, dim), dtype=np.float32) for m in mods}
    for v in vec.values():
        v /= np.linalg.norm(v, axis=1, keepdims=True)
    items = ItemVectors(ids=np.array([f"I{k}" for k in range(n_items)], dtype=object), vectors=vec,
                        present={m: np.ones(n_items, bool) for m in mods})
    hist = pd.DataFrame({"user_id": np.repeat([f"U{k}" for k in range(n_users)], 20),
                         "item_id": items.ids[rng.integers(0, n_items, n_users * 20)],
                         "timestamp": np.arange(n_users * 20)})
    profiles = UserProfiles().fit(hist, items)
    df = pd.DataFrame({"user_id": profiles.user_ids_[rng.integers(0, n_users, args.rows)],
                       "item_id": items.ids[rng.integers(0, n_items, args.rows)]})
    distinct = len(df.drop_duplicates())
    loop_df = df.iloc[: args.loop_rows]
    fake = type("E", (), {})()
    fake.model = _Model(items, profiles)
    vec_rates, loop_rates = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        out = enrich_candidates(df, items=items, profiles=profiles)
        vec_rates.append(len(df) / (time.perf_counter() - t))
        t = time.perf_counter()
        ref = numpy_loop(fake, loop_df, mods)
        loop_rates.append(len(loop_df) / (time.perf_counter() - t))
    np.testing.assert_allclose(out[[f"recgen_sim_{m}" for m in mods]].to_numpy()[: len(loop_df)], ref,
                               rtol=1e-5, atol=1e-6)
    v, lp = max(vec_rates), max(loop_rates)
    print(f"### features only, synthetic catalog: {n_items:,} items x {n_users:,} users, dim {dim}, "
          f"{len(df):,} candidates of which {distinct:,} distinct pairs, best of {args.rounds} rounds\n")
    print("| path | rows timed | candidates/s | vectorized speed-up |")
    print("|---|---|---|---|")
    print(f"| vectorized `enrich_candidates` | {len(df):,} | {v:,.0f} | 1.0x |")
    print(f"| hand-written numpy loop | {len(loop_df):,} | {lp:,.0f} | {v / lp:,.1f}x |")
    print(f"\n{len(df):,} candidates, vectorized: {len(df) / v:.2f} s\n")


async def _load(base: str, bodies: list[dict], clients: int, max_requests: int, seconds: float):
    import httpx

    lat: list[float] = []
    status: dict[int, int] = {}
    sent = 0
    stop = time.perf_counter() + seconds

    async def client(c: httpx.AsyncClient, k: int) -> None:
        nonlocal sent
        while sent < max_requests and time.perf_counter() < stop:
            sent += 1
            body = bodies[(k + sent) % len(bodies)]
            t = time.perf_counter()
            try:
                r = await c.post(base + "/enrich", json=body)
                code = r.status_code
            except httpx.HTTPError:
                code = -1
            lat.append(time.perf_counter() - t)
            status[code] = status.get(code, 0) + 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c, k) for k in range(clients)))
        wall = time.perf_counter() - t0
    return np.array(lat), status, wall


def part_http(work: Path, enricher: Enricher, args) -> None:

    with serve_subprocess(work, log_path=work / "serve.log", args=["--log-level", "warning"]) as served:
        base = served.url
        cands = make_candidates(enricher, args.batch * 64, args.seed + 1)
        frames = [cands.iloc[k * args.batch:(k + 1) * args.batch] for k in range(64)]
        bodies = [{"candidates": f[["user_id", "item_id"]].to_dict("records")} for f in frames]
        asyncio.run(_load(base, bodies, args.clients, 2 * args.clients, 10))  # warm-up
        lat, status, wall = asyncio.run(_load(base, bodies, args.clients, args.requests, args.seconds))
        inproc = []
        for k in range(200):
            t = time.perf_counter()
            enricher.enrich(frames[k % 64])
            inproc.append(time.perf_counter() - t)
    ms = lat * 1e3
    errors = sum(v for k, v in status.items() if k != 200)
    print(f"### HTTP POST /enrich: {args.batch} candidates per request, {args.clients} concurrent clients, "
          f"1 uvicorn worker, loopback (limits: {args.requests} requests or {args.seconds:.0f} s)\n")
    print("| requests | wall s | requests/s | candidates/s | p50 ms | p90 ms | p99 ms | max ms | errors | "
          "in-process enrich p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {len(lat)} | {wall:.1f} | {len(lat) / wall:.0f} | {len(lat) * args.batch / wall:,.0f} | "
          f"{np.percentile(ms, 50):.1f} | {np.percentile(ms, 90):.1f} | {np.percentile(ms, 99):.1f} | {ms.max():.1f} | "
          f"{errors} | {np.median(inproc) * 1e3:.2f} |")
    print(f"\nstatus codes: {dict(sorted(status.items()))}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, help="folder for the fitted sample model (reused across runs)")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--loop-rows", type=int, default=100_000)
    ap.add_argument("--call-rows", type=int, default=2_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=5_000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--synthetic-items", type=int, default=50_000)
    ap.add_argument("--synthetic-users", type=int, default=20_000)
    ap.add_argument("--skip-distinct", action="store_true", help="skip the large synthetic catalog part")
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    work = build(args.work or Path(tempfile.mkdtemp(prefix="bench-enrich-")))
    enricher = Enricher.load(work)
    print(f"# enrichment benchmark (sample catalog model: {len(enricher.model.items.ids)} items, "
          f"{len(enricher.model.profiles.user_ids_)} users; {os.cpu_count()} CPUs)\n")
    if not args.skip_throughput:
        part_throughput(enricher, args)
    if not args.skip_distinct:
        part_distinct(args)
    if not args.skip_http:
        part_http(work, enricher, args)
    print(f"command: {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
