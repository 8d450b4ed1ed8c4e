"""Security middleware: API keys, per-key rate limits, the body-size cap, and the model-version header.

* API keys (``X-API-Key: KEY`` or ``Authorization: Bearer KEY``) are compared in constant
  time, against every key, and never logged. ``/healthz`` and the API docs need no key.
* An optional token bucket per key (per client address without auth) answers 429 with
  ``Retry-After``.
* Bodies over the cap answer 413, whether ``Content-Length`` is sent or not.
* ``X-Recgen-Model-Version`` names, on every response, the model version the request read.

The 401, 413 and 429 answers are made here, before any route runs, so they cannot go
through the exception table of :mod:`.errors`.
"""
from __future__ import annotations

import hmac
import json
import math
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

__all__ = ["OPEN_PATHS", "ApiKeyGuard", "BodyLimit", "ModelVersionHeader", "TokenBuckets", "api_key_of",
           "install_middleware"]

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
    app.add_middleware(ApiKeyGuard, keys=config.api_keys, buckets=buckets, observe=observe)
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
    """401 without a valid key, 429 over the rate limit; every response is passed to ``observe``.

    Parameters
    ----------
    app : ASGI app
    keys : tuple of str
        Accepted keys; empty: no auth.
    buckets : TokenBuckets, optional
        The rate limiter; None: no limit.
    observe : callable
        ``observe(request, response, t0)`` for every response.
    """

    def __init__(self, app: ASGIApp, *, keys: tuple[str, ...], buckets: TokenBuckets | None,
                 observe: Callable[[Request, Response, float], None]) -> None:
        super().__init__(app)
        self.keys = tuple(k.encode() for k in keys)
        self.buckets, self.observe = buckets, observe

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
                response = JSONResponse({"detail": "missing or invalid API key: send it as X-API-Key or "
                                                   "Authorization: Bearer"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
                self.observe(request, response, t0)
                return response
            client = got.decode(errors="replace")
        if self.buckets is not None and not open_path:
            who = client or (request.client.host if request.client else "unknown")
            wait = self.buckets.take(who)
            if wait:
                response = JSONResponse({"detail": f"rate limit of {self.buckets.rate:g} requests/s exceeded"},
                                        status_code=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
                self.observe(request, response, t0)
                return response
        response = await call_next(request)
        self.observe(request, response, t0)
        return response


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``max_bytes``, whether Content-Length is sent or not."""

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

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        data = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})


class _TooLarge(Exception):
    """Raised inside ``receive`` to abandon a request whose body went over the cap."""


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
