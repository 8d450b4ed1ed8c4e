"""One least-recently-used cache for everything recgen keeps in memory to serve faster.

The studio generator's scaled products and layouts, its generated products, and the HTTP
service's preview PNGs all use :class:`LRUCache`. It is bounded by bytes, by entries, or both:
entries differ in size (a scaled product at 128 px is up to 390 kB, four times that at 256),
so a bound on entries alone does not bound memory.
"""
from __future__ import annotations

import collections
import threading
from typing import Any

import numpy as np

__all__ = ["LRUCache", "MISSING", "nbytes"]

#: ``cache.get(key, MISSING)`` tells a miss from a cached ``None``
MISSING = object()


def nbytes(value: Any) -> int:
    """Bytes held by a cached value: its arrays' and byte strings' buffers plus 64 per object."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (bytes, bytearray)):
        return 64 + len(value)
    if isinstance(value, (tuple, list)):
        return 64 + sum(nbytes(v) for v in value)
    return 64


class LRUCache:
    """A thread-safe mapping that drops its least recently used entries over a budget.

    Parameters
    ----------
    max_bytes : int or None
        Most bytes held (:func:`nbytes`); ``None``: no byte bound.
    max_items : int or None
        Most entries held; ``None``: no entry bound.

    One entry over the byte budget is kept alone rather than dropped at once (the next put
    drops it). A copy or a pickle starts empty with the same budget: everything in a cache can
    be made again.
    """

    def __init__(self, max_bytes: int | None = None, max_items: int | None = None) -> None:
        for name, v in (("max_bytes", max_bytes), ("max_items", max_items)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0):
                raise ValueError(f"{name} must be a whole number >= 0 or None; got {v!r}")
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self.max_items = None if max_items is None else int(max_items)
        self.nbytes = 0
        self._d: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, default: Any = None) -> Any:
        """The value under ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            if key not in self._d:
                return default
            self._d.move_to_end(key)
            return self._d[key]

    def __getitem__(self, key: Any) -> Any:
        hit = self.get(key, MISSING)
        if hit is MISSING:
            raise KeyError(key)
        return hit

    def __contains__(self, key: Any) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __setitem__(self, key: Any, value: Any) -> None:
        size = nbytes(value)
        with self._lock:
            if key in self._d:
                self.nbytes -= nbytes(self._d.pop(key))
            self._d[key] = value
            self.nbytes += size
            while self._d and ((self.max_items is not None and len(self._d) > self.max_items) or (
                    self.max_bytes is not None and self.nbytes > self.max_bytes and len(self._d) > 1)):
                self.nbytes -= nbytes(self._d.popitem(last=False)[1])

    put = __setitem__

    def update(self, pairs: Any) -> None:
        """Put every ``(key, value)`` of a mapping or an iterable of pairs."""
        for key, value in (pairs.items() if isinstance(pairs, dict) else pairs):
            self[key] = value

    def items(self) -> list:
        """A snapshot of the entries, least recently used first."""
        with self._lock:
            return list(self._d.items())

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
            self.nbytes = 0

    def __getstate__(self) -> dict:
        return {"max_bytes": self.max_bytes, "max_items": self.max_items}

    def __setstate__(self, state: dict) -> None:
        LRUCache.__init__(self, state.get("max_bytes"), state.get("max_items"))  # also for subclasses
