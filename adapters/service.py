"""HTTP service (FastAPI): enrichment, recommendations, search, similar items, previews.

Start it with ``recgen serve DIR`` (see ``recgen serve --help``) or build the app in code::

    from recgen_adapters.service import ServiceConfig, create_app
    app = create_app("recgen-demo", ServiceConfig(api_keys=("s3cret",)))

Endpoints (OpenAPI schema at ``/openapi.json``, interactive docs at ``/docs``):

==========================================  ================================================
``POST /enrich``                            recgen features (+ blurbs, preview URLs) for candidates
``POST /recommend``                         top-k items for a user (or a session history)
``POST /search``                            JSON ``{"query": ...}`` or multipart with an ``image`` file
``GET /items/{item_id}/similar``            nearest items in one modality
``GET /previews/{user_id}/{item_id}.png``   personalized preview (``_`` as user: neutral)
``GET /previews?user_id=..&item_id=..``     the same for ids that cannot be a path segment
``GET /healthz``                            liveness and model summary (never needs a key)
``GET /metrics``                            Prometheus text format
``POST /admin/reload``                      load a re-saved ``DIR`` and swap it in (no restart)
==========================================  ================================================

Hot reload: a reload (``POST /admin/reload``, or every ``reload_interval`` seconds when the
manifests' fingerprint changed) loads the new model completely off to the side, checksums
verified, then swaps it in with one assignment; each request reads the served model once, so
no request ever mixes two versions. A failed reload (incomplete, corrupt or tampered
directory) keeps the old version serving. Every response names the version that answered it
in ``X-Recgen-Model-Version`` (see :func:`recgen.workdir.directory_version`). With several
worker processes (``recgen serve --workers N``) a ``POST /admin/reload`` reaches one of them:
use ``reload_interval`` there, so that every worker picks the new model up.

Security: API keys (``X-API-Key: KEY`` or ``Authorization: Bearer KEY``) are compared in
constant time and never logged; request bodies, uploads, batch sizes, ``k`` and id lengths
are capped; an optional per-key token bucket rate-limits requests; no request value is ever
used as a file path.
"""
from __future__ import annotations

import hmac
import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd

from recgen.errors import ArtifactError, NotFittedError, UnknownIdError, missing_extra
from recgen.modalities import VECTOR_MODALITIES

try:
    from fastapi import FastAPI, HTTPException, Path as PathParam, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse, Response
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
    from prometheus_client import CONTENT_TYPE_LATEST
    from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra(getattr(exc, "name", None) or "fastapi", "pip install 'recgen[serve]'",
                        "the HTTP service") from exc

from recgen.enrich import Enricher
from recgen.workdir import directory_version

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 256
MAX_CANDIDATES = 10_000
MAX_K = 1000
MAX_QUERY_LENGTH = 2000
NEUTRAL_USER = "_"
MODEL_VERSION_HEADER = "X-Recgen-Model-Version"
UNSAVED_VERSION = "unsaved"  # version of a model served from memory (never saved, cannot be reloaded)
RELOAD_ATTEMPTS = 5  # loads tried per reload: a save may be swapping the directory in right then

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]


