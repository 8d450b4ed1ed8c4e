"""Security middleware: API keys, per-key rate limits, the body-size cap, and the model-version header.

* API keys (``X-API-Key: KEY`` or ``Authorization: Bearer KEY``) are compared in constant
  time, against every key, and never logged. ``/healthz`` and the API docs need no key.
* An optional token bucket per key (per client address without auth) answers 429 with
  ``Retry-After``. Failed authentications take from their own bucket per client address
  (on by default), so guessing keys is throttled to 429 as well.
* Bodies over the cap answer 413, whether ``Content-Length`` is sent or not: streamed
  (chunked) bytes are counted as they arrive, and the route never sees the cut body.
* :class:`RedactKeys`, a logging filter, removes keys from log records: query parameters
  named like a key (``api_key=``, ``token=``...), key headers, and the configured keys.
* ``X-Recgen-Model-Version`` names, on every response, the model version the request read.

The 401, 413 and 429 answers are made here, before any route runs, so they cannot go
through the exception table of :mod:`.errors`.
"""
from __future__ import annotations

import hmac
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from typing import Callable

from . import _extra  # noqa: F401  (first: a missing extra raises MissingExtraError with the pip line)
from fastapi import FastAPI
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .docs import DOCS_PATHS
from .settings import MODEL_VERSION_HEADER, ServiceConfig

__all__ = ["OPEN_PATHS", "ApiKeyGuard", "BodyLimit", "ModelVersionHeader", "RedactKeys", "TokenBuckets",
           "api_key_of", "install_log_redaction", "install_middleware"]

#: Paths answered without a key: probes and the API's own documentation.
OPEN_PATHS = frozenset({"/healthz", "/openapi.json", *DOCS_PATHS})


def install_middleware(app: FastAPI, config: ServiceConfig, *, current_version: Callable[[], str],
                       observe: Callable[[Request, Response, float], None]) -> None:
    """Add the security middleware to ``app``.

    Parameters
    ----------
    app : FastAPI
    config : ServiceConfig
        Keys, rate limit and body cap.
    current_version : callable
        The served model's version, for responses made before any route read it.
    observe : callable
        ``observe(request, response, t0)``, called for every response the guard sees
        (its own 401/429 included), e.g. :meth:`.metrics.ServiceMetrics.observe`.
    """
    # added innermost first: the body cap runs before anything else reads the body, the
    # version header sees every response, and the guard answers before any route runs
    buckets = TokenBuckets(config.rate_limit, config.rate_burst) if config.rate_limit else None
    failures = (TokenBuckets(config.auth_failure_rate, config.auth_failure_burst)
                if config.auth_failure_rate else None)
    app.add_middleware(ApiKeyGuard, keys=config.api_keys, buckets=buckets, failures=failures, observe=observe)
    app.add_middleware(ModelVersionHeader, current=current_version)
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)


def api_key_of(request: Request) -> str | None:
    """The key a request sends, as ``X-API-Key`` or ``Authorization: Bearer``; None without one."""
    got = request.headers.get("x-api-key")
    if got is None:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            got = auth[7:].strip()
    return got


