"""The ``serve`` extra, checked in one place.

Every module of the service that needs FastAPI, Starlette, pydantic or prometheus-client
imports this one first, so a missing extra raises :class:`recgen.errors.MissingExtraError`
with the exact ``pip install`` line instead of a bare ``ModuleNotFoundError``.
:mod:`.settings` and :mod:`.holder` do not import it: they are plain Python.
"""
from __future__ import annotations

from recgen.errors import missing_extra

PIP_LINE = "pip install 'recgen[serve]'"

try:
    import fastapi  # noqa: F401
    import prometheus_client  # noqa: F401
    import pydantic  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by tests/test_service_holder.py
    raise missing_extra(getattr(exc, "name", None) or "fastapi", PIP_LINE, "the HTTP service") from exc
