"""The endpoints, as one APIRouter per OpenAPI tag (see the package docstring for the table).

Routes read what they need from ``request.app.state`` (set by :func:`.app.create_app`):
``holder`` (the :class:`~.holder.ModelHolder`), ``config``, ``metrics`` and ``previews``.
Each request reads the served model once, through :func:`served_model`, and answers from
that snapshot only. Failures are raised as domain errors; :mod:`.errors` gives their status.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Annotated, Optional

import numpy as np
import pandas as pd

from . import _extra  # noqa: F401  (first: a missing extra raises MissingExtraError with the pip line)
from fastapi import APIRouter, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, PlainTextResponse, Response

from recgen import __version__
from recgen.errors import NotFittedError, UnknownIdError
from recgen.generators.base import png_text

from .errors import InvalidRequest, MalformedRequest, RequestTooLarge, UnsupportedMediaType
from .holder import Served
from .metrics import CONTENT_TYPE_LATEST
from .previews import preview_url
from .schemas import (EnrichedRow, EnrichRequest, EnrichResponse, Health, Modality, RankingResponse,
                      RecommendRequest, ReloadResult, ScoredItem, SearchRequest)
from .settings import MAX_ID_LENGTH, MAX_K, NEUTRAL_USER
from .uploads import decode_upload

__all__ = ["ROUTERS", "RowsJSONResponse", "served_model"]

ops_router = APIRouter(tags=["ops"])
ranking_router = APIRouter(tags=["ranking"])
search_router = APIRouter(tags=["search"])
content_router = APIRouter(tags=["content"])

PNG_RESPONSES = {200: {"content": {"image/png": {}}, "description": "PNG preview"},
                 404: {"description": "unknown item"}, 409: {"description": "no preview generator"}}

# /search reads its body itself (JSON or multipart), so the schema of both forms is declared here;
# its references point at the document's components (Modality is one), not at a "$defs" the
# OpenAPI document does not have (ReDoc stopped on "Invalid reference token: $defs")
_SEARCH_JSON = SearchRequest.model_json_schema(ref_template="#/components/schemas/{model}")
SEARCH_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {k: v for k, v in _SEARCH_JSON.items() if k != "$defs"}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["image"],
        "properties": {"image": {"type": "string", "format": "binary"},
                       "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10},
                       "modality": {"type": "string", "enum": [m.value for m in Modality], "default": "fused"}}}}}}}


def served_model(request: Request) -> Served:
    """The served model for this request: read once, and named in the response header."""
    served = request.app.state.holder.current()
    request.state.recgen_version = served.version
    return served


def _ranking(ids: np.ndarray, scores: np.ndarray) -> RankingResponse:
    return RankingResponse(items=[ScoredItem(item_id=str(i), score=float(s))
                                  for i, s in zip(ids, scores) if i and math.isfinite(float(s))])


# ------------------------------------------------------------------------- ops
@ops_router.get("/healthz", response_model=Health)
def healthz(request: Request) -> Health:
    """Liveness and a summary of the served model (no key needed)."""
    served = served_model(request)
    model = served.enricher.model
    return Health(status="ok", items=len(model.items.ids), users=len(model.profiles),
                  previews=served.enricher.has_previews, blurbs=served.enricher.has_blurbs, version=__version__,
                  model_version=served.version)


@ops_router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format)."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@ops_router.post("/admin/reload", response_model=ReloadResult,
                 responses={409: {"description": "the new model could not be loaded (the old one keeps serving), "
                                                 "or the service was built from an in-memory model"}})
def admin_reload(request: Request, force: bool = False) -> ReloadResult:
    """Load the served directory again (e.g. after ``recgen index`` re-saved it) and swap it in.

    Requests in flight finish on the version they started with. Without ``force`` nothing
    is loaded when the saved directory's fingerprint is the served version.
    """
    # no served_model() here: the version header must name the model swapped in, not the old one
    return ReloadResult(**asdict(request.app.state.holder.reload(force=force)))


# --------------------------------------------------------------------- ranking
class RowsJSONResponse(JSONResponse):
    """A JSON response whose body the route serialized itself (``render`` passes it through)."""

    def render(self, content: str | bytes) -> bytes:
        return content.encode("utf-8") if isinstance(content, str) else content


_ROW_FIELDS = list(EnrichedRow.model_fields)


def _rows_json(out: pd.DataFrame) -> str:
    """The EnrichResponse JSON, built column-wise (a pydantic model per row cost more than the
    enrichment itself): every EnrichedRow field on every row, null where absent or NaN."""
    cols = {}
    for c in _ROW_FIELDS:
        if c not in out.columns:
            cols[c] = [None] * len(out)
            continue
        values = out[c].tolist()
        cols[c] = [None if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v))
                   else (v.item() if isinstance(v, np.generic) else v) for v in values]
    rows = [dict(zip(_ROW_FIELDS, r)) for r in zip(*cols.values())]
    return json.dumps({"rows": rows, "columns": [c for c in out.columns if c in _ROW_FIELDS]}, allow_nan=False)


# response_model=None: the route returns its own RowsJSONResponse; the 200 entry documents its body
@ranking_router.post("/enrich", response_model=None, response_class=RowsJSONResponse,
                     responses={200: {"model": EnrichResponse},
                                409: {"description": "blurbs/previews asked for but no generator was trained"},
                                413: {"description": "too many candidates or body too large"}})
def enrich(req: EnrichRequest, request: Request) -> RowsJSONResponse:
    """recgen features for (user, item) candidates, plus blurbs and preview URLs on request.

    Unknown users or items never fail: their features are null and ``recgen_known_*`` false.
    """
    limit = request.app.state.config.max_candidates
    if len(req.candidates) > limit:
        raise RequestTooLarge(f"{len(req.candidates)} candidates; this service accepts at most {limit} per "
                              f"request: split the batch")
    enricher = served_model(request).enricher
    frame = pd.DataFrame({"user_id": [c.user_id for c in req.candidates],
                          "item_id": [c.item_id for c in req.candidates]})
    out = enricher.enrich(frame, features=req.features, blurbs=req.blurbs, previews=False)
    if req.previews:
        if not enricher.has_previews:
            raise NotFittedError("previews=true needs a trained preview generator in the served directory")
        known = out["recgen_known_item"] if "recgen_known_item" in out else \
            pd.Series(enricher.model.items.rows(frame["item_id"]) >= 0)
        out["recgen_preview"] = [preview_url(u, i) if k else None
                                 for u, i, k in zip(frame["user_id"], frame["item_id"], known)]
    request.app.state.metrics.candidates.inc(len(frame))
    return RowsJSONResponse(_rows_json(out))


@ranking_router.post("/recommend", response_model=RankingResponse,
                     responses={404: {"description": "unknown user, or no history item is known"}})
def recommend(req: RecommendRequest, request: Request) -> RankingResponse:
    """Top-k items by content similarity to the user's taste (or to a session ``history``)."""
    if (req.user_id is None) == (req.history is None):
        raise InvalidRequest("send exactly one of user_id (a known user) or history (item ids)", loc=("body",))
    model = served_model(request).enricher.model
    try:
        ids, scores = model.recommend(req.user_id or "", req.k, exclude_seen=req.exclude_seen, history=req.history)
    except ValueError as exc:
        raise InvalidRequest(str(exc), loc=("body", "history" if req.history is not None else "user_id")) from exc
    return _ranking(ids, scores)


