"""Two attacks of issue 14 on a real ``recgen serve``: image uploads under the pixel cap, and junk HTTP methods.

    .venv/bin/python benchmarks/bench_service_attacks.py                       # ~2 min on 2 cores
    .venv/bin/python benchmarks/bench_service_attacks.py --model DIR --pixels 49999999 --parallel 8

Starts ``recgen serve`` (one uvicorn worker, an API key, log level warning) on 127.0.0.1 on a
fitted model directory (``--model``; by default the sample-catalog model in
``.cache/bench-enrich``, fitted there the way ``bench_enrich.py`` does when missing), then:

* **Image uploads.** A PNG of a flat colour (RGBA, a few hundred KB) with ``--pixels``
  pixels (default: one under the served cap, ``ServiceConfig.max_image_pixels`` where it
  exists, else recgen's ``MAX_IMAGE_PIXELS``), uploaded to ``POST /search`` by ``--parallel``
  clients at once (default 8), after a warm-up with one small image (the image encoder
  loaded). Reported: the answers, the server's peak RSS growth over the baseline (VmHWM,
  reset with ``/proc/PID/clear_refs`` just before) and its RSS growth afterwards.
  Reference: the same growth for one upload alone.
* **Junk methods.** 200, then ``--junk`` more requests (default 10,000) with made-up method
  names and paths and no key, on one keep-alive connection; reported: the answers, and the
  size and scrape time of ``GET /metrics`` before any, after the first 200 (the series such
  requests may add with labels from a closed set) and after the rest (ratio 1 expected).

Run it against another checkout with ``PYTHONPATH`` (e.g. a ``git worktree`` of an older
commit, and a folder holding a ``recgen_adapters`` link to its ``adapters/``) to compare.
Every request goes to loopback; every loop is bounded by a request count and a duration.
"""
from __future__ import annotations

import argparse
import http.client
import io
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from recgen_adapters.testing import serve_subprocess  # noqa: E402

from bench_enrich import build  # noqa: E402  (same folder: the sample-catalog model, fitted once)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORK = REPO / ".cache" / "bench-enrich"
KEY = "bench-key-0123456789"


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def served_cap() -> int:
    """The pixel cap of the code under test (the service's own where it has one)."""
    from recgen_adapters.service.settings import ServiceConfig

    cap = getattr(ServiceConfig(), "max_image_pixels", None)
    if cap is None:
        from recgen.catalog.schema import MAX_IMAGE_PIXELS

        cap = MAX_IMAGE_PIXELS
    return int(cap)


def flat_png(pixels: int) -> tuple[bytes, int, int]:
    from PIL import Image

    w = int(pixels ** 0.5)
    h = pixels // w
    buf = io.BytesIO()
    Image.new("RGBA", (w, h), (200, 30, 40, 255)).save(buf, "PNG", compress_level=9)
    return buf.getvalue(), w, h


def multipart(image: bytes) -> tuple[bytes, str]:
    b = "bench-boundary"
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{b}--\r\n".encode()
    return body, f"multipart/form-data; boundary={b}"


