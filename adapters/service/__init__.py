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
constant time and never logged (log records are filtered, so a key a client puts in a query
string is redacted too); request bodies (chunked ones included), uploads, batch sizes, ``k``
and id lengths are capped; an optional per-key token bucket rate-limits requests, and failed
authentications are rate-limited per client address; image uploads are decoded within a
pixel cap, at a reduced size, a few at a time; metric labels come from closed sets only;
``recgen serve`` closes connections whose request head or body does not arrive in time
(slowloris); no request value is ever used as a file path.

The parts, one concern each:

=================  ==================================================================
:mod:`.settings`   :class:`ServiceConfig`, :func:`config_from_env`, the limits (plain Python)
:mod:`.holder`     :class:`~.holder.ModelHolder`: the served model, reload, polling (plain Python)
:mod:`.schemas`    the pydantic wire models
:mod:`.errors`     the one table from exception classes to HTTP status codes
:mod:`.security`   API keys, rate limits, body cap, model-version header (middleware)
:mod:`.metrics`    the Prometheus registry of one app
:mod:`.previews`   preview URLs and the LRU of generated PNGs
:mod:`.uploads`    image uploads: pixel cap, reduced-size decoding, concurrent-decode slots
:mod:`.routes`     the endpoints, one APIRouter per tag
:mod:`.app`        :func:`create_app` wiring them; :func:`app_from_env` for uvicorn
:mod:`.server`     uvicorn with read timeouts and key-redacting logs (``recgen serve``)
=================  ==================================================================

The names below are resolved on first use: ``settings`` and ``holder`` import without the
``serve`` extra, and any public name of this package raises
:class:`recgen.errors.MissingExtraError` (with the ``pip install`` line) when it is missing.
"""
from __future__ import annotations

from recgen._lazy import lazy_exports

__all__ = ["MODEL_VERSION_HEADER", "ServiceConfig", "app_from_env", "config_from_env", "create_app",
           "read_key_file"]

# name -> submodule defining it (PEP 562): public names, plus the limits tests and clients use
_LAZY = {
    "ServiceConfig": "settings",
    "config_from_env": "settings",
    "read_key_file": "settings",
    "MODEL_VERSION_HEADER": "settings",
    "MAX_CANDIDATES": "settings",
    "MAX_ID_LENGTH": "settings",
    "MAX_K": "settings",
    "MAX_QUERY_LENGTH": "settings",
    "create_app": "app",
    "app_from_env": "app",
    "ModelHolder": "holder",
}


# the app first, even for plain-Python names: using the service needs the whole extra, and
# `recgen serve` relies on that to fail before starting uvicorn
__getattr__, __dir__ = lazy_exports(__name__, {name: f"{__name__}.{mod}" for name, mod in _LAZY.items()},
                                    first=f"{__name__}.app")
