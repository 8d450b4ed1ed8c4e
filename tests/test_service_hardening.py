"""Regression tests of issue 14 (items 1, 2, 3, 4 and 6): attacks on the HTTP service, each
reproduced as a hostile client would run it, most through a real ``recgen serve`` process on
a free loopback port (raw sockets and http.client for made-up methods, chunked bodies and
slowloris).

Each test failed on 7084b5d (checked by running this file against a worktree of that commit):

1. made-up HTTP methods without a key each added a Prometheus series (``/metrics`` grew
   without bound); failed authentications were never rate-limited;
2. a PNG just under the pixel cap cost hundreds of MB per upload, times the parallel uploads;
3. a lone surrogate in a JSON id answered 422 with the codec's error instead of the
   validation error; oversized chunked bodies answered 500 (``/search``) or 400, not 413;
4. an API key sent in the query string (or, at trace level, in a header) was written to the log;
6. idle and slow (slowloris) connections were never closed.
"""
from __future__ import annotations

import http.client
import io
import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
from fastapi.testclient import TestClient  # noqa: E402

from recgen_adapters.service import ServiceConfig, create_app  # noqa: E402
from recgen_adapters.testing import serve_subprocess  # noqa: E402

KEY = "hardening-key-0123456789"
HEADERS = {"X-API-Key": KEY}
HEADER_TIMEOUT = 2.0  # seconds, given to the served process (RECGEN_HEADER_TIMEOUT)
BODY_TIMEOUT = 3.0
KEEPALIVE_TIMEOUT = 2.0


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RECGEN_API_KEYS": KEY, "OMP_NUM_THREADS": "1"}
    env.pop("RECGEN_API_KEY_FILE", None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def served(saved_workdir, tmp_path_factory):
    """One ``recgen serve`` process with a key, short read timeouts and the most verbose log
    (``trace`` prints every ASGI scope, headers included: no key may show up even there)."""
    log = tmp_path_factory.mktemp("hardening") / "serve.log"
    env = _env(RECGEN_HEADER_TIMEOUT=str(HEADER_TIMEOUT), RECGEN_BODY_TIMEOUT=str(BODY_TIMEOUT),
               RECGEN_KEEPALIVE_TIMEOUT=str(KEEPALIVE_TIMEOUT))
    with serve_subprocess(saved_workdir, log_path=log, env=env, args=["--log-level", "trace"]) as s:
        s.port = int(s.url.rsplit(":", 1)[1])
        yield s


def _conn(served, timeout: float = 30) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", served.port, timeout=timeout)


def _request(served, method: str, path: str, *, body=None, headers=None, chunked: bool = False):
    conn = _conn(served)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def enricher(saved_workdir):
    """The saved model, for in-process apps."""
    from recgen import Enricher

    return Enricher.load(saved_workdir)


# ------------------------------------------------------------------ 1. metric labels
def _metrics(served) -> bytes:
    status, body = _request(served, "GET", "/metrics", headers=HEADERS)
    assert status == 200
    return body


def test_junk_methods_without_key_add_no_metric_series(served):
    """Issue 14.1: each made-up method name (sent without a key) was a new, permanent series."""
    conn = _conn(served)

    def junk(n: int, start: int) -> list[int]:
        codes = []
        for i in range(start, start + n):
            conn.putrequest(f"JUNK{i}X", f"/nowhere{i}")  # made-up method and path, no key
            conn.endheaders()
            r = conn.getresponse()
            r.read()
            codes.append(r.status)
        return codes

    try:
        junk(300, 0)  # the series of this kind of request (401, then 429) exist from here on
        _metrics(served)  # and those of /metrics itself
        before = _metrics(served)
        codes = junk(2000, 1000)
    finally:
        conn.close()
    after = _metrics(served)
    assert set(codes) <= {401, 429}, set(codes)
    assert b"JUNK" not in after and b"nowhere" not in after
    # only counts and sums changed, a few digits each; 2,000 new series would be ~400 KB
    assert abs(len(after) - len(before)) < 300, (len(before), len(after))
    assert b'method="OTHER",route="unmatched"' in after


def test_failed_authentications_are_rate_limited(enricher):
    """Issue 14.1: 401s were never rate-limited, so keys could be guessed at full speed."""
    with TestClient(create_app(enricher, ServiceConfig(api_keys=(KEY,)))) as client:  # the defaults: 10/s, burst 100
        codes = [client.get("/metrics", headers={"X-API-Key": f"guess-{i:012d}"}).status_code for i in range(160)]
        assert set(codes[:100]) == {401} and 429 in codes[100:], codes
        assert client.get("/metrics", headers=HEADERS).status_code == 200  # a valid key never waits for it
    app = create_app(enricher, ServiceConfig(api_keys=(KEY,), auth_failure_rate=1.0, auth_failure_burst=5))
    with TestClient(app) as client:
        codes = [client.get("/metrics", headers={"X-API-Key": f"guess-{i:012d}"}).status_code for i in range(20)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
        r = client.get("/metrics", headers={"X-API-Key": "guess-again-0000"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert client.get("/metrics", headers=HEADERS).status_code == 200  # a valid key never waits for it
        assert b'status="429"' in client.get("/metrics", headers=HEADERS).content


# ----------------------------------------------------- 3. surrogates and chunked bodies
@pytest.mark.parametrize("path,body,field", [
    ("/enrich", '{"candidates": [{"user_id": "\\ud800", "item_id": "SKU-0001"}]}', "user_id"),
    ("/recommend", '{"user_id": "\\ud800", "k": 3}', "user_id"),
    ("/recommend", '{"history": ["SKU-0001", "\\udfff"], "k": 3}', "history"),
])
def test_lone_surrogate_in_an_id_is_a_422_naming_the_field(served, path, body, field):
    """Issue 14.3: the 422 echoing the id could not be encoded; the answer was the codec's error."""
    status, raw = _request(served, "POST", path, body=body.encode(), headers={**HEADERS,
                                                                              "content-type": "application/json"})
    assert status == 422, raw[:300]
    detail = json.loads(raw.decode("utf-8"))["detail"]  # strict UTF-8: the body encodes
    assert any(field in e["loc"] for e in detail), detail
    assert "codec" not in raw.decode()


def _chunks(total: int, piece: int = 64 * 1024, *, head: bytes = b""):
    yield head
    sent = len(head)
    while sent < total:
        yield b" " * min(piece, total - sent)
        sent += piece


@pytest.mark.parametrize("path,ctype", [("/search", "application/json"), ("/enrich", "application/json"),
                                        ("/recommend", "application/json"),
                                        ("/search", "multipart/form-data; boundary=xyz")])
def test_oversized_chunked_body_is_413(served, path, ctype):
    """Issue 14.3: a 9.8 MB chunked body answered 500 (/search) or 400, not 413."""
    head = (b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
            b'Content-Type: image/png\r\n\r\n') if ctype.startswith("multipart") else b""
    status, raw = _request(served, "POST", path, body=_chunks(9_800_000, head=head), chunked=True,
                           headers={**HEADERS, "content-type": ctype})
    assert status == 413, raw[:300]
    assert "over" in json.loads(raw)["detail"]
    # a chunked body under the cap still reaches the route
    status, raw = _request(served, "POST", "/recommend", body=iter([b'{"user_id": ', b'"nobody-x", "k": 2}']),
                           chunked=True, headers={**HEADERS, "content-type": "application/json"})
    assert status == 404 and b"nobody-x" in raw


# ------------------------------------------------------------------- 4. keys in logs
def test_no_key_is_ever_written_to_the_log(served):
    """Issue 14.4: a key sent in the query string was written to the access log."""
    secret = "query-secret-9f8e7d6c5b"
    for path in (f"/healthz?api_key={secret}", f"/recommend?api_key={KEY}&k=3", f"/items/SKU-0001/similar?token={secret}",
                 f"/nowhere?key={KEY}"):
        _request(served, "GET", path)
    _request(served, "GET", "/healthz", headers={"X-API-Key": secret})
    _request(served, "GET", "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    _request(served, "GET", "/metrics", headers=HEADERS)
    time.sleep(0.5)
    log = served.log()
    assert "/healthz?api_key=" in log and "token=" in log  # the requests were logged, at trace level too
    assert "ASGI" in log
    assert KEY not in log and secret not in log, [ln for ln in log.splitlines() if KEY in ln or secret in ln][:5]


# ------------------------------------------------------------------ 6. read timeouts
def _closed_within(sock: socket.socket, seconds: float, *, trickle: bytes = b"", every: float = 0.3) -> float | None:
    """Seconds until the server closes ``sock`` (None: still open after ``seconds``), sending
    ``trickle`` one byte every ``every`` seconds meanwhile."""
    t0 = time.monotonic()
    sock.settimeout(every)
    i = 0
    while time.monotonic() - t0 < seconds:
        try:
            data = sock.recv(4096)
            if not data or b"408" in data:
                return time.monotonic() - t0
        except TimeoutError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
        if trickle:
            try:
                sock.sendall(trickle[i % len(trickle):i % len(trickle) + 1])
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - t0
            i += 1
    return None


def test_slowloris_head_is_closed_within_the_header_timeout(served):
    """Issue 14.6: a partial request line, then one byte at a time, kept a connection forever."""
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /healthz HTT")
        took = _closed_within(sock, HEADER_TIMEOUT + 8, trickle=b"P/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert took is not None and took < HEADER_TIMEOUT + 2, took


def test_idle_connection_is_closed(served):
    """Issue 14.6: a connection that never sends anything was never closed."""
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        took = _closed_within(sock, HEADER_TIMEOUT + 8)
    assert took is not None and took < HEADER_TIMEOUT + 2, took


def test_trickle_after_a_keep_alive_response_is_closed(served):
    """Issue 14.6: each byte cancelled uvicorn's keep-alive timer, so a kept-alive connection
    trickling its next request head was never closed."""
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        took = _closed_within(sock, HEADER_TIMEOUT + 8, trickle=b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaa")
    assert took is not None and took < HEADER_TIMEOUT + 2, took


def test_slow_body_is_closed_within_the_body_timeout(served):
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"POST /recommend HTTP/1.1\r\nHost: x\r\nX-API-Key: " + KEY.encode()
                     + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"user")
        took = _closed_within(sock, BODY_TIMEOUT + 8, trickle=b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert took is not None and took < BODY_TIMEOUT + 2, took


def test_normal_requests_still_work_on_kept_alive_connections(served):
    conn = _conn(served)
    try:
        for _ in range(3):
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read())["status"] == "ok"
            time.sleep(KEEPALIVE_TIMEOUT / 4)
    finally:
        conn.close()


# ------------------------------------------------------------------ 2. image uploads
def _png(width: int, height: int, mode: str = "RGBA") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, (width, height), (200, 30, 40, 255) if mode == "RGBA" else (200, 30, 40)).save(
        buf, "PNG", compress_level=9)
    return buf.getvalue()


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _multipart(image: bytes) -> tuple[bytes, str]:
    boundary = "recgen-hardening-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_parallel_under_cap_png_uploads_have_bounded_memory(saved_workdir, sample, tmp_path):
    """Issue 14.2: a small PNG just under the pixel cap cost ~570 MB per upload, times the
    uploads in parallel. Eight in parallel must now stay within 300 MB of the baseline."""
    cap = 16_000_000  # the default cap
    side = int(cap ** 0.5) - 1
    bomb = _png(side, side)
    assert len(bomb) < 300_000  # a small file that decodes to 64 MB of RGBA
    body, ctype = _multipart(bomb)
    with serve_subprocess(saved_workdir, log_path=tmp_path / "serve.log", env=_env(),
                          args=["--log-level", "warning"]) as s:
        port, pid = int(s.url.rsplit(":", 1)[1]), s.process.pid

        def upload(data: bytes, content_type: str) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            try:
                conn.request("POST", "/search", body=data, headers={**HEADERS, "content-type": content_type})
                r = conn.getresponse()
                r.read()
                return r.status
            finally:
                conn.close()

        small, small_type = _multipart(Path(sample.items["image_path"].iloc[0]).read_bytes())
        for _ in range(2):  # warm-up: the image encoder, the thread pool, allocator arenas
            assert upload(small, small_type) == 200
            assert upload(body, ctype) == 200
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS from here on
        base = _status_kib(pid, "VmRSS")
        codes: list[int] = []
        threads = [threading.Thread(target=lambda: codes.append(upload(body, ctype))) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        peak = _status_kib(pid, "VmHWM")
    assert codes == [200] * 8, codes
    growth_mib = (peak - base) / 1024
    assert growth_mib <= 300, f"8 parallel uploads of a {len(bomb)}-byte {side}x{side} PNG: peak RSS +{growth_mib:.0f} MiB"


def test_upload_over_the_pixel_cap_is_refused_before_decoding(enricher):
    app = create_app(enricher, ServiceConfig(max_image_pixels=1_000_000))
    with TestClient(app) as client:
        r = client.post("/search", files={"image": ("x.png", _png(1001, 1000), "image/png")})
        assert r.status_code == 422 and "cap of 1000000" in r.text, r.text
        r = client.post("/search", files={"image": ("x.png", _png(1000, 1000, "RGB"), "image/png")})
        assert r.status_code == 200, r.text


def test_jpeg_uploads_are_decoded_at_a_reduced_scale():
    from PIL import Image

    from recgen_adapters.service.uploads import DECODE_SIZE, decode_upload

    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000), (10, 120, 200)).save(buf, "JPEG", quality=80)
    # 12 megapixels in the header, but decoded at 1/4 scale (1000x750): under a 1-megapixel cap
    im = decode_upload(buf.getvalue(), max_pixels=1_000_000)
    assert min(im.size) >= DECODE_SIZE and im.size[0] * im.size[1] < 1_000_000
    assert im.getpixel((5, 5))[2] > 150  # the colours survive
    with pytest.raises(ValueError, match="cap"):
        decode_upload(_png(2000, 1000, "RGB"), max_pixels=1_000_000)  # a PNG is always decoded whole


@pytest.mark.parametrize("mode", ["RGBA", "RGB", "P", "L", "LA", "I;16", "1"])
def test_decoded_uploads_are_shrunk_without_changing_colours(mode):
    from PIL import Image

    from recgen_adapters.service.uploads import DECODE_SIZE, decode_upload

    im = Image.new("RGB", (2100, 1000), (250, 250, 250))
    im.paste((200, 20, 20), (0, 0, 1050, 1000))
    im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    out = decode_upload(buf.getvalue(), max_pixels=10_000_000)
    assert out.size == (2100 // 4 + (2100 % 4 > 0), 1000 // 2)  # each side >= DECODE_SIZE
    assert min(out.size) >= DECODE_SIZE
    ref = im.convert("RGB").resize(out.size, Image.BOX)
    left = out.convert("RGB").getpixel((10, 10))
    assert all(abs(a - b) <= 2 for a, b in zip(left, ref.getpixel((10, 10)))), (left, ref.getpixel((10, 10)))


def test_image_slots_bound_concurrent_decodes(enricher, monkeypatch):
    """No more than ``image_decodes`` uploads are decoded at once, however many arrive together."""
    from recgen_adapters.service import routes

    running, peak, lock = [0], [0], threading.Lock()
    real = routes.decode_upload

    def counting(*args, **kwargs):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.2)
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(routes, "decode_upload", counting)
    app = create_app(enricher, ServiceConfig(image_decodes=2))
    png = _png(300, 300, "RGB")
    with TestClient(app) as client:
        codes: list[int] = []
        threads = [threading.Thread(target=lambda: codes.append(
            client.post("/search", files={"image": ("x.png", png, "image/png")}).status_code)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert codes == [200] * 6 and peak[0] == 2, (codes, peak)


# ------------------------------------------------------------------ settings
def test_hardening_settings_are_validated_and_read_from_the_environment():
    from recgen_adapters.service import config_from_env

    cfg = config_from_env({"RECGEN_HEADER_TIMEOUT": "2.5", "RECGEN_IMAGE_DECODES": "3",
                           "RECGEN_MAX_IMAGE_PIXELS": "1000000", "RECGEN_AUTH_FAILURE_RATE": "4"})
    assert (cfg.header_timeout, cfg.image_decodes, cfg.max_image_pixels, cfg.auth_failure_rate) == (2.5, 3, 1_000_000, 4.0)
    for bad in ({"header_timeout": 0}, {"body_timeout": float("inf")}, {"image_decodes": 0}, {"max_image_pixels": 0},
                {"auth_failure_rate": -1.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ServiceConfig(**bad)
    with pytest.raises(ValueError, match="RECGEN_BODY_TIMEOUT"):
        config_from_env({"RECGEN_BODY_TIMEOUT": "soon"})


def test_redaction_filter_keeps_uvicorn_access_records_formattable():
    import logging

    from uvicorn.logging import AccessFormatter

    from recgen_adapters.service.security import RedactKeys

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/x?api_key={KEY}&k=1", "1.1", 401), None)
    assert RedactKeys((KEY,)).filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert KEY not in line and "api_key=[REDACTED]&k=1" in line
    record = logging.LogRecord("uvicorn.error", 5, __file__, 1, "scope=%s",
                               ({"headers": [(b"x-api-key", b"other-secret-1"), (b"authorization", b"Bearer zz-top")]},),
                               None)
    RedactKeys().filter(record)
    assert "other-secret-1" not in record.getMessage() and "zz-top" not in record.getMessage()
    assert re.search(r"x-api-key', b'\[REDACTED\]", record.getMessage())
