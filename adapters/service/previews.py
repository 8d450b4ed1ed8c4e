"""Preview URLs and the in-memory cache of generated preview PNGs."""
from __future__ import annotations

from urllib.parse import quote, urlencode

from recgen._lru import LRUCache

from .settings import NEUTRAL_USER

__all__ = ["PreviewCache", "preview_url"]


class PreviewCache(LRUCache):
    """A thread-safe LRU of PNG bytes, keyed by ``(model version, user, item)`` (recgen's one
    :class:`~recgen._lru.LRUCache`, bounded by entries).

    Parameters
    ----------
    size : int
        Previews kept; the least recently used go first.
    """

    def __init__(self, size: int) -> None:
        super().__init__(max_items=size)

    @property
    def size(self) -> int:
        return self.max_items


def _path_safe(part: str) -> bool:
    return "/" not in part and "\\" not in part and part not in (".", "..")


def preview_url(user: str, item: str) -> str:
    """``/previews/{user}/{item}.png``, or the query form when an id cannot be a path segment
    (uvicorn decodes ``%2F`` before routing; clients collapse ``.``/``..``) or the user is ``_``."""
    if _path_safe(user) and _path_safe(item) and user != NEUTRAL_USER:
        return f"/previews/{quote(user, safe='')}/{quote(item, safe='')}.png"
    return f"/previews?{urlencode({'user_id': user, 'item_id': item})}"
