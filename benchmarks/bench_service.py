"""HTTP service under sustained concurrent load: throughput, latency percentiles, errors, server memory.

    .venv/bin/python benchmarks/bench_service.py                     # ~4 min on 2 cores
    .venv/bin/python benchmarks/bench_service.py --levels 16 --seconds 10
    .venv/bin/python benchmarks/bench_service.py --client python     # the asyncio client instead of wrk

Starts ``recgen serve`` (one uvicorn worker, an API key, no rate limit) on 127.0.0.1 on a
fitted model directory (``--model``; by default the sample-catalog model in
``.cache/bench-enrich``, fitted there the way ``bench_enrich.py`` does when missing), and,
as the reference, a bare FastAPI app on the same server stack (uvicorn, one worker, h11,
asyncio loop) whose routes do no work: ``GET /ping`` and ``POST /echo`` (parses the JSON
body). After a warm-up, each concurrency level (``--levels``, default 16 and 64 connections)
runs these cases for ``--seconds`` each (default 10), the two servers' cases alternated:

* bare ``GET /ping``, then recgen ``GET /healthz`` (auth, metrics and version middleware);
* bare ``POST /echo`` with the ``/enrich`` bodies, then recgen ``POST /enrich`` (50 candidates);
* recgen ``POST /recommend`` (k = 10) and ``GET /items/{id}/similar`` (k = 10);
* recgen mix: the three in rotation (the figures of earlier runs).

Per case: requests, requests/s, p50/p90/p99 latency, errors (anything but 2xx, transport
errors and timeouts included; must be 0), requests/s and p50 as ratios against the bare
case of the same method, CPU seconds used by the server and by the load generator, and the
recgen server's VmRSS at the start and end of each level. A second reference is
``Enricher.enrich`` of the same 50-candidate frames in-process.

The load generator is ``wrk`` (compiled, one thread, event-driven; Debian package ``wrk``)
when it is on PATH: it spends a small fraction of the CPU the server does, so on a small
machine the server is what is measured. POST bodies and request rotations come from a wrk
Lua script written to a temporary file. ``--client python`` (the fallback without wrk) is
an httpx asyncio client in this process, which competes with the server for the cores.
Every request goes to loopback; every case is bounded by a duration (and, for the Python
client, a request count).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from recgen import Enricher  # noqa: E402
from recgen_adapters.testing import free_port, serve_subprocess  # noqa: E402

from bench_enrich import build  # noqa: E402  (same folder: the sample-catalog model, fitted once)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORK = REPO / ".cache" / "bench-enrich"
KEY = "bench-key-0123456789"
MAX_REQUESTS_PER_CASE = 200_000

#: The reference: the same server stack (uvicorn, one worker, h11, asyncio) with routes that do no work
#: (async: not even a hop to the thread pool, so the floor of the stack).
BARE_APP = """
from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/ping")
async def ping() -> dict:
    return {"status": "ok"}


@app.post("/echo")
async def echo(request: Request) -> dict:
    return {"candidates": len((await request.json()).get("candidates", []))}
