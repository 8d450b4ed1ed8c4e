"""HTTP service under sustained concurrent load: throughput, latency percentiles, errors, server memory.

    .venv/bin/python benchmarks/bench_service.py                     # ~2 min on 2 cores
    .venv/bin/python benchmarks/bench_service.py --model DIR --levels 16 64 --seconds 30

Starts ``recgen serve`` (one uvicorn worker, an API key, no rate limit) on 127.0.0.1 on a
fitted model directory (``--model``; by default the sample-catalog model in
``.cache/bench-enrich``, fitted there the way ``bench_enrich.py`` does when missing), warms it
up, then holds each concurrency level (``--levels``, default 16 and 64 clients) for
``--seconds`` (default 30) with a mix of requests, in rotation:

* ``POST /enrich`` with 50 (user, item) candidates,
* ``POST /recommend`` for a known user (k = 10),
* ``GET /items/{id}/similar`` (k = 10).

Per level: requests, requests/s, p50/p90/p99 latency (all requests and per endpoint), errors
(anything but 200, transport exceptions included; must be 0) and the server's VmRSS at the
start and end of the level. Reference: ``Enricher.enrich`` of the same 50-candidate frames
in-process (the HTTP, JSON and scheduling overhead is the ratio). The load generator
(httpx, asyncio, one process) runs on the same machine as the server and shares its cores.
Every request goes to loopback; every loop is bounded by a request count and a duration.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from recgen import Enricher  # noqa: E402
from recgen_adapters.testing import serve_subprocess  # noqa: E402

from bench_enrich import build  # noqa: E402  (same folder: the sample-catalog model, fitted once)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORK = REPO / ".cache" / "bench-enrich"
KEY = "bench-key-0123456789"
MAX_REQUESTS_PER_LEVEL = 200_000


def _vmrss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def requests_mix(enricher: Enricher, seed: int, n: int = 96) -> tuple[list[tuple[str, str, str, dict]], list]:
    """``n`` requests in rotation (enrich, recommend, similar) and the 50-row frames of the enrich ones."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    users = np.asarray(enricher.model.profiles.user_ids_, dtype=object)
    items = np.asarray(enricher.model.items.ids, dtype=object)
    out, frames = [], []
    for k in range(n):
        if k % 3 == 0:
            frame = pd.DataFrame({"user_id": users[rng.integers(0, len(users), 50)],
                                  "item_id": items[rng.integers(0, len(items), 50)]})
            frames.append(frame)
            out.append(("enrich", "POST", "/enrich", {"json": {"candidates": frame.to_dict("records")}}))
        elif k % 3 == 1:
            out.append(("recommend", "POST", "/recommend",
                        {"json": {"user_id": str(users[rng.integers(len(users))]), "k": 10}}))
        else:
            out.append(("similar", "GET", f"/items/{items[rng.integers(len(items))]}/similar", {"params": {"k": 10}}))
    return out, frames


async def _level(base: str, mix: list, clients: int, seconds: float, max_requests: int):
    import httpx

    results: list[tuple[str, float, int]] = []
    stop = time.perf_counter() + seconds
    sent = 0

    async def client(c: "httpx.AsyncClient", k: int) -> None:
        nonlocal sent
        i = k
        while sent < max_requests and time.perf_counter() < stop:
            sent += 1
            name, method, path, kw = mix[i % len(mix)]
            i += clients
            t = time.perf_counter()
            try:
                r = await c.request(method, path, **kw)
                code = r.status_code
            except httpx.HTTPError:
                code = -1
            results.append((name, time.perf_counter() - t, code))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}, timeout=60, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c, k) for k in range(clients)))
        wall = time.perf_counter() - t0
    return results, wall


