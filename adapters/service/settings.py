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

__all__ = ["MAX_CANDIDATES", "MAX_ID_LENGTH", "MAX_K", "MAX_QUERY_LENGTH", "MODEL_VERSION_HEADER", "NEUTRAL_USER",
           "ServiceConfig", "config_from_env", "read_key_file"]

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


def config_from_env(environ: Mapping[str, str] | None = None, **overrides: Any) -> ServiceConfig:
    """Build a :class:`ServiceConfig` from environment variables.

    Parameters
    ----------
    environ : mapping, optional
        Where to read the variables; default ``os.environ``. Read: ``RECGEN_API_KEYS``
        (comma-separated), ``RECGEN_API_KEY_FILE`` (one key per line, see
        :func:`read_key_file`), ``RECGEN_MAX_CANDIDATES``, ``RECGEN_RATE_LIMIT``,
        ``RECGEN_RATE_BURST`` and ``RECGEN_RELOAD_INTERVAL``.
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