# ------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class ServiceConfig:
    """Limits and security of the HTTP service.

    Attributes
    ----------
    api_keys : tuple of str
        Accepted keys; empty disables auth (loopback/dev only). ``recgen serve`` reads them
        from ``--api-key-file`` or ``RECGEN_API_KEYS`` (never from the command line, which
        other users can see in ``ps``).
    max_candidates : int
        Rows per ``/enrich`` request (at most 10,000).
    max_body_bytes : int
        Request body cap (413 above it), uploads included.
    rate_limit : float or None
        Sustained requests per second per key (per client address without auth); None = off.
    rate_burst : int
        Bucket size of the rate limiter.
    preview_cache_size : int
        Generated previews kept in memory (LRU).
    reload_interval : float or None
        Seconds between checks of the served directory's manifests; when their fingerprint
        changed, the new model is loaded and swapped in. None (default) = only on
        ``POST /admin/reload``.
    """

    api_keys: tuple[str, ...] = ()
    max_candidates: int = MAX_CANDIDATES
    max_body_bytes: int = 8 * 1024 * 1024
    rate_limit: float | None = None
    rate_burst: int = 20
    preview_cache_size: int = 1024
    reload_interval: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.api_keys, str):
            raise TypeError("api_keys must be a tuple of keys, not one string")
        if any(not isinstance(k, str) or len(k) < 8 for k in self.api_keys):
            raise ValueError("every API key must be a string of at least 8 characters")
        if not 1 <= self.max_candidates <= MAX_CANDIDATES:
            raise ValueError(f"max_candidates must be in [1, {MAX_CANDIDATES}]; got {self.max_candidates}")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be >= 1024; got {self.max_body_bytes}")
        if self.rate_limit is not None and not (math.isfinite(self.rate_limit) and self.rate_limit > 0):
            raise ValueError(f"rate_limit must be a positive number of requests/s or None; got {self.rate_limit}")
        if self.rate_burst < 1:
            raise ValueError(f"rate_burst must be >= 1; got {self.rate_burst}")
        if self.reload_interval is not None and not (math.isfinite(self.reload_interval)
                                                     and self.reload_interval > 0):
            raise ValueError(f"reload_interval must be a positive number of seconds or None; got {self.reload_interval}")


def config_from_env(environ: dict[str, str] | None = None, **overrides: Any) -> ServiceConfig:
    """ServiceConfig from ``RECGEN_API_KEYS`` (comma-separated) / ``RECGEN_API_KEY_FILE`` (one key per line),
    ``RECGEN_MAX_CANDIDATES``, ``RECGEN_RATE_LIMIT``, ``RECGEN_RATE_BURST``, ``RECGEN_RELOAD_INTERVAL``;
    ``overrides`` win."""
    env = os.environ if environ is None else environ
    keys: list[str] = [k.strip() for k in env.get("RECGEN_API_KEYS", "").split(",") if k.strip()]
    if env.get("RECGEN_API_KEY_FILE"):
        keys += read_key_file(env["RECGEN_API_KEY_FILE"])
    cfg: dict[str, Any] = {"api_keys": tuple(keys)}
    if env.get("RECGEN_MAX_CANDIDATES"):
        cfg["max_candidates"] = int(env["RECGEN_MAX_CANDIDATES"])
    if env.get("RECGEN_RATE_LIMIT"):
        cfg["rate_limit"] = float(env["RECGEN_RATE_LIMIT"])
    if env.get("RECGEN_RATE_BURST"):
        cfg["rate_burst"] = int(env["RECGEN_RATE_BURST"])
    if env.get("RECGEN_RELOAD_INTERVAL"):
        cfg["reload_interval"] = float(env["RECGEN_RELOAD_INTERVAL"])
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return ServiceConfig(**cfg)


def read_key_file(path: str | Path) -> list[str]:
    """API keys from a file, one per line (blank lines and ``#`` comments ignored)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the API key file {path}: {exc.strerror}") from exc
    keys = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not keys:
        raise ValueError(f"the API key file {path} holds no key")
    return keys


# -------------------------------------------------------------------------- models
Modality = Enum("Modality", {m: m for m in VECTOR_MODALITIES}, type=str)  # recgen.modalities


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_bool(v: Any) -> Any:
    """``true`` is not a number: pydantic's lax mode would read it as 1."""
    if isinstance(v, bool):
        raise ValueError("must be an integer, not a boolean")
    return v


def _id_like(v: Any) -> Any:
    """Accept ints as ids ("42"), like the catalog does; reject bools and floats."""
    if isinstance(v, bool) or isinstance(v, float):
        raise ValueError("ids must be strings (or integers)")
    return str(v) if isinstance(v, int) else v