class TokenBuckets:
    """Per-key token buckets (thread-safe, bounded number of tracked keys).

    Parameters
    ----------
    rate : float
        Tokens added per second (sustained requests/s).
    burst : int
        Bucket size: requests allowed at once after a quiet period.
    max_keys : int
        Keys tracked; the least recently seen are forgotten first (they start full again).
    """

    def __init__(self, rate: float, burst: int, *, max_keys: int = 100_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when allowed, else the seconds until a token is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
            if not wait:
                tokens -= 1.0
            self._state[key] = (tokens, now)
            while len(self._state) > self.max_keys:
                self._state.popitem(last=False)
        return wait


class ApiKeyGuard(BaseHTTPMiddleware):
    """401 without a valid key, 429 over the rate limit (or over the failed-authentication
    limit); every response is passed to ``observe``.

    Parameters
    ----------
    app : ASGI app
    keys : tuple of str
        Accepted keys; empty: no auth.
    buckets : TokenBuckets, optional
        The rate limiter; None: no limit.
    failures : TokenBuckets, optional
        Failed authentications per client address; None: no limit.
    observe : callable
        ``observe(request, response, t0)`` for every response.
    """

    def __init__(self, app: ASGIApp, *, keys: tuple[str, ...], buckets: TokenBuckets | None,
                 observe: Callable[[Request, Response, float], None], failures: TokenBuckets | None = None) -> None:
        super().__init__(app)
        self.keys = tuple(k.encode() for k in keys)
        self.buckets, self.failures, self.observe = buckets, failures, observe

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        t0 = time.perf_counter()
        open_path = request.url.path in OPEN_PATHS
        client = None
        if self.keys and not open_path:
            got = (api_key_of(request) or "").encode()
            # compare against every key, without early exit, so timing does not tell which matched
            ok = False
            for k in self.keys:
                ok |= hmac.compare_digest(got, k)
            if not ok:
                # a wrong key costs a token of the client address's failure bucket: guessing
                # keys (or flooding 401s) is throttled like any other request
                wait = self.failures.take(_address(request)) if self.failures is not None else 0.0
                if wait:
                    response = _too_many(self.failures, wait, "failed authentications")
                    self.observe(request, response, t0)
                    return response
                response = JSONResponse({"detail": "missing or invalid API key: send it as X-API-Key or "
                                                   "Authorization: Bearer"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
                self.observe(request, response, t0)
                return response
            client = got.decode(errors="replace")
        if self.buckets is not None and not open_path:
            wait = self.buckets.take(client or _address(request))
            if wait:
                response = _too_many(self.buckets, wait, "requests")
                self.observe(request, response, t0)
                return response
        response = await call_next(request)
        self.observe(request, response, t0)
        return response


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _too_many(buckets: TokenBuckets, wait: float, what: str) -> JSONResponse:
    return JSONResponse({"detail": f"rate limit of {buckets.rate:g} {what}/s exceeded"},
                        status_code=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``max_bytes``, whether Content-Length is sent or not.

    A streamed (chunked) body is counted as it arrives: the chunk that crosses the cap is
    never passed on. This middleware answers 413 itself at once, then tells the app the
    client went away (``http.disconnect``), so no route ever parses a cut body, and drops
    whatever the app still tries to answer. (Raising inside ``receive`` instead let FastAPI
    turn the error into a 400 "error parsing the body", or a 500 in ``/search``: issue 14.)
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    return await self._refuse(send)
        seen = 0
        refused = started = False

        async def limited() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:  # the 413 is the answer: the app's own reply to the "disconnect" is dropped
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not refused:
                raise
            # the app failed on the body it was told was cut off: the 413 already answered it

    async def _refuse(self, send: Send) -> None:
        data = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})


class ModelVersionHeader:
    """ASGI middleware: ``X-Recgen-Model-Version`` on every response, naming the model version the
    request read (the current one for responses made before any route ran: 401, 413, 429...).

    Routes record the version they read in ``request.state.recgen_version``.
    """

    def __init__(self, app: ASGIApp, *, current: Callable[[], str]) -> None:
        self.app, self.current = app, current

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})  # created here, so routes write into this very dict
        header = MODEL_VERSION_HEADER.lower().encode()

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                version = state.get("recgen_version") or self.current()
                message = {**message, "headers": [*message.get("headers", ()), (header, version.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_version)


# query parameters whose value is a secret, and "name: value" / "name=value" pairs in free text
_SECRET_NAMES = r"(?:api[_-]?key|apikey|x-api-key|key|token|access[_-]?token|auth|authorization|password|secret)"
_SECRET_QUERY = re.compile(r"(?i)((?<![\w%.-])" + _SECRET_NAMES + r"=)[^&;#\s\"']*")
_SECRET_HEADER = re.compile(r"(?i)((?:x-api-key|authorization)[\"']?\s*[:=,]\s*(?:b?[\"'])?(?:bearer\s+|basic\s+)?)"
                            r"[^\s\"',;)]+")
REDACTED = "[REDACTED]"


class RedactKeys(logging.Filter):
    """Logging filter that removes API keys from every record it sees; never drops a record.

    Redacted: the value of any query parameter named like a secret (``api_key``, ``key``,
    ``token``, ``password``...; uvicorn's access log writes the full query string), the value
    of ``X-API-Key``/``Authorization`` header pairs in messages, and any occurrence of the
    configured keys. String arguments are redacted one by one, so formatters that read
    ``record.args`` by position (uvicorn's ``AccessFormatter``) keep working.

    Parameters
    ----------
    keys : iterable of str
        The accepted keys (redacted wherever they appear).
    """

    def __init__(self, keys: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.keys = tuple(sorted(keys, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """``text`` with every key it holds replaced by ``[REDACTED]``."""
        for k in self.keys:
            text = text.replace(k, REDACTED)
        return _SECRET_HEADER.sub(lambda m: m.group(1) + REDACTED, _SECRET_QUERY.sub(r"\1" + REDACTED, text))

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self.redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is the handler's to report, not ours
            return True
        redacted = self.redact(message)
        if redacted != message:
            # a key inside a non-string argument (uvicorn's trace log prints the ASGI scope, headers
            # included): the record becomes its redacted text
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


#: Loggers of the server stack; :func:`install_log_redaction` filters each of them.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "starlette", "recgen_adapters", "recgen")


def install_log_redaction(keys: tuple[str, ...] = ()) -> RedactKeys:
    """Add a :class:`RedactKeys` to the server's loggers and to every handler of the root and
    uvicorn loggers (a logger's filter does not see records propagated from its children; a
    handler's does). Idempotent: an earlier filter installed here is replaced."""
    redactor = RedactKeys(keys)
    targets: list[logging.Filterer] = [logging.getLogger(name) for name in SERVER_LOGGERS]
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        targets += logging.getLogger(name).handlers
    for target in targets:
        for old in [f for f in target.filters if isinstance(f, RedactKeys)]:
            target.removeFilter(old)
        target.addFilter(redactor)
    return redactor
