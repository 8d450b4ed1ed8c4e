"""Prometheus metrics of one service instance (``GET /metrics``).

Each app gets its own :class:`ServiceMetrics` (its own registry), so several apps in one
process (tests, benchmarks) never share counters.
"""
from __future__ import annotations

import time

from . import _extra  # noqa: F401  (first: a missing extra raises MissingExtraError with the pip line)
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from .holder import RELOAD_RESULTS, Served

__all__ = ["CONTENT_TYPE_LATEST", "HTTP_METHODS", "ServiceMetrics", "request_labels"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

#: The only values of the ``method`` label; any other method a client makes up is ``OTHER``.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})


def request_labels(request: Request, status_code: int) -> tuple[str, str, str]:
    """``(method, route, status)`` labels of a response, each from a closed set.

    Every label value is a new time series kept for the life of the process, so none may
    come from what a client sends (issue 14: made-up method names grew ``/metrics`` to 97 MB):
    the method is one of :data:`HTTP_METHODS` or ``OTHER``, the route is the template the
    request matched (never the raw path, which holds ids) or ``unmatched``, and the status
    is a valid 3-digit code or ``other``.
    """
    method = request.method if request.method in HTTP_METHODS else "OTHER"
    route = getattr(request.scope.get("route"), "path", None) or "unmatched"
    status = str(status_code) if 100 <= status_code <= 599 else "other"
    return method, route, status


class ServiceMetrics:
    """Request counts and latencies, enrichment and preview counts, the served model's size and reloads.

    The ``model_swapped`` and ``reload_result`` methods are the ``on_swap`` and
    ``on_reload`` hooks of :class:`~.holder.ModelHolder`.
    """

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("recgen_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=registry)
        self.latency = Histogram("recgen_http_request_seconds", "Request latency", ["route"], registry=registry,
                                 buckets=LATENCY_BUCKETS)
        self.candidates = Counter("recgen_enriched_candidates", "Candidates enriched", registry=registry)
        self.previews = Counter("recgen_previews_generated", "Previews generated (cache misses)", registry=registry)
        self.items = Gauge("recgen_model_items", "Items in the served model", registry=registry)
        self.users = Gauge("recgen_model_users", "Users in the served model", registry=registry)
        self.reloads = Counter("recgen_model_reloads", "Model reloads by result (reloaded, unchanged, failed)",
                               ["result"], registry=registry)
        self.loaded = Gauge("recgen_model_loaded_timestamp_seconds", "When the served model was swapped in (Unix time)",
                            registry=registry)
        for result in RELOAD_RESULTS:  # exported at 0 from the start, so alerts can use rate()
            self.reloads.labels(result)

    def observe(self, request: Request, response: Response, t0: float) -> None:
        """Count a response and its latency since ``t0`` (``time.perf_counter()``), labelled by
        :func:`request_labels` only."""
        method, route, status = request_labels(request, response.status_code)
        self.requests.labels(method, route, status).inc()
        self.latency.labels(route).observe(time.perf_counter() - t0)

    def model_swapped(self, served: Served) -> None:
        """Gauges of a model that was just swapped in."""
        self.items.set(len(served.enricher.model.items.ids))
        self.users.set(len(served.enricher.model.profiles))
        self.loaded.set(time.time())

    def reload_result(self, result: str) -> None:
        """Count one reload by result (see :data:`~.holder.RELOAD_RESULTS`)."""
        self.reloads.labels(result).inc()

    def render(self) -> bytes:
        """The metrics in Prometheus' text exposition format (:data:`CONTENT_TYPE_LATEST`)."""
        return generate_latest(self.registry)
