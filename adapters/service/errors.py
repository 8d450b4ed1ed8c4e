"""Errors carry their status: one table maps exception classes to HTTP status codes.

Routes raise domain errors (recgen's own, or the request errors below) and never build a
status code by hand; :func:`install_error_handlers` answers each with the status of
:data:`STATUS_CODES`. As in Starlette's own lookup, the most specific class of an
exception's MRO that the table names wins, so ``UnknownIdError`` (a ``KeyError``) is 404
and :class:`RequestTooLarge` (a ``ValueError``) is 413, not 422.

Bodies: ``{"detail": "message"}``, except 422s, which keep the shape of FastAPI's own
validation errors (``detail``: a list of ``{loc, msg, type}``) as the OpenAPI schema of
every operation promises. Every body can be encoded: text a client sent that UTF-8 cannot
hold (a lone surrogate such as ``"\ud800"`` in a JSON id) is written escaped, as
``\ud800`` (see :func:`encodable`).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from . import _extra  # noqa: F401  (first: a missing extra raises MissingExtraError with the pip line)
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from recgen.errors import ArtifactError, NotFittedError, UnknownIdError

__all__ = ["STATUS_CODES", "InvalidRequest", "MalformedRequest", "RequestTooLarge", "UnsupportedMediaType",
           "encodable", "install_error_handlers", "status_code_of"]


class InvalidRequest(ValueError):
    """A request the schema accepts but a check it cannot express refuses (422).

    Parameters
    ----------
    message : str
        What is wrong and how to fix it.
    loc : tuple of str
        Where, as in FastAPI's validation errors: ``("body", "history")``, ``("query", "modality")``.
    """

    def __init__(self, message: str, *, loc: tuple[str, ...]) -> None:
        super().__init__(message)
        self.loc = loc


class RequestTooLarge(ValueError):
    """More work in one request than this service accepts (413): split it."""


class UnsupportedMediaType(ValueError):
    """A body in a content type the operation does not read (415)."""


class MalformedRequest(ValueError):
    """A body that cannot be parsed at all (400)."""


#: Exception class -> HTTP status of the answer (see the module docstring for the lookup).
STATUS_CODES: dict[type[Exception], int] = {
    MalformedRequest: 400,
    UnknownIdError: 404,         # an id the served model does not know
    NotFittedError: 409,         # blurbs/previews asked of a directory saved without generators
    ArtifactError: 409,          # a reload that failed (the old model keeps serving), or an in-memory model
    RequestTooLarge: 413,
    UnsupportedMediaType: 415,
    InvalidRequest: 422,
    RequestValidationError: 422,  # the request models of schemas.py refused the request
    ValueError: 422,             # recgen raises ValueError (or a subclass) only for bad input
}


def status_code_of(exc: BaseException) -> int | None:
    """The status :data:`STATUS_CODES` gives ``exc`` (its most specific listed class), or None."""
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Answer every exception class of :data:`STATUS_CODES` with its status."""
    for cls in STATUS_CODES:
        app.add_exception_handler(cls, _answer)


async def _answer(request: Request, exc: Exception) -> JSONResponse:
    # encodable(): JSONResponse encodes to UTF-8, and a lone surrogate echoed from the request
    # made that fail (a UnicodeEncodeError, so a ValueError answered with the codec's message
    # instead of the validation error: issue 14)
    return JSONResponse(encodable({"detail": _detail(exc)}), status_code=status_code_of(exc))


def encodable(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, scalars) with every string UTF-8 can encode.

    Lone surrogates (which JSON's ``\\uD800`` escapes and Python's decoders let through)
    are written as the text ``\\ud800``; everything else is returned as it is.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encodable(v) for v in value]
    return value


def _detail(exc: Exception) -> Any:
    if isinstance(exc, RequestValidationError):
        # FastAPI's own handler echoes the input back and fails (500) on NaN/Infinity, which JSON cannot hold
        return json_safe_errors(exc.errors())
    if isinstance(exc, InvalidRequest):
        return [{"loc": list(exc.loc), "msg": str(exc), "type": "value_error"}]
    if status_code_of(exc) == 422:
        return [{"loc": [], "msg": str(exc), "type": "value_error"}]
    return str(exc)


def json_safe_errors(errors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation errors as JSON can hold them.

    Each error keeps ``loc``, ``msg``, ``type`` and the offending ``input`` when it is a
    scalar (non-finite floats as strings, long strings cut); never an exception object
    from pydantic's ``ctx``.
    """
    out = []
    for e in errors:
        item: dict[str, Any] = {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
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
