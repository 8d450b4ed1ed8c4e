"""The app factory: settings, model holder, routers and middleware, wired together."""
from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from . import _extra  # noqa: F401  (first: a missing extra raises MissingExtraError with the pip line)
from fastapi import FastAPI

from recgen import __version__
from recgen.enrich import Enricher

from .docs import install_docs
from .errors import install_error_handlers
from .holder import ModelHolder
from .metrics import ServiceMetrics
from .previews import PreviewCache
from .routes import ROUTERS
from .security import install_log_redaction, install_middleware
from .settings import ServiceConfig, config_from_env
from .uploads import UploadSlots

__all__ = ["app_from_env", "create_app"]

DESCRIPTION = "Multimodal item space, similarity features, previews and blurbs for ranking pipelines."


def create_app(source: str | Path | Enricher, config: ServiceConfig | None = None) -> FastAPI:
    """Build the FastAPI app serving a saved recgen directory (or a loaded :class:`Enricher`).

    Parameters
    ----------
    source : path or Enricher
        ``DIR`` with ``model/`` (and ``generators/`` for previews and blurbs). An Enricher
        made by :meth:`Enricher.load` is reloaded from its directory; one built from an
        in-memory model is served as it is (``/admin/reload`` then answers 409).
    config : ServiceConfig, optional
        Auth and limits (defaults: no auth, 10,000 candidates, 8 MiB bodies, no rate limit,
        no periodic reload, 16-megapixel uploads decoded two at a time).

    Returns
    -------
    FastAPI
        Its ``state`` holds ``config``, ``holder`` (the :class:`~.holder.ModelHolder`),
        ``metrics``, ``previews`` and ``image_slots``; the reload poller runs for the app's
        lifespan. The server's loggers get a :class:`~.security.RedactKeys` filter, so no key
        (``config``'s, or one sent in a query string or header) is ever written to a log.
    """
    config = config or ServiceConfig()
    metrics = ServiceMetrics()
    holder = ModelHolder(source, reload_interval=config.reload_interval, on_swap=metrics.model_swapped,
                         on_reload=metrics.reload_result)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        holder.start_polling()
        try:
            yield
        finally:
            holder.stop_polling()

    app = FastAPI(title="recgen", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # .docs serves them without a CDN
    app.state.config, app.state.holder, app.state.metrics = config, holder, metrics
    app.state.previews = PreviewCache(config.preview_cache_size)
    app.state.image_slots = UploadSlots(config.image_decodes)
    install_log_redaction(config.api_keys)
    for router in ROUTERS:
        app.include_router(router)
    install_docs(app)
    install_error_handlers(app)
    install_middleware(app, config, current_version=lambda: holder.current().version, observe=metrics.observe)
    return app


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` / multi-worker ``recgen serve``: reads ``RECGEN_SERVE_DIR``,
    ``RECGEN_USE_GPU`` (``1``: search the FAISS indexes on the GPU, as ``recgen serve --gpu``) and the
    variables of :func:`~.settings.config_from_env`."""
    directory = os.environ.get("RECGEN_SERVE_DIR")
    if not directory:
        raise RuntimeError("RECGEN_SERVE_DIR is not set: point it at a saved recgen directory")
    config = config_from_env()
    if os.environ.get("RECGEN_USE_GPU", "") in ("1", "true", "yes"):
        # loaded here with the GPU option; the holder reloads with the same options
        return create_app(Enricher.load(directory, use_gpu=True), config)
    return create_app(directory, config)