class Candidate(_Strict):
    """One (user, item) candidate."""

    user_id: Id
    item_id: Id

    @field_validator("user_id", "item_id", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> Any:
        return _id_like(v)


class EnrichRequest(_Strict):
    """Candidates to enrich and what to add."""

    candidates: list[Candidate] = Field(min_length=1, max_length=MAX_CANDIDATES)
    features: bool = True
    blurbs: bool = False
    previews: bool = Field(False, description="Add preview URLs (GET them to generate the PNG).")


class EnrichedRow(BaseModel):
    user_id: str
    item_id: str
    recgen_sim_fused: Optional[float] = None
    recgen_sim_text: Optional[float] = None
    recgen_sim_image: Optional[float] = None
    recgen_sim_review: Optional[float] = None
    recgen_known_user: Optional[bool] = None
    recgen_known_item: Optional[bool] = None
    recgen_blurb: Optional[str] = None
    recgen_preview: Optional[str] = None


class EnrichResponse(BaseModel):
    rows: list[EnrichedRow]
    columns: list[str]


class RecommendRequest(_Strict):
    """A known user, or a history of item ids for a user unknown to the model."""

    user_id: Optional[Id] = None
    history: Optional[list[Id]] = Field(None, min_length=1, max_length=1000)
    k: int = Field(10, ge=1, le=MAX_K)
    exclude_seen: bool = True

    @field_validator("user_id", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> Any:
        return _id_like(v)

    @field_validator("history", mode="before")
    @classmethod
    def _history(cls, v: Any) -> Any:
        return [_id_like(x) for x in v] if isinstance(v, list) else v

    _k = field_validator("k", mode="before")(_not_bool)


class ScoredItem(BaseModel):
    item_id: str
    score: float


class RankingResponse(BaseModel):
    items: list[ScoredItem]


class SearchRequest(_Strict):
    query: Annotated[str, StringConstraints(min_length=1, max_length=MAX_QUERY_LENGTH)]
    k: int = Field(10, ge=1, le=MAX_K)
    modality: Modality = Modality.fused

    _k = field_validator("k", mode="before")(_not_bool)


class Health(BaseModel):
    status: str
    items: int
    users: int
    previews: bool
    blurbs: bool
    version: str
    model_version: str = Field(description="Fingerprint of the served model (also in X-Recgen-Model-Version).")


class ReloadResult(BaseModel):
    """Outcome of ``POST /admin/reload``."""

    status: str = Field(description="'reloaded', or 'unchanged' when the saved directory is the one served.")
    model_version: str
    previous_version: str
    seconds: float


@dataclass(frozen=True)
class _Served:
    """One loaded model version and what requests derive from it, swapped in as a whole."""

    enricher: Enricher
    version: str
    item_ids: frozenset


def _served(enricher: Enricher) -> _Served:
    return _Served(enricher, enricher.model_version or UNSAVED_VERSION,
                   frozenset(enricher.model.items.ids.tolist()))


# ---------------------------------------------------------------------- middleware
class _BodyLimit:
    """ASGI middleware: 413 for bodies over the cap, whether Content-Length is sent or not."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    return await _send_json(send, 413, {"detail": f"request body over {self.max_bytes} bytes"})
        seen = 0

        async def limited():
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
            await _send_json(send, 413, {"detail": f"request body over {self.max_bytes} bytes"})


class _TooLarge(Exception):
    pass


class _ModelVersionHeader:
    """ASGI middleware: ``X-Recgen-Model-Version`` on every response, naming the model version the
    request read (the current one for responses made before any handler ran: 401, 413, 429...)."""

    def __init__(self, app, current) -> None:
        self.app, self.current = app, current

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = scope.setdefault("state", {})  # created here, so handlers write into this very dict

        async def send_with_version(message):
            if message["type"] == "http.response.start":
                version = state.get("recgen_version") or self.current()
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (MODEL_VERSION_HEADER.lower().encode(), version.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_version)


async def _send_json(send, status: int, body: dict) -> None:
    import json

    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class _TokenBuckets:
    """Per-key token buckets (thread-safe, bounded number of tracked keys)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 when allowed, else the seconds until a token is available."""
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


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key: tuple, value: bytes) -> None:
        with self._lock:
            self._d[key] = value
            while len(self._d) > self.size:
                self._d.popitem(last=False)


# ------------------------------------------------------------------------------ app
def create_app(source: str | Path | Enricher, config: ServiceConfig | None = None) -> "FastAPI":
    """Build the FastAPI app serving a saved recgen directory (or a loaded :class:`Enricher`).

    Parameters
    ----------
    source : path or Enricher
        ``DIR`` with ``model/`` (and ``generators/`` for previews and blurbs). An Enricher
        made by :meth:`Enricher.load` is reloaded from its directory; one built from an
        in-memory model is served as it is (``/admin/reload`` then answers 409).
    config : ServiceConfig, optional
        Auth and limits (defaults: no auth, 10,000 candidates, 8 MiB bodies, no rate limit,
        no periodic reload).
    """
    from contextlib import asynccontextmanager

    from recgen import __version__

    config = config or ServiceConfig()
    if isinstance(source, Enricher):
        enricher = source
        reload_from = enricher._source  # (directory, Enricher.load kwargs) or None
    else:
        enricher = Enricher.load(source)
        reload_from = enricher._source or (str(Path(source).resolve()), {})
    keys = tuple(k.encode() for k in config.api_keys)
    buckets = _TokenBuckets(config.rate_limit, config.rate_burst) if config.rate_limit else None
    previews = _LRU(config.preview_cache_size)

    registry = CollectorRegistry()
    m_requests = Counter("recgen_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
    m_latency = Histogram("recgen_http_request_seconds", "Request latency", ["route"], registry=registry,
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
    m_candidates = Counter("recgen_enriched_candidates", "Candidates enriched", registry=registry)
    m_previews = Counter("recgen_previews_generated", "Previews generated (cache misses)", registry=registry)
    m_items = Gauge("recgen_model_items", "Items in the served model", registry=registry)
    m_users = Gauge("recgen_model_users", "Users in the served model", registry=registry)
    m_reloads = Counter("recgen_model_reloads", "Model reloads by result (reloaded, unchanged, failed)", ["result"],
                        registry=registry)
    m_loaded = Gauge("recgen_model_loaded_timestamp_seconds", "When the served model was swapped in (Unix time)",
                     registry=registry)
    for result in ("reloaded", "unchanged", "failed"):
        m_reloads.labels(result)

    reload_lock = threading.Lock()  # one reload at a time; requests never take it
    stop_polling = threading.Event()

    def _swap(served: _Served) -> None:
        # the swap is this one assignment: a request holds the _Served it read until it ends
        app.state.served = served
        m_items.set(len(served.enricher.model.items.ids))
        m_users.set(len(served.enricher.model.profiles))
        m_loaded.set(time.time())

    def reload_model(*, force: bool = False) -> ReloadResult:
        """Load the served directory again and swap it in (see the module docstring).

        Raises ArtifactError (after :data:`RELOAD_ATTEMPTS` tries) when the directory cannot
        be loaded; the old version keeps serving.
        """
        if reload_from is None:
            raise ArtifactError("this service was built from an in-memory model: there is no directory to reload")
        directory, kwargs = reload_from
        with reload_lock:
            t0 = time.perf_counter()
            old = app.state.served
            new, error = None, None
            for attempt in range(RELOAD_ATTEMPTS):
                try:
                    if not force and directory_version(directory, kwargs.get("generators")) == old.version:
                        m_reloads.labels("unchanged").inc()
                        return ReloadResult(status="unchanged", model_version=old.version,
                                            previous_version=old.version, seconds=time.perf_counter() - t0)
                    new = Enricher.load(directory, **kwargs)
                    break
                except (ArtifactError, OSError) as exc:
                    # a save may be swapping the directory in right now: wait a little and read again
                    error = exc
                    if attempt + 1 < RELOAD_ATTEMPTS:
                        time.sleep(0.05 * 2 ** attempt)
                except Exception as exc:  # noqa: BLE001 - a broken model must never take the service down
                    error = exc
                    break
            if new is None:
                m_reloads.labels("failed").inc()
                log.error("reload of %s failed, still serving model %s: %s", directory, old.version, error)
                raise ArtifactError(f"reload failed, still serving model {old.version}: {error}") from error
            _swap(_served(new))
            m_reloads.labels("reloaded").inc()
            log.info("reloaded %s: model %s -> %s", directory, old.version, new.model_version)
            return ReloadResult(status="reloaded", model_version=app.state.served.version,
                                previous_version=old.version, seconds=time.perf_counter() - t0)

    def _poll() -> None:
        directory, kwargs = reload_from
        failed_version = None
        while not stop_polling.wait(config.reload_interval):
            try:
                version = directory_version(directory, kwargs.get("generators"))
            except ArtifactError:
                continue  # mid-swap or being rewritten: look again next time
            if version in (app.state.served.version, failed_version):
                continue
            try:
                reload_model()
                failed_version = None
            except ArtifactError:
                failed_version = version  # logged and counted; retried when the directory changes again

    @asynccontextmanager
    async def lifespan(_app):
        poller = None
        if config.reload_interval and reload_from is not None:
            poller = threading.Thread(target=_poll, name="recgen-reload-poll", daemon=True)
            poller.start()
        try:
            yield
        finally:
            stop_polling.set()
            if poller is not None:
                poller.join(timeout=5)

    app = FastAPI(title="recgen", version=__version__, lifespan=lifespan,
                  description="Multimodal item space, similarity features, previews and blurbs for ranking pipelines.")
    app.state.config = config
    app.state.reload = reload_model
    _swap(_served(enricher))

    def _current(request: Request) -> _Served:
        """The served model for this request: read once, and named in the response header."""
        served = app.state.served
        request.state.recgen_version = served.version
        return served

    def _key_of(request: Request) -> str | None:
        got = request.headers.get("x-api-key")
        if got is None:
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                got = auth[7:].strip()
        return got

    @app.middleware("http")
    async def guard(request: Request, call_next):
        t0 = time.perf_counter()
        path = request.url.path
        open_path = path in ("/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
        client = None
        if keys and not open_path:
            got = (_key_of(request) or "").encode()
            # compare against every key, without early exit, so timing does not tell which matched
            ok = False
            for k in keys:
                ok |= hmac.compare_digest(got, k)
            if not ok:
                response = JSONResponse({"detail": "missing or invalid API key: send it as X-API-Key or "
                                                   "Authorization: Bearer"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
                _observe(request, response, t0)
                return response
            client = got.decode(errors="replace")
        if buckets is not None and not open_path:
            who = client or (request.client.host if request.client else "unknown")
            wait = buckets.take(who)
            if wait:
                response = JSONResponse({"detail": f"rate limit of {config.rate_limit:g} requests/s exceeded"},
                                        status_code=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
                _observe(request, response, t0)
                return response
        response = await call_next(request)
        _observe(request, response, t0)
        return response

    def _observe(request: Request, response, t0: float) -> None:
        route = request.scope.get("route")
        name = getattr(route, "path", None) or "unmatched"
        m_requests.labels(request.method, name, str(response.status_code)).inc()
        m_latency.labels(name).observe(time.perf_counter() - t0)

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, exc: UnknownIdError):
        return JSONResponse({"detail": str(exc.args[0]) if exc.args else str(exc)}, status_code=404)

    @app.exception_handler(NotFittedError)
    async def _not_fitted(request: Request, exc: NotFittedError):
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError):
        # FastAPI's own handler echoes the input back and fails (500) on NaN/Infinity, which JSON cannot hold
        return JSONResponse({"detail": _json_safe_errors(exc.errors())}, status_code=422)

    def _ranking(ids: np.ndarray, scores: np.ndarray) -> RankingResponse:
        return RankingResponse(items=[ScoredItem(item_id=str(i), score=float(s))
                                      for i, s in zip(ids, scores) if i and math.isfinite(float(s))])

    # ------------------------------------------------------------------ endpoints
    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz(request: Request) -> Health:
        """Liveness and a summary of the served model (no key needed)."""
        served = _current(request)
        model = served.enricher.model
        return Health(status="ok", items=len(model.items.ids), users=len(model.profiles),
                      previews=served.enricher.has_previews, blurbs=served.enricher.has_blurbs, version=__version__,
                      model_version=served.version)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
    def metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload", response_model=ReloadResult, tags=["ops"],
              responses={409: {"description": "the new model could not be loaded (the old one keeps serving), "
                                              "or the service was built from an in-memory model"}})
    def admin_reload(force: bool = False) -> ReloadResult:
        """Load the served directory again (e.g. after ``recgen index`` re-saved it) and swap it in.

        Requests in flight finish on the version they started with. Without ``force`` nothing
        is loaded when the saved directory's fingerprint is the served version.
        """
        try:
            return reload_model(force=force)
        except ArtifactError as exc:
            raise HTTPException(409, str(exc)) from exc

    row_fields = list(EnrichedRow.model_fields)

    def _json_rows(out: pd.DataFrame) -> Response:
        """The EnrichResponse JSON, built column-wise (a pydantic model per row cost more than the
        enrichment itself): every EnrichedRow field on every row, null where absent or NaN."""
        cols = {}
        for c in row_fields:
            if c not in out.columns:
                cols[c] = [None] * len(out)
                continue
            values = out[c].tolist()
            cols[c] = [None if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v))
                       else (v.item() if isinstance(v, np.generic) else v) for v in values]
        rows = [dict(zip(row_fields, r)) for r in zip(*cols.values())]
        body = {"rows": rows, "columns": [c for c in out.columns if c in row_fields]}
        return Response(json.dumps(body, allow_nan=False), media_type="application/json")

    @app.post("/enrich", response_model=EnrichResponse, tags=["ranking"],
              responses={409: {"description": "blurbs/previews asked for but no generator was trained"},
                         413: {"description": "too many candidates or body too large"}})
    def enrich(req: EnrichRequest, request: Request) -> EnrichResponse:
        """recgen features for (user, item) candidates, plus blurbs and preview URLs on request.

        Unknown users or items never fail: their features are null and ``recgen_known_*`` false.
        """
        if len(req.candidates) > config.max_candidates:
            raise HTTPException(413, f"{len(req.candidates)} candidates; this service accepts at most "
                                     f"{config.max_candidates} per request: split the batch")
        served = _current(request)
        enricher = served.enricher
        frame = pd.DataFrame({"user_id": [c.user_id for c in req.candidates],
                              "item_id": [c.item_id for c in req.candidates]})
        out = enricher.enrich(frame, features=req.features, blurbs=req.blurbs, previews=False)
        if req.previews:
            if not enricher.has_previews:
                raise NotFittedError("previews=true needs a trained preview generator in the served directory")
            known = out["recgen_known_item"] if "recgen_known_item" in out else \
                pd.Series(enricher.model.items.rows(frame["item_id"]) >= 0)
            out["recgen_preview"] = [_preview_url(u, i) if k else None
                                     for u, i, k in zip(frame["user_id"], frame["item_id"], known)]
        m_candidates.inc(len(frame))
        return _json_rows(out)

    @app.post("/recommend", response_model=RankingResponse, tags=["ranking"],
              responses={404: {"description": "unknown user, or no history item is known"}})
    def recommend(req: RecommendRequest, request: Request) -> RankingResponse:
        """Top-k items by content similarity to the user's taste (or to a session ``history``)."""
        if (req.user_id is None) == (req.history is None):
            raise _invalid("send exactly one of user_id (a known user) or history (item ids)", "body")
        model = _current(request).enricher.model
        try:
            ids, scores = model.recommend(req.user_id or "", req.k, exclude_seen=req.exclude_seen,
                                          history=req.history)
        except ValueError as exc:
            raise _invalid(str(exc), "body", "history" if req.history is not None else "user_id") from exc
        return _ranking(ids, scores)

    @app.post("/search", response_model=RankingResponse, tags=["search"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": SearchRequest.model_json_schema()},
                  "multipart/form-data": {"schema": {
                      "type": "object", "required": ["image"],
                      "properties": {"image": {"type": "string", "format": "binary"},
                                     "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10},
                                     "modality": {"type": "string", "enum": [m.value for m in Modality],
                                                  "default": "fused"}}}}}}})
    async def search(request: Request) -> RankingResponse:
        """Items matching a text query (JSON ``{"query": ..., "k": .., "modality": ..}``) or an
        uploaded image (multipart form with an ``image`` file). ``modality`` picks the index
        searched: ``image`` finds items by their pictures, ``text`` by their descriptions."""
        from starlette.concurrency import run_in_threadpool

        model = _current(request).enricher.model
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            try:
                req = SearchRequest.model_validate_json(await request.body())
            except ValidationError as exc:
                raise HTTPException(422, _json_safe_errors(exc.errors(include_url=False), loc=("body",))) from exc
            fn, arg, k, modality = model.search_text, req.query, req.k, req.modality.value
            if not req.query.strip():
                raise _invalid("query must contain a non-blank character", "body", "query")
        elif ctype == "multipart/form-data":
            try:
                form = await request.form(max_files=1, max_fields=10)
            except Exception as exc:  # malformed multipart bodies come in many shapes
                raise HTTPException(400, f"malformed multipart body: {exc}") from exc
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise _invalid("multipart search needs an 'image' file field", "body", "image")
            try:
                k = int(form.get("k", 10))
                modality = Modality(form.get("modality", "fused")).value
            except ValueError as exc:
                raise _invalid(f"k must be an integer in [1, {MAX_K}] and modality one of "
                               f"{[m.value for m in Modality]}", "body") from exc
            if not 1 <= k <= MAX_K:
                raise _invalid(f"k must be in [1, {MAX_K}]; got {k}", "body", "k")
            fn, arg = model.search_image, await upload.read()
        else:
            raise HTTPException(415, "send application/json {\"query\": ...} or multipart/form-data with an 'image' file")
        if modality not in model.indexes:
            raise _invalid(f"no item has a {modality!r} vector in this model", "body", "modality")
        try:
            ids, scores = await run_in_threadpool(fn, arg, k, modality=modality)
        except ValueError as exc:
            raise _invalid(str(exc), "body", "image" if fn == model.search_image else "query") from exc
        return _ranking(ids, scores)

    @app.get("/items/{item_id}/similar", response_model=RankingResponse, tags=["search"],
             responses={404: {"description": "unknown item"}})
    def similar(item_id: Annotated[str, PathParam(max_length=MAX_ID_LENGTH)], request: Request,
                k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
                modality: Modality = Modality.fused) -> RankingResponse:
        """Items nearest to ``item_id`` (itself excluded) in one modality's index."""
        model = _current(request).enricher.model
        if modality.value not in model.indexes:
            raise _invalid(f"no item has a {modality.value!r} vector in this model", "query", "modality")
        return _ranking(*model.similar_items(item_id, k, modality=modality.value))

    @app.get("/previews/{user_id}/{item_file}", tags=["content"], response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "PNG preview"},
                        404: {"description": "unknown item"}, 409: {"description": "no preview generator"}})
    def preview(user_id: Annotated[str, PathParam(max_length=MAX_ID_LENGTH)],
                item_file: Annotated[str, PathParam(max_length=MAX_ID_LENGTH + 4, pattern=r".+\.png$")],
                request: Request) -> Response:
        """Preview of ``item_id`` personalized for ``user_id`` (``_`` or an unknown user: neutral).

        Generated on demand (deterministic for a user and item), kept in an in-memory LRU.
        """
        return _preview(_current(request), None if user_id == NEUTRAL_USER else user_id, item_file[:-4])

    @app.get("/previews", tags=["content"], response_class=Response,
             responses={200: {"content": {"image/png": {}}, "description": "PNG preview"},
                        404: {"description": "unknown item"}, 409: {"description": "no preview generator"}})
    def preview_by_query(item_id: Annotated[str, Query(min_length=1, max_length=MAX_ID_LENGTH)], request: Request,
                         user_id: Annotated[Optional[str], Query(max_length=MAX_ID_LENGTH)] = None) -> Response:
        """The same preview, for ids that cannot be a path segment (containing ``/``, or ``.``/``..``)
        and for a real user called ``_``; without ``user_id`` the neutral preview."""
        return _preview(_current(request), user_id, item_id)

    def _preview(served: _Served, user: Optional[str], item_id: str) -> Response:
        if not served.enricher.has_previews:
            raise NotFittedError("this service has no trained preview generator")
        if item_id not in served.item_ids:
            raise UnknownIdError(f"item_id {item_id!r} is not in the model")
        key = (served.version, user, item_id)
        png = previews.get(key)
        if png is None:
            png = served.enricher.preview_png(user, item_id)
            previews.put(key, png)
            m_previews.inc()
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    app.add_middleware(_ModelVersionHeader, current=lambda: app.state.served.version)
    return _with_body_limit(app, config.max_body_bytes)