def _pcts(ms: np.ndarray) -> str:
    return " | ".join(f"{np.percentile(ms, q):.1f}" for q in (50, 90, 99)) if len(ms) else "- | - | -"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help=f"fitted recgen directory (default: {DEFAULT_WORK}, fitted if missing)")
    ap.add_argument("--levels", type=int, nargs="+", default=[16, 64], help="concurrent clients per level")
    ap.add_argument("--seconds", type=float, default=30.0, help="duration of each level")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up load before the first level")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not 1 <= args.seconds <= 600:
        sys.exit("--seconds must be in [1, 600]")

    work = args.model or build(DEFAULT_WORK)
    enricher = Enricher.load(work, generators=False)
    mix, frames = requests_mix(enricher, args.seed)

    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    (tmp / "keys.txt").write_text(KEY + "\n")
    env = {**os.environ, "RECGEN_API_KEYS": "", "RECGEN_RATE_LIMIT": ""}  # no rate limit: a 429 is an error here
    rows = []
    with serve_subprocess(work, log_path=tmp / "serve.log", env=env, startup_timeout=180,
                          args=["--api-key-file", str(tmp / "keys.txt"), "--max-candidates", "10000",
                                "--log-level", "warning"]) as served:
        base, proc = served.url, served.process
        version = httpx.get(base + "/healthz", timeout=5).json().get("model_version", "?")
        asyncio.run(_level(base, mix, min(args.levels), args.warmup, MAX_REQUESTS_PER_LEVEL))  # warm-up
        for clients in args.levels:
            rss0 = _vmrss_mib(proc.pid)
            results, wall = asyncio.run(_level(base, mix, clients, args.seconds, MAX_REQUESTS_PER_LEVEL))
            rss1 = _vmrss_mib(proc.pid)
            rows.append((clients, results, wall, rss0, rss1))

    inproc = []
    for k in range(300):
        t = time.perf_counter()
        enricher.enrich(frames[k % len(frames)])
        inproc.append(time.perf_counter() - t)
    ref = float(np.median(inproc)) * 1e3

    print(f"## HTTP service under load: {platform.node()} ({os.cpu_count()} CPUs), model {work} ({version})\n")
    print(f"`{' '.join([Path(sys.executable).name, *sys.argv])}`: 1 uvicorn worker, API key on, rate limit off, "
          f"loopback; mix in rotation: /enrich (50 candidates), /recommend (k=10), /items/{{id}}/similar (k=10); "
          f"{args.seconds:.0f} s per level after {args.warmup:.0f} s of warm-up. The load generator (httpx, asyncio, "
          f"one process) shares the cores with the server.\n")
    print("| clients | requests | req/s | p50 ms | p90 ms | p99 ms | errors | server RSS start MiB | end MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for clients, results, wall, rss0, rss1 in rows:
        ms = np.array([lat for _, lat, _ in results]) * 1e3
        errors = sum(1 for _, _, code in results if code != 200)
        print(f"| {clients} | {len(results)} | {len(results) / wall:.0f} | {_pcts(ms)} | {errors} | "
              f"{rss0:.0f} | {rss1:.0f} |")
    print("\nper endpoint (p50 / p90 / p99 ms):\n")
    print("| clients | /enrich (50) | /recommend | /items/{id}/similar |")
    print("|---|---|---|---|")
    for clients, results, _, _, _ in rows:
        cells = []
        for name in ("enrich", "recommend", "similar"):
            ms = np.array([lat for n, lat, _ in results if n == name]) * 1e3
            cells.append(_pcts(ms).replace(" | ", " / "))
        print(f"| {clients} | " + " | ".join(cells) + " |")
    for clients, results, *_ in rows:
        codes: dict[int, int] = {}
        for _, _, code in results:
            codes[code] = codes.get(code, 0) + 1
        print(f"\n{clients} clients, status codes: {dict(sorted(codes.items()))}", end="")
    print(f"\n\nin-process reference: Enricher.enrich of the same 50-candidate frames, p50 {ref:.2f} ms\n")


if __name__ == "__main__":
    main()