def post(port: int, body: bytes, ctype: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        conn.request("POST", "/search", body=body, headers={"X-API-Key": KEY, "content-type": ctype})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def upload_round(port: int, pid: int, body: bytes, ctype: str, parallel: int) -> tuple[list[int], float, float, float]:
    """``parallel`` uploads at once: (answers, peak growth MiB, RSS growth after MiB, seconds)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS from here on
    base = _status_mib(pid, "VmRSS")
    codes: list[int] = []
    t0 = time.perf_counter()
    threads = [threading.Thread(target=lambda: codes.append(post(port, body, ctype))) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    took = time.perf_counter() - t0
    return sorted(codes), _status_mib(pid, "VmHWM") - base, _status_mib(pid, "VmRSS") - base, took


def metrics(port: int) -> tuple[int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        t0 = time.perf_counter()
        conn.request("GET", "/metrics", headers={"X-API-Key": KEY})
        r = conn.getresponse()
        size = len(r.read())
        return size, time.perf_counter() - t0
    finally:
        conn.close()


def junk_methods(port: int, n: int, seconds: float) -> dict[int, int]:
    codes: dict[int, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    end = time.monotonic() + seconds
    try:
        for i in range(n):
            if time.monotonic() > end:
                break
            try:
                conn.putrequest(f"JUNK{i}", f"/junk/{i}")
                conn.endheaders()
                r = conn.getresponse()
                r.read()
                codes[r.status] = codes.get(r.status, 0) + 1
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                codes[-1] = codes.get(-1, 0) + 1
    finally:
        conn.close()
    return codes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="saved recgen directory (model/); default: fitted once")
    ap.add_argument("--pixels", type=int, default=None, help="pixels of the uploaded PNG (default: the cap - 1)")
    ap.add_argument("--parallel", type=int, default=8, help="uploads at once")
    ap.add_argument("--junk", type=int, default=10_000, help="junk-method requests")
    ap.add_argument("--junk-seconds", type=float, default=600, help="bound on the junk-method loop")
    args = ap.parse_args()

    work = args.model or build(DEFAULT_WORK)
    cap = served_cap()
    pixels = args.pixels or cap - 1
    png, w, h = flat_png(pixels)
    body, ctype = multipart(png)
    import recgen_adapters

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"code: {Path(recgen_adapters.__file__).parent}; served pixel cap {cap:,}")
    print(f"model: {work}")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "RECGEN_API_KEYS": KEY}
        with serve_subprocess(work, log_path=Path(tmp) / "serve.log", env=env,
                              args=["--log-level", "warning"]) as s:
            port, pid = int(s.url.rsplit(":", 1)[1]), s.process.pid
            from PIL import Image

            small = io.BytesIO()
            Image.new("RGB", (256, 256), (20, 120, 220)).save(small, "PNG")
            sbody, stype = multipart(small.getvalue())
            for _ in range(3):  # warm-up: the image encoder, the thread pool
                assert post(port, sbody, stype) == 200
            print(f"baseline RSS {_status_mib(pid, 'VmRSS'):.0f} MiB")
            print(f"\nimage: {w}x{h} RGBA PNG = {w * h:,} pixels, {len(png):,} bytes")
            codes, peak1, after1, t1 = upload_round(port, pid, body, ctype, 1)
            print(f"  1 upload:            answers {codes}, peak RSS +{peak1:.0f} MiB, after +{after1:.0f} MiB, "
                  f"{t1:.1f} s")
            codes, peak, after, t = upload_round(port, pid, body, ctype, args.parallel)
            print(f"  {args.parallel} uploads at once:  answers {codes}, peak RSS +{peak:.0f} MiB, after "
                  f"+{after:.0f} MiB, {t:.1f} s (ratio to one upload: {peak / max(peak1, 1):.1f})")

            metrics(port)  # /metrics' own series exist from here on
            size0, scrape0 = metrics(port)
            warm = junk_methods(port, 200, args.junk_seconds)  # the series such requests may add, once
            size_w, _ = metrics(port)
            t0 = time.perf_counter()
            codes_j = junk_methods(port, args.junk, args.junk_seconds)
            took = time.perf_counter() - t0
            size1, scrape1 = metrics(port)
            print(f"\njunk methods: 200 then {sum(codes_j.values()):,} requests without a key ({took:.0f} s), "
                  f"answers {warm} then {codes_j}")
            print(f"  /metrics before any:     {size0:,} bytes, scraped in {scrape0 * 1000:.1f} ms")
            print(f"  /metrics after 200:      {size_w:,} bytes")
            print(f"  /metrics after {sum(codes_j.values()):,} more: {size1:,} bytes, scraped in {scrape1 * 1000:.1f} ms "
                  f"(ratio to after 200: {size1 / size_w:.3f})")
            print(f"  server RSS {_status_mib(pid, 'VmRSS'):.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