# ---------------------------------------------------------------------- search
@search_router.post("/search", response_model=RankingResponse, openapi_extra=SEARCH_BODY)
async def search(request: Request) -> RankingResponse:
    """Items matching a text query (JSON ``{"query": ..., "k": .., "modality": ..}``) or an
    uploaded image (multipart form with an ``image`` file). ``modality`` picks the index
    searched: ``image`` finds items by their pictures, ``text`` by their descriptions.

    Uploads are refused (422) over the service's pixel cap, decoded at a reduced size, and
    only a few at a time (see :mod:`.uploads`)."""
    model = served_model(request).enricher.model
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            req = SearchRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            # the same answer FastAPI gives a declared body that fails its model
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])}
                                          for e in exc.errors(include_url=False)]) from exc
        fn, arg, k, modality = model.search_text, req.query, req.k, req.modality.value
        if not req.query.strip():
            raise InvalidRequest("query must contain a non-blank character", loc=("body", "query"))
    elif ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=10)
        except Exception as exc:  # malformed multipart bodies come in many shapes
            raise MalformedRequest(f"malformed multipart body: {exc}") from exc
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise InvalidRequest("multipart search needs an 'image' file field", loc=("body", "image"))
        try:
            k = int(form.get("k", 10))
            modality = Modality(form.get("modality", "fused")).value
        except ValueError as exc:
            raise InvalidRequest(f"k must be an integer in [1, {MAX_K}] and modality one of "
                                 f"{[m.value for m in Modality]}", loc=("body",)) from exc
        if not 1 <= k <= MAX_K:
            raise InvalidRequest(f"k must be in [1, {MAX_K}]; got {k}", loc=("body", "k"))
        fn, arg = model.search_image, await upload.read()
        await upload.close()
    else:
        raise UnsupportedMediaType("send application/json {\"query\": ...} or multipart/form-data with an 'image' file")
    if modality not in model.indexes:
        raise InvalidRequest(f"no item has a {modality!r} vector in this model", loc=("body", "modality"))
    if fn != model.search_image:
        try:
            ids, scores = await run_in_threadpool(fn, arg, k, modality=modality)
        except ValueError as exc:
            raise InvalidRequest(str(exc), loc=("body", "query")) from exc
        return _ranking(ids, scores)
    config = request.app.state.config
    # one slot for decode and encode: parallel uploads wait here instead of each decoding at once
    async with request.app.state.image_slots():
        try:
            image = await run_in_threadpool(decode_upload, arg, max_pixels=config.max_image_pixels)
            del arg  # the encoded bytes are not needed any more
            ids, scores = await run_in_threadpool(fn, image, k, modality=modality)
        except ValueError as exc:
            raise InvalidRequest(str(exc), loc=("body", "image")) from exc
    return _ranking(ids, scores)