def _json_safe_errors(errors, *, loc: tuple = ()) -> list[dict[str, Any]]:
    """Validation errors as JSON can hold them: ``loc``, ``msg``, ``type`` and the offending input when
    it is a scalar (non-finite floats as strings, long strings cut), never an exception object."""
    out = []
    for e in errors:
        item: dict[str, Any] = {"loc": [*loc, *e.get("loc", ())], "msg": str(e.get("msg", "")),
                                "type": str(e.get("type", "value_error"))}
        value = e.get("input")
        if isinstance(value, float) and not math.isfinite(value):
            item["input"] = str(value)
        elif isinstance(value, str):
            item["input"] = value if len(value) <= 100 else value[:100] + "..."
        elif value is None or isinstance(value, (bool, int, float)):
            item["input"] = value
        out.append(item)
    return out


def _invalid(message: str, *loc: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors (``detail``: a list of ``{loc, msg, type}``),
    as the OpenAPI schema of every operation promises."""
    return HTTPException(422, [{"loc": list(loc), "msg": message, "type": "value_error"}])


def _path_safe(part: str) -> bool:
    return "/" not in part and "\\" not in part and part not in (".", "..")


def _preview_url(user: str, item: str) -> str:
    """``/previews/{user}/{item}.png``, or the query form when an id cannot be a path segment
    (uvicorn decodes ``%2F`` before routing; clients collapse ``.``/``..``) or the user is ``_``."""
    if _path_safe(user) and _path_safe(item) and user != NEUTRAL_USER:
        return f"/previews/{quote(user, safe='')}/{quote(item, safe='')}.png"
    return f"/previews?{urlencode({'user_id': user, 'item_id': item})}"


def _with_body_limit(app: "FastAPI", max_bytes: int) -> "FastAPI":
    app.add_middleware(_BodyLimit, max_bytes=max_bytes)
    return app


def app_from_env() -> "FastAPI":
    """App factory for ``uvicorn --factory`` / multi-worker ``recgen serve``: reads ``RECGEN_SERVE_DIR``
    and the variables of :func:`config_from_env`."""
    directory = os.environ.get("RECGEN_SERVE_DIR")
    if not directory:
        raise RuntimeError("RECGEN_SERVE_DIR is not set: point it at a saved recgen directory")
    return create_app(directory, config_from_env())


__all__ = ["ServiceConfig", "create_app", "config_from_env", "read_key_file", "app_from_env",
           "MODEL_VERSION_HEADER"]
