"""Content-addressed embedding cache: re-running on an unchanged catalog encodes nothing.

A vector is stored under ``(encoder.name, sha256(content))``. The encoder name includes
the model and its preprocessing, so changing either misses the cache instead of
returning stale vectors. The cache is a table in any SQLAlchemy database (by default the
catalog store's own SQLite file).
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Callable, Sequence

import numpy as np
import sqlalchemy as sa

log = logging.getLogger(__name__)

_meta = sa.MetaData()
_table = sa.Table(
    "embedding_cache",
    _meta,
    sa.Column("encoder", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),
)


def content_key(content: str | bytes) -> str:
    """SHA-256 hex of text (UTF-8) or bytes."""
    if isinstance(content, str):
        content = content.encode("utf-8", "surrogatepass")
    return hashlib.sha256(content).hexdigest()


def file_key(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


class EmbeddingCache:
    """Vectors keyed by (encoder name, content hash) in a SQL table.

    Parameters
    ----------
    engine_or_url : sqlalchemy.Engine or str
        An engine (e.g. ``CatalogStore.engine``) or a SQLAlchemy URL / SQLite file path.
    """

    _CHUNK = 500  # keys per SELECT ... IN (...), under SQLite's variable limit

    def __init__(self, engine_or_url: sa.Engine | str | os.PathLike[str]) -> None:
        if isinstance(engine_or_url, sa.Engine):
            self.engine = engine_or_url
        else:
            url = str(engine_or_url)
            self.engine = sa.create_engine(url if "://" in url else f"sqlite:///{url}")
        _meta.create_all(self.engine)
        self.hits = 0
        self.misses = 0

    def get_many(self, encoder: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the keys found (missing keys are absent from the result)."""
        out: dict[str, np.ndarray] = {}
        uniq = list(dict.fromkeys(keys))
        with self.engine.connect() as conn:
            for s in range(0, len(uniq), self._CHUNK):
                chunk = uniq[s:s + self._CHUNK]
                rows = conn.execute(
                    sa.select(_table.c.key, _table.c.dim, _table.c.vector)
                    .where(_table.c.encoder == encoder, _table.c.key.in_(chunk))
                )
                for key, dim, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.shape == (dim,):  # a damaged row is ignored and re-encoded
                        out[key] = vec
        return out

    def put_many(self, encoder: str, vectors: dict[str, np.ndarray]) -> None:
        """Store vectors (existing keys are left as they are: same content, same vector)."""
        if not vectors:
            return
        rows = [{"encoder": encoder, "key": k, "dim": int(v.shape[0]),
                 "vector": np.ascontiguousarray(v, dtype=np.float32).tobytes()} for k, v in vectors.items()]
        with self.engine.begin() as conn:
            existing = set()
            keys = list(vectors)
            for s in range(0, len(keys), self._CHUNK):
                existing.update(conn.execute(
                    sa.select(_table.c.key).where(_table.c.encoder == encoder, _table.c.key.in_(keys[s:s + self._CHUNK]))
                ).scalars())
            new = [r for r in rows if r["key"] not in existing]
            for s in range(0, len(new), self._CHUNK):
                conn.execute(_table.insert(), new[s:s + self._CHUNK])

    def clear(self, encoder: str | None = None) -> None:
        """Drop cached vectors (of one encoder, or all)."""
        with self.engine.begin() as conn:
            stmt = _table.delete()
            if encoder is not None:
                stmt = stmt.where(_table.c.encoder == encoder)
            conn.execute(stmt)


def cached_encode(
    encode: Callable[[list[Any]], np.ndarray],
    encoder_name: str,
    inputs: Sequence[Any],
    keys: Sequence[str],
    dim: int,
    *,
    cache: EmbeddingCache | None,
) -> tuple[np.ndarray, int]:
    """Encode ``inputs`` through ``cache``: only unseen (deduplicated) keys reach ``encode``.

    Returns
    -------
    vectors : ndarray, shape (len(inputs), dim), float32
    n_encoded : int
        How many inputs were actually encoded (cache misses after de-duplication).
    """
    if len(inputs) != len(keys):
        raise ValueError(f"inputs has {len(inputs)} entries but keys has {len(keys)}")
    out = np.empty((len(inputs), dim), dtype=np.float32)
    found = cache.get_many(encoder_name, keys) if cache is not None else {}
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k not in found and k not in first:
            first[k] = i
    if first:
        fresh = encode([inputs[i] for i in first.values()])
        if fresh.shape != (len(first), dim):
            raise ValueError(f"encoder {encoder_name!r} returned shape {fresh.shape}; expected {(len(first), dim)}")
        new = dict(zip(first, fresh))
        if cache is not None:
            cache.put_many(encoder_name, new)
        found = {**found, **new}
    if cache is not None:
        cache.hits += len(keys) - len(first)
        cache.misses += len(first)
    for i, k in enumerate(keys):
        out[i] = found[k]
    return out, len(first)
