"""Preview URLs and the in-memory cache of generated preview PNGs."""
from __future__ import annotations

import threading
from collections import OrderedDict
from urllib.parse import quote, urlencode

from .settings import NEUTRAL_USER

__all__ = ["PreviewCache", "preview_url"]


class PreviewCache:
    """A thread-safe LRU of PNG bytes, keyed by ``(model version, user, item)``.

    Parameters
    ----------
    size : int
        Previews kept; the least recently used go first.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        """The cached PNG, or None."""
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        return None

    def put(self, key: tuple, value: bytes) -> None:
        """Cache a PNG, dropping the least recently used over ``size``."""
        with self._lock:
            self._d[key] = value
            while len(self._d) > self.size:
                self._d.popitem(last=False)


def _path_safe(part: str) -> bool:
    return "/" not in part and "\\" not in part and part not in (".", "..")


def preview_url(user: str, item: str) -> str:
    """``/previews/{user}/{item}.png``, or the query form when an id cannot be a path segment
    (uvicorn decodes ``%2F`` before routing; clients collapse ``.``/``..``) or the user is ``_``."""
    if _path_safe(user) and _path_safe(item) and user != NEUTRAL_USER:
        return f"/previews/{quote(user, safe='')}/{quote(item, safe='')}.png"
    return f"/previews?{urlencode({'user_id': user, 'item_id': item})}"
