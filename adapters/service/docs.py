"""The API's documentation pages (``/docs``: Swagger UI, ``/redoc``: ReDoc), served offline.

FastAPI's default pages load their JavaScript, CSS and favicon from public CDNs, so on a
machine without internet access (most production networks, and every test machine here)
``/docs`` stayed a blank page. Here the same pages (FastAPI's own ``get_swagger_ui_html`` and
``get_redoc_html``) load those files from the service itself, from the copies that the
``fastapi-offline`` package ships (Swagger UI 5, which reads OpenAPI 3.1, and ReDoc 2), and
without Google Fonts. Like the pages, the files need no API key (:data:`DOCS_PATHS`).

The app must be made with ``FastAPI(docs_url=None, redoc_url=None)`` so that FastAPI does not
add its CDN pages first.
"""
from __future__ import annotations

import base64
from importlib import resources

from . import _extra  # noqa: F401  (first: a missing extra raises MissingExtraError with the pip line)
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.requests import Request

from recgen.errors import missing_extra

__all__ = ["DOCS_PATHS", "install_docs"]

DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"
#: URL path -> (file of fastapi-offline's ``static`` folder, media type). A closed table: no
#: path parameter, so no request can name another file.
ASSETS = {
    "/docs/swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript"),
    "/docs/swagger-ui.css": ("swagger-ui.css", "text/css"),
    "/docs/favicon.png": ("favicon.png", "image/png"),
    "/redoc/redoc.standalone.js": ("redoc.standalone.js", "text/javascript"),
}
#: ReDoc's sidebar shows Redocly's logo from Redocly's CDN (and hides it when that fails). The
#: bundle is served with an empty inline image there instead: no request leaves the service.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
EMPTY_IMAGE = b"data:image/svg+xml;base64," + base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg"/>')
#: Every path of the documentation: open without a key (see :data:`.security.OPEN_PATHS`).
DOCS_PATHS = frozenset({DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL, *ASSETS})


def _static_folder():
    try:
        return resources.files("fastapi_offline") / "static"
    except ModuleNotFoundError as exc:
        raise missing_extra("fastapi_offline", _extra.PIP_LINE, "the service's offline API docs") from exc


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and their files to ``app`` (none in the schema)."""
    static = _static_folder()
    files = {path: static / name for path, (name, _) in ASSETS.items()}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:  # a broken install, found at start-up rather than as a blank page
        raise FileNotFoundError(f"API docs files missing: {missing}; reinstall with {_extra.PIP_LINE}")

    def root(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        r = root(request)
        return get_swagger_ui_html(openapi_url=r + app.openapi_url, title=f"{app.title} - Swagger UI",
                                   oauth2_redirect_url=r + OAUTH2_REDIRECT_URL,
                                   swagger_js_url=r + "/docs/swagger-ui-bundle.js",
                                   swagger_css_url=r + "/docs/swagger-ui.css", swagger_favicon_url=r + "/docs/favicon.png",
                                   swagger_ui_parameters=app.swagger_ui_parameters)

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        r = root(request)
        return get_redoc_html(openapi_url=r + app.openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=r + "/redoc/redoc.standalone.js", redoc_favicon_url=r + "/docs/favicon.png",
                              with_google_fonts=False)

    for path, (_, media_type) in ASSETS.items():
        endpoint = (_bytes_endpoint(files[path].read_bytes().replace(REDOC_LOGO, EMPTY_IMAGE), media_type)
                    if path == "/redoc/redoc.standalone.js" else _file_endpoint(files[path], media_type))
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)


# the files change only with the installed package: a day in the browser's cache
_CACHE = {"Cache-Control": "public, max-age=86400"}


def _file_endpoint(file, media_type: str):
    async def asset() -> FileResponse:
        return FileResponse(str(file), media_type=media_type, headers=_CACHE)

    return asset


def _bytes_endpoint(content: bytes, media_type: str):
    async def asset() -> Response:
        return Response(content, media_type=media_type, headers=_CACHE)

    return asset