"""

#: wrk script: REQUESTS is a Lua table of {method, path, body}; each connection takes them in
#: rotation; done() prints the summary as one JSON line (latencies in microseconds).
WRK_LUA = """
local requests = {
%s
}
local headers = {["X-API-Key"] = "%s", ["Content-Type"] = "application/json"}
local n = 0
request = function()
  n = n + 1
  local r = requests[(n %% #requests) + 1]
  return wrk.format(r[1], r[2], headers, r[3])
end
done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "p50": %%d, "p90": %%d, "p99": %%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


@dataclass
class Case:
    name: str
    server: str  # "bare" or "recgen"
    requests: list  # (method, path, json body or None)
    reference: str | None = None  # name of the bare case it is compared with


@dataclass
class Result:
    requests: int
    wall: float
    p50: float
    p90: float
    p99: float
    errors: int
    server_cpu: float
    client_cpu: float


def _vmrss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cases(enricher: Enricher, seed: int, n: int = 32) -> tuple[list[Case], list]:
    """The cases of one level (bare and recgen alternated) and the 50-row frames of the enrich bodies."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    users = np.asarray(enricher.model.profiles.user_ids_, dtype=object)
    items = np.asarray(enricher.model.items.ids, dtype=object)
    frames = [pd.DataFrame({"user_id": users[rng.integers(0, len(users), 50)],
                            "item_id": items[rng.integers(0, len(items), 50)]}) for _ in range(n)]
    enrich = [("POST", "/enrich", {"candidates": f.to_dict("records")}) for f in frames]
    recommend = [("POST", "/recommend", {"user_id": str(users[rng.integers(len(users))]), "k": 10}) for _ in range(n)]
    similar = [("GET", f"/items/{items[rng.integers(len(items))]}/similar?k=10", None) for _ in range(n)]
    mix = [r for trio in zip(enrich, recommend, similar) for r in trio]
    return [
        Case("bare GET /ping", "bare", [("GET", "/ping", None)]),
        Case("GET /healthz", "recgen", [("GET", "/healthz", None)], "bare GET /ping"),
        Case("bare POST /echo (enrich bodies)", "bare", [("POST", "/echo", b) for _, _, b in enrich]),
        Case("POST /enrich (50)", "recgen", enrich, "bare POST /echo (enrich bodies)"),
        Case("POST /recommend", "recgen", recommend, "bare POST /echo (enrich bodies)"),
        Case("GET /items/{id}/similar", "recgen", similar, "bare GET /ping"),
        Case("mix (enrich, recommend, similar)", "recgen", mix),
    ], frames


# ----------------------------------------------------------------------------- wrk
def _lua_string(text: str) -> str:
    level = "=" * 4
    if f"]{level}]" in text:
        raise ValueError("request body contains the Lua long-string terminator")
    return f"[{level}[{text}]{level}]"


def write_wrk_script(case: Case, folder: Path) -> Path:
    rows = ",\n".join("  {%s, %s, %s}" % (_lua_string(m), _lua_string(p),
                                         _lua_string(json.dumps(b)) if b is not None else "nil")
                      for m, p, b in case.requests)
    path = folder / (case.name.translate(str.maketrans(" /(){},", "_______")) + ".lua")
    path.write_text(WRK_LUA % (rows, KEY))
    return path


def run_wrk(wrk: str, base: str, case: Case, connections: int, seconds: float, folder: Path, server_pid: int) -> Result:
    script = write_wrk_script(case, folder)
    cmd = [wrk, "-t", "1", "-c", str(connections), "-d", f"{seconds:.0f}s", "--timeout", "60s", "-s", str(script), base]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = _cpu_seconds(server_pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    cpu1 = _cpu_seconds(server_pid)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[len("WRKJSON "):])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return Result(r["requests"], r["duration_us"] / 1e6, r["p50"] / 1e3, r["p90"] / 1e3, r["p99"] / 1e3, errors,
                  cpu1 - cpu0, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))


# --------------------------------------------------------------------- python client
async def _python_load(base: str, requests: list, clients: int, seconds: float, max_requests: int):
    import httpx

    results: list[tuple[float, int]] = []
    stop = time.perf_counter() + seconds
    sent = 0

    async def client(c: "httpx.AsyncClient", k: int) -> None:
        nonlocal sent
        i = k
        while sent < max_requests and time.perf_counter() < stop:
            sent += 1
            method, path, body = requests[i % len(requests)]
            i += clients
            t = time.perf_counter()
            try:
                r = await c.request(method, path, json=body)
                code = r.status_code
            except httpx.HTTPError:
                code = -1
            results.append((time.perf_counter() - t, code))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}, timeout=60, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c, k) for k in range(clients)))
        wall = time.perf_counter() - t0
    return results, wall


def run_python(base: str, case: Case, connections: int, seconds: float, server_pid: int) -> Result:
    cpu0, own0 = _cpu_seconds(server_pid), time.process_time()
    results, wall = asyncio.run(_python_load(base, case.requests, connections, seconds, MAX_REQUESTS_PER_CASE))
    cpu1, own1 = _cpu_seconds(server_pid), time.process_time()
    ms = np.array([lat for lat, _ in results]) * 1e3
    p50, p90, p99 = (float(np.percentile(ms, q)) if len(ms) else float("nan") for q in (50, 90, 99))
    errors = sum(1 for _, code in results if not 200 <= code < 300)
    return Result(len(results), wall, p50, p90, p99, errors, cpu1 - cpu0, own1 - own0)


# ------------------------------------------------------------------------------ main
def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help=f"fitted recgen directory (default: {DEFAULT_WORK}, fitted if missing)")
    ap.add_argument("--levels", type=int, nargs="+", default=[16, 64], help="concurrent connections per level")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each case")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up load on each server first")
    ap.add_argument("--client", choices=["wrk", "python"], default=None,
                    help="load generator (default: wrk when on PATH, else the Python client)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not 1 <= args.seconds <= 600:
        sys.exit("--seconds must be in [1, 600]")
    wrk = shutil.which("wrk")
    client = args.client or ("wrk" if wrk else "python")
    if client == "wrk" and wrk is None:
        sys.exit("--client wrk: wrk is not on PATH (Debian package `wrk`); --client python is the fallback")
    if args.client is None and wrk is None:
        print("wrk not found on PATH: using the Python client, which shares the cores with the server\n",
              file=sys.stderr)

    work = args.model or build(DEFAULT_WORK)
    enricher = Enricher.load(work, generators=False)
    level_cases, frames = cases(enricher, args.seed)

    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    (tmp / "keys.txt").write_text(KEY + "\n")
    (tmp / "bare_app.py").write_text(BARE_APP)
    env = {**os.environ, "RECGEN_API_KEYS": "", "RECGEN_RATE_LIMIT": ""}  # no rate limit: a 429 is an error here
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(tmp), "--host",
                             "127.0.0.1", "--port", str(bare_port), "--workers", "1", "--http", "h11", "--loop",
                             "asyncio", "--log-level", "warning"],
                            stdout=open(tmp / "bare.log", "wb"), stderr=subprocess.STDOUT, env=env)
    bare_url = f"http://127.0.0.1:{bare_port}"
    results: dict[tuple[int, str], Result] = {}
    rss: dict[int, tuple[float, float]] = {}
    try:
        with serve_subprocess(work, log_path=tmp / "serve.log", env=env, startup_timeout=180,
                              args=["--api-key-file", str(tmp / "keys.txt"), "--max-candidates", "10000",
                                    "--log-level", "warning"]) as served:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(bare_url + "/ping", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if bare.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the bare app did not start:\n{(tmp / 'bare.log').read_text()}")
                time.sleep(0.2)
            version = httpx.get(served.url + "/healthz", timeout=5).json().get("model_version", "?")
            urls = {"bare": (bare_url, bare.pid), "recgen": (served.url, served.process.pid)}

            def run(case: Case, connections: int, seconds: float) -> Result:
                base, pid = urls[case.server]
                if client == "wrk":
                    return run_wrk(wrk, base, case, connections, seconds, tmp, pid)
                return run_python(base, case, connections, seconds, pid)

            for case in (level_cases[0], level_cases[-1]):  # warm-up, not recorded
                run(case, min(args.levels), args.warmup)
            for connections in args.levels:
                rss0 = _vmrss_mib(served.process.pid)
                for case in level_cases:
                    results[connections, case.name] = run(case, connections, args.seconds)
                rss[connections] = (rss0, _vmrss_mib(served.process.pid))
    finally:
        bare.terminate()
        try:
            bare.wait(timeout=20)
        except subprocess.TimeoutExpired:
            bare.kill()

    inproc = []
    for k in range(300):
        t = time.perf_counter()
        enricher.enrich(frames[k % len(frames)])
        inproc.append(time.perf_counter() - t)
    ref = float(np.median(inproc)) * 1e3

    gen = ("wrk (one thread, Lua script for the request rotation)" if client == "wrk"
           else "httpx asyncio client in the benchmark's process, sharing the cores with the servers")
    print(f"## HTTP service under load: {platform.node()} ({os.cpu_count()} CPUs), model {work} ({version})\n")
    print(f"`{' '.join([Path(sys.executable).name, *sys.argv])}`: 1 uvicorn worker, API key on, rate limit off, "
          f"loopback; {args.seconds:.0f} s per case after {args.warmup:.0f} s of warm-up. Load generator: {gen}. "
          f"Reference: a bare FastAPI app on the same server stack (uvicorn, h11, asyncio, 1 worker).\n")
    print("| connections | case | requests | req/s | p50 ms | p90 ms | p99 ms | errors | req/s vs bare | "
          "p50 vs bare | server CPU s | client CPU s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for connections in args.levels:
        for case in level_cases:
            r = results[connections, case.name]
            rate = r.requests / r.wall
            ref_r = results.get((connections, case.reference)) if case.reference else None
            vs_rate = _ratio(rate, ref_r.requests / ref_r.wall) if ref_r else "-"
            vs_p50 = _ratio(r.p50, ref_r.p50) if ref_r else "-"
            print(f"| {connections} | {case.name} | {r.requests} | {rate:.0f} | {r.p50:.1f} | {r.p90:.1f} | "
                  f"{r.p99:.1f} | {r.errors} | {vs_rate} | {vs_p50} | {r.server_cpu:.1f} | {r.client_cpu:.1f} |")
    print("\nrecgen server RSS (MiB) at the start and end of each level: "
          + ", ".join(f"{c} connections {a:.0f} -> {b:.0f}" for c, (a, b) in rss.items()))
    print(f"\nin-process reference: Enricher.enrich of the same 50-candidate frames, p50 {ref:.2f} ms\n")


if __name__ == "__main__":
    main()