@search_router.get("/items/{item_id}/similar", response_model=RankingResponse,
                   responses={404: {"description": "unknown item"}})
def similar(item_id: Annotated[str, PathParam(max_length=MAX_ID_LENGTH)], request: Request,
            k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
            modality: Modality = Modality.fused) -> RankingResponse:
    """Items nearest to ``item_id`` (itself excluded) in one modality's index."""
    model = served_model(request).enricher.model
    if modality.value not in model.indexes:
        raise InvalidRequest(f"no item has a {modality.value!r} vector in this model", loc=("query", "modality"))
    return _ranking(*model.similar_items(item_id, k, modality=modality.value))


# --------------------------------------------------------------------- content
@content_router.get("/previews/{user_id}/{item_file}", response_class=Response, responses=PNG_RESPONSES)
def preview(user_id: Annotated[str, PathParam(max_length=MAX_ID_LENGTH)],
            item_file: Annotated[str, PathParam(max_length=MAX_ID_LENGTH + 4, pattern=r".+\.png$")],
            request: Request) -> Response:
    """Preview of ``item_id`` personalized for ``user_id`` (``_`` or an unknown user: neutral).

    Generated on demand (deterministic for a user and item), kept in an in-memory LRU.
    """
    return _preview(request, None if user_id == NEUTRAL_USER else user_id, item_file[:-4])


@content_router.get("/previews", response_class=Response, responses=PNG_RESPONSES)
def preview_by_query(item_id: Annotated[str, Query(min_length=1, max_length=MAX_ID_LENGTH)], request: Request,
                     user_id: Annotated[Optional[str], Query(max_length=MAX_ID_LENGTH)] = None) -> Response:
    """The same preview, for ids that cannot be a path segment (containing ``/``, or ``.``/``..``)
    and for a real user called ``_``; without ``user_id`` the neutral preview."""
    return _preview(request, user_id, item_id)


def _preview(request: Request, user: Optional[str], item_id: str) -> Response:
    served = served_model(request)
    if not served.enricher.has_previews:
        raise NotFittedError("this service has no trained preview generator")
    if item_id not in served.item_ids:
        raise UnknownIdError(f"item_id {item_id!r} is not in the model")
    cache = request.app.state.previews
    key = (served.version, user, item_id)
    png = cache.get(key)
    if png is None:
        png = served.enricher.preview_png(user, item_id)
        cache.put(key, png)
        request.app.state.metrics.previews.inc()
    generated = png_text(png).get("recgen:generated") == "true"  # written by Enricher.preview_png
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600",
                                                          "X-Recgen-Generated": "true" if generated else "false"})


#: In the order of the published schema.
ROUTERS = (ops_router, ranking_router, search_router, content_router)
