"""Running the app under uvicorn: read timeouts on connections, and logs that never hold a key.

``recgen serve`` calls :func:`run`. What uvicorn does not do by itself (issue 14):

* **Read timeouts** (slowloris). uvicorn closes an idle keep-alive connection after a
  response, but a new connection, or one that trickles a request head byte by byte (each
  byte cancels the keep-alive timer), was never closed. :class:`TimeoutH11Protocol` gives
  every request head ``header_timeout`` seconds from the connection (or from the first byte
  after the previous response) to arrive complete, else answers 408 and closes; a silent
  new connection is closed after the same time. A request body gets ``body_timeout``
  seconds once its head arrived, then the connection is closed (the app sees a disconnect).
* **No key in any log**: :func:`log_config` is uvicorn's logging set-up with a
  :class:`~.security.RedactKeys` filter on every handler (the access log writes the full
  query string, where clients sometimes put ``?api_key=``); :func:`.app.create_app` adds
  one that also knows the configured keys.

The timeouts are read from the environment (``RECGEN_HEADER_TIMEOUT``,
``RECGEN_BODY_TIMEOUT``; :func:`.settings.config_from_env`), once per worker process.
"""
from __future__ import annotations

import asyncio
import copy
import functools
import logging
import os
from typing import Any

from . import _extra  # noqa: F401  (first: a missing extra raises MissingExtraError with the pip line)
import h11
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import ENV_FIELDS, ServiceConfig

__all__ = ["PROTOCOL", "TimeoutH11Protocol", "log_config", "run"]

#: The protocol class ``recgen serve`` gives uvicorn (an import string, so every worker process loads it).
PROTOCOL = f"{__name__}:TimeoutH11Protocol"

log = logging.getLogger("uvicorn.error")

_408 = b"Request head not received in time\n"
_408_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                 b"connection: close\r\ncontent-length: " + str(len(_408)).encode() + b"\r\n\r\n" + _408)


@functools.lru_cache(maxsize=1)
def read_timeouts() -> tuple[float, float]:
    """``(header_timeout, body_timeout)`` of this process: the environment's, else the defaults."""
    values: dict[str, Any] = {}
    for field in ("header_timeout", "body_timeout"):
        var, kind = ENV_FIELDS[field]
        if os.environ.get(var):
            values[field] = kind(os.environ[var])
    cfg = ServiceConfig(**values)
    return cfg.header_timeout, cfg.body_timeout


class TimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head and each request body.

    The head deadline is a total: trickling bytes does not extend it (a per-read idle timer
    would, which is what slowloris exploits).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.body_timeout = read_timeouts()
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_kind: str | None = None  # "head" or "body"

    # -------------------------------------------------------------- timers
    def _arm(self, kind: str) -> None:
        self._disarm()
        seconds = self.header_timeout if kind == "head" else self.body_timeout
        handler = self._head_timed_out if kind == "head" else self._body_timed_out
        self._deadline, self._deadline_kind = self.loop.call_later(seconds, handler), kind

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self._deadline_kind = None

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _track(self, before: Any) -> None:
        """Start, keep or stop the deadlines after the parser ran (``before``: the cycle before it)."""
        if self.transport.is_closing():
            self._disarm()
        elif self.cycle is not before:  # a request head completed
            if self.cycle.more_body:
                self._arm("body")
            else:
                self._disarm()
        elif self._deadline_kind == "body" and not self.cycle.more_body:
            self._disarm()  # the whole body arrived
        elif self._deadline_kind is None and self._between_requests():
            self._arm("head")  # the first bytes of the next request head

    # ---------------------------------------------------- protocol interface
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("head")  # a connection that never sends a request is closed too

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)
        self._track(before)

    def on_response_complete(self) -> None:
        before = self.cycle
        super().on_response_complete()  # arms uvicorn's keep-alive timer; may start a pipelined request
        if self.cycle is not before:
            self._track(before)
        elif self._deadline_kind == "head":
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # ------------------------------------------------------------ timeouts
    def _head_timed_out(self) -> None:
        self._deadline = self._deadline_kind = None
        if self.transport.is_closing() or not self._between_requests():
            return
        partial = bool(self.conn.trailing_data[0])
        log.debug("%s: request head not complete within %g s; connection closed",
                  f"{self.client[0]}:{self.client[1]}" if self.client else "client", self.header_timeout)
        if partial:  # a client that sent nothing gets no answer (browsers open spare connections)
            self.transport.write(_408_RESPONSE)
        self.transport.close()

    def _body_timed_out(self) -> None:
        self._deadline = self._deadline_kind = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body:
            return
        log.debug("%s: request body not complete within %g s; connection closed",
                  f"{self.client[0]}:{self.client[1]}" if self.client else "client", self.body_timeout)
        if not cycle.response_started:
            try:
                self.transport.write(self.conn.send(h11.Response(
                    status_code=408, headers=[(b"connection", b"close"), (b"content-length", b"0")])))
                self.transport.write(self.conn.send(h11.EndOfMessage()))
            except h11.LocalProtocolError:
                pass
        cycle.disconnected = True  # the app's receive() answers http.disconnect; its answer is dropped
        cycle.message_event.set()
        self.transport.close()


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with a :class:`~.security.RedactKeys` filter on every handler."""
    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["filters"] = {"redact_keys": {"()": "recgen_adapters.service.security.RedactKeys"}}
    for handler in cfg["handlers"].values():
        handler["filters"] = [*handler.get("filters", ()), "redact_keys"]
    return cfg


def run(*, host: str, port: int, workers: int, log_level: str, config: ServiceConfig) -> None:
    """Serve :func:`.app.app_from_env` with uvicorn: :data:`PROTOCOL`, ``config``'s keep-alive
    timeout and :func:`log_config` (the app and the head/body timeouts are read from the
    environment in every worker)."""
    import uvicorn

    uvicorn.run("recgen_adapters.service:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, http=PROTOCOL, timeout_keep_alive=config.keepalive_timeout,  # type: ignore[arg-type]
                log_config=log_config())
