"""Settings of the HTTP service: :class:`ServiceConfig`, read from the environment, and the
limits of the wire contract.

Plain Python (no FastAPI): ``recgen serve`` validates its options with it before starting
uvicorn, and every worker process rebuilds the same config with :func:`config_from_env`.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

__all__ = ["ENV_FIELDS", "MAX_CANDIDATES", "MAX_ID_LENGTH", "MAX_K", "MAX_QUERY_LENGTH", "MODEL_VERSION_HEADER", "NEUTRAL_USER",
           "ServiceConfig", "config_from_env", "read_key_file"]

#: ServiceConfig field -> (environment variable, type); read by :func:`config_from_env`.
ENV_FIELDS: dict[str, tuple[str, type]] = {
    "max_candidates": ("RECGEN_MAX_CANDIDATES", int),
    "rate_limit": ("RECGEN_RATE_LIMIT", float),
    "rate_burst": ("RECGEN_RATE_BURST", int),
    "reload_interval": ("RECGEN_RELOAD_INTERVAL", float),
    "auth_failure_rate": ("RECGEN_AUTH_FAILURE_RATE", float),
    "max_image_pixels": ("RECGEN_MAX_IMAGE_PIXELS", int),
    "image_decodes": ("RECGEN_IMAGE_DECODES", int),
    "header_timeout": ("RECGEN_HEADER_TIMEOUT", float),
    "body_timeout": ("RECGEN_BODY_TIMEOUT", float),
    "keepalive_timeout": ("RECGEN_KEEPALIVE_TIMEOUT", float),
}

MAX_ID_LENGTH = 256  # characters of a user or item id, in bodies, paths and queries
MAX_CANDIDATES = 10_000  # rows of one /enrich request (ServiceConfig.max_candidates may lower it)
MAX_K = 1000  # items of one ranking answer
MAX_QUERY_LENGTH = 2000  # characters of a /search text query
NEUTRAL_USER = "_"  # the user segment of /previews/{user}/{item}.png that asks for the neutral preview
MODEL_VERSION_HEADER = "X-Recgen-Model-Version"  # names the model version that answered, on every response


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
    auth_failure_rate : float or None
        Sustained failed authentications (401) per second per client address; over it the
        answer is 429. Applies whether or not ``rate_limit`` is set (valid keys never take
        from this bucket); None = off.
    auth_failure_burst : int
        Bucket size of the failed-authentication limiter.
    max_image_pixels : int
        Pixels an uploaded image (``POST /search``) may decode to (422 above it). JPEGs are
        decoded at a reduced scale first, so the cap applies to what is actually decoded; a
        PNG is always decoded whole, so this bounds the memory of one upload (4 bytes a pixel
        at most). The encoder needs 224 px: 16 megapixels (default) is a 4,000 x 4,000 photo.
    image_decodes : int
        Image uploads decoded and encoded at once (the others wait their turn), so that
        parallel uploads cannot multiply the memory of one.
    header_timeout : float
        Seconds a connection may take to send a complete request head (request line and
        headers), counted from the connection or the first byte of the next request; then it
        is answered 408 and closed (slowloris). Idle new connections are closed after it too.
    body_timeout : float
        Seconds a request may take to send its whole body once the head arrived; then the
        connection is closed.
    keepalive_timeout : float
        Seconds an idle keep-alive connection stays open after a response.
    """

    api_keys: tuple[str, ...] = ()
    max_candidates: int = MAX_CANDIDATES
    max_body_bytes: int = 8 * 1024 * 1024
    rate_limit: float | None = None
    rate_burst: int = 20
    preview_cache_size: int = 1024
    reload_interval: float | None = None
    auth_failure_rate: float | None = 10.0
    auth_failure_burst: int = 100
    max_image_pixels: int = 16_000_000
    image_decodes: int = 2
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 5.0

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
        if self.auth_failure_rate is not None and not (math.isfinite(self.auth_failure_rate)
                                                       and self.auth_failure_rate > 0):
            raise ValueError("auth_failure_rate must be a positive number of failures/s or None; "
                             f"got {self.auth_failure_rate}")
        if self.auth_failure_burst < 1:
            raise ValueError(f"auth_failure_burst must be >= 1; got {self.auth_failure_burst}")
        if self.max_image_pixels < 1:
            raise ValueError(f"max_image_pixels must be >= 1; got {self.max_image_pixels}")
        if self.image_decodes < 1:
            raise ValueError(f"image_decodes must be >= 1; got {self.image_decodes}")
        for name in ("header_timeout", "body_timeout", "keepalive_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds; got {value}")


def config_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> ServiceConfig:
    """Build a :class:`ServiceConfig` from environment variables.

    Parameters
    ----------
    environ : mapping, optional
        Where to read the variables; default ``os.environ``. Read: ``RECGEN_API_KEYS``
        (comma-separated), ``RECGEN_API_KEY_FILE`` (one key per line, see
        :func:`read_key_file`), and one variable per field of :data:`ENV_FIELDS`
        (``RECGEN_MAX_CANDIDATES``, ``RECGEN_RATE_LIMIT``, ``RECGEN_HEADER_TIMEOUT``...).
    **overrides
        ServiceConfig fields that win over the environment; None values are ignored (so
        unset command-line options can be passed straight through).

    Raises
    ------
    ValueError
        A variable holds an invalid value, or the key file cannot be read or is empty.
    """
    env = os.environ if environ is None else environ
    keys: list[str] = [k.strip() for k in env.get("RECGEN_API_KEYS", "").split(",") if k.strip()]
    if env.get("RECGEN_API_KEY_FILE"):
        keys += read_key_file(env["RECGEN_API_KEY_FILE"])
    cfg: dict[str, Any] = {"api_keys": tuple(keys)}
    for field, (var, kind) in ENV_FIELDS.items():
        if env.get(var):
            try:
                cfg[field] = kind(env[var])
            except ValueError:
                raise ValueError(f"{var} must be {'an integer' if kind is int else 'a number'}; "
                                 f"got {env[var]!r}") from None
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    return ServiceConfig(**cfg)


def read_key_file(path: str | os.PathLike[str]) -> list[str]:
    """Read API keys from a file, one per line (blank lines and ``#`` comments ignored).

    Raises
    ------
    ValueError
        The file cannot be read, or holds no key.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the API key file {path}: {exc.strerror}") from exc
    keys = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not keys:
        raise ValueError(f"the API key file {path} holds no key")
    return keys
