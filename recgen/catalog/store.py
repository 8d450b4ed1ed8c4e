"""Persistent catalog on SQLAlchemy 2 Core: a SQLite file by default, any SQLAlchemy URL otherwise.

Ingest validates first and writes in one transaction: either every valid row of a call is
stored or (on any error) nothing changes. Re-ingesting the same data is a no-op: items are
upserted by ``item_id`` only when their content hash changed; reviews and interactions are
inserted-or-ignored by primary key.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from recgen.catalog.columns import INTERACTIONS, ITEMS, REVIEWS, Table
from recgen.catalog.data import ITEM_COLUMNS, CatalogData
from recgen.catalog.loaders import read_table
from recgen.catalog.schema import ValidationReport, validate_interactions, validate_items, validate_reviews
from recgen.errors import UnknownIdError, ValidationError

__all__ = ["CatalogStore", "IngestResult"]

log = logging.getLogger(__name__)

CHUNK_ROWS = 5000  # rows per executemany call
IN_CHUNK = 500  # ids per "IN (...)" query: well under SQLite's bound-variable limit

metadata = sa.MetaData()

# SQL type of each kind of catalog value (recgen.catalog.columns.KINDS)
_SQL_TYPES = {"id": sa.Text, "text": sa.Text, "attributes": sa.Text, "image": sa.Text, "rating": sa.Float,
              "timestamp": sa.BigInteger}


def _sql_columns(table: Table, *, primary_key: Sequence[str] = ()) -> list[sa.Column]:
    """The SQL columns of a catalog table, from its definition in :mod:`recgen.catalog.columns`."""
    out = []
    for c in table.columns:
        kwargs: dict[str, Any] = {"primary_key": c.name in primary_key}
        if c.name == "item_id" and table is not ITEMS:
            out.append(sa.Column(c.name, sa.Text, sa.ForeignKey("items.item_id"), nullable=False, index=True,
                                 **kwargs))
            continue
        # stored NOT NULL: required columns and optional ones that always get a value (default
        # or, for timestamps and attributes, the validator's 0 / {})
        always = c.required or c.default is not None or c.kind in ("attributes", "timestamp")
        out.append(sa.Column(c.name, _SQL_TYPES[c.kind], nullable=not always, **kwargs))
    return out


items_table = sa.Table(
    "items",
    metadata,
    *_sql_columns(ITEMS, primary_key=ITEMS.key),
    sa.Column("image_sha256", sa.String(64), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

reviews_table = sa.Table(
    "reviews",
    metadata,
    sa.Column("review_id", sa.String(64), primary_key=True),  # sha256 of the REVIEWS.key columns
    *_sql_columns(REVIEWS),
)

interactions_table = sa.Table(
    "interactions",
    metadata,
    *_sql_columns(INTERACTIONS, primary_key=INTERACTIONS.key),
)

ingest_log_table = sa.Table(
    "ingest_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("n_checked", sa.Integer, nullable=False),
    sa.Column("n_bad", sa.Integer, nullable=False),
    sa.Column("items_added", sa.Integer, nullable=False),
    sa.Column("items_updated", sa.Integer, nullable=False),
    sa.Column("reviews_added", sa.Integer, nullable=False),
    sa.Column("interactions_added", sa.Integer, nullable=False),
)


@dataclass
class IngestResult:
    """Outcome of :meth:`CatalogStore.ingest`.

    Attributes
    ----------
    report : ValidationReport
        Rows rejected by validation (not stored).
    items_added, items_updated, items_unchanged : int
        Valid items that were new, changed (content hash differs) or already stored as is.
    reviews_added, interactions_added : int
        Rows actually inserted (rows already stored are not counted).
    """

    report: ValidationReport = field(default_factory=ValidationReport)
    items_added: int = 0
    items_updated: int = 0
    items_unchanged: int = 0
    reviews_added: int = 0
    interactions_added: int = 0

    def __str__(self) -> str:
        return (
            f"items: {self.items_added} added, {self.items_updated} updated, {self.items_unchanged} unchanged; "
            f"reviews: {self.reviews_added} added; interactions: {self.interactions_added} added; "
            f"bad rows: {self.report.n_bad_rows} ({len(self.report)} problem(s))"
        )


def review_id(item_id: str, user_id: str | None, timestamp: int, text: str) -> str:
    """Stable key of a review: sha256 hex of ``item_id|user_id|timestamp|text``."""
    key = f"{item_id}|{'' if user_id is None else user_id}|{int(timestamp)}|{text}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _content_hash(row: dict[str, Any]) -> str:
    """sha256 of an item's stored values (every column but the id, then the image's own hash)."""
    payload = json.dumps([row[c] for c in ITEM_COLUMNS[1:]] + [row["image_sha256"]], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _to_sql(kind: str, values: list[Any]) -> list[Any]:
    """A validated column (``frame[c].tolist()``) as the store keeps it."""
    if kind == "attributes":
        return [json.dumps(v, ensure_ascii=False, sort_keys=True) for v in values]
    if kind == "rating":
        return [None if v is None or math.isnan(v) else float(v) for v in values]
    if kind == "image":
        return [_none_if_nan(v) for v in values]
    return values  # ids and text are str/None, timestamps int, after validation


def _from_sql(kind: str, values: list[Any]) -> Any:
    """A stored column back as the validated frame holds it."""
    if kind == "attributes":
        return pd.Series([json.loads(a) for a in values], dtype=object)
    if kind == "rating":
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    if kind == "timestamp":
        return np.array(values, dtype=np.int64)
    return pd.Series(values, dtype=object)


def _rows(frame: pd.DataFrame, table: Table) -> list[dict[str, Any]]:
    """Validated frame -> store rows (one dict per row, the table's columns)."""
    names = table.names
    cols = [_to_sql(c.kind, frame[c.name].tolist()) for c in table.columns]
    return [dict(zip(names, values)) for values in zip(*cols)]


def _chunks(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _none_if_nan(x: Any) -> Any:
    return None if isinstance(x, float) and math.isnan(x) else x


class CatalogStore:
    """Items, reviews and interactions in a SQL database.

    Parameters
    ----------
    url : str or os.PathLike
        A SQLAlchemy URL (any string containing ``"://"``, e.g. ``"postgresql://..."`` or
        ``"sqlite:///x.db"``), or a plain file path for a SQLite database (parent folders
        are created). SQLite connections use WAL journaling and enforce foreign keys.

    Examples
    --------
    >>> with CatalogStore(tmp_path / "recgen.db") as store:  # doctest: +SKIP
    ...     result = store.ingest(load_movielens_posters("data/movielens-posters"))
    ...     print(result)
    """

    def __init__(self, url: str | os.PathLike[str]):
        if isinstance(url, os.PathLike) or (isinstance(url, str) and "://" not in url):
            path = Path(url).expanduser().resolve()
            path.parent.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{path}"
        elif not isinstance(url, str):
            raise TypeError(f"url must be a str or os.PathLike, got {type(url).__name__}")
        self._url = url
        self._engine: Engine = sa.create_engine(url)
        if self._engine.dialect.name == "sqlite":
            sa.event.listen(self._engine, "connect", _sqlite_on_connect)
        self._create_tables()

    # -- plumbing ------------------------------------------------------------------------

    def _create_tables(self) -> None:
        """Create the missing tables; two stores opening a new database at once must not collide."""
        inspector = sa.inspect(self._engine)
        if all(inspector.has_table(t.name) for t in metadata.sorted_tables):
            return  # the common case takes no lock: a read-only database still opens
        with self._engine.begin() as conn:
            _lock_writers(conn)
            metadata.create_all(conn)  # checks again under the lock

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the database."""
        return self._url

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (share it, do not dispose it; use :meth:`close`)."""
        return self._engine

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> "CatalogStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CatalogStore({self._engine.url.render_as_string(hide_password=True)!r})"

    # -- ingest --------------------------------------------------------------------------

    def ingest(
        self,
        data: CatalogData | None = None,
        *,
        items: pd.DataFrame | str | os.PathLike[str] | None = None,
        reviews: pd.DataFrame | str | os.PathLike[str] | None = None,
        interactions: pd.DataFrame | str | os.PathLike[str] | None = None,
        image_root: str | os.PathLike[str] | None = None,
        on_error: str = "report",
        check_images: bool = True,
    ) -> IngestResult:
        """Validate and store a catalog (or some of its tables) in one transaction.

        Parameters
        ----------
        data : CatalogData, optional
            Frames to ingest. Cannot be combined with ``items``/``reviews``/``interactions``.
        items, reviews, interactions : DataFrame or path, optional
            Frames or table files (read with :func:`recgen.catalog.loaders.read_table`).
        image_root : path, optional
            Folder for relative image paths; defaults to ``data.image_root``, else the
            folder of the items file when ``items`` is a path.
        on_error : {"report", "raise"}
            ``"report"``: store the valid rows and return the bad ones in the result (and
            log a warning). ``"raise"``: if any row is bad, store nothing and raise.
        check_images : bool
            Fully decode every image during validation.

        Returns
        -------
        IngestResult

        Raises
        ------
        ValidationError
            With ``on_error="raise"`` when any row is bad (``.report`` holds them), or
            when a required column is missing.
        """
        if on_error not in ("report", "raise"):
            raise ValueError(f"on_error must be 'report' or 'raise', got {on_error!r}")
        if data is not None:
            if not isinstance(data, CatalogData):
                raise TypeError(f"data must be a CatalogData, got {type(data).__name__}")
            if any(x is not None for x in (items, reviews, interactions)):
                raise TypeError("pass either data or items/reviews/interactions, not both")
            items, reviews, interactions = data.items, data.reviews, data.interactions
            if image_root is None:
                image_root = data.image_root
        if image_root is None and isinstance(items, (str, os.PathLike)):
            image_root = Path(items).resolve().parent
        frames = {}
        for what, obj in (("items", items), ("reviews", reviews), ("interactions", interactions)):
            if obj is None or isinstance(obj, pd.DataFrame):
                frames[what] = obj
            elif isinstance(obj, (str, os.PathLike)):
                frames[what] = read_table(obj)
            else:
                raise TypeError(f"{what} must be a DataFrame or a file path, got {type(obj).__name__}")

        started = datetime.now(timezone.utc)
        report = ValidationReport()
        clean_items = None
        if frames["items"] is not None:
            clean_items, rep = validate_items(frames["items"], image_root=image_root, check_images=check_images)
            report.extend(rep)
        need_known = frames["reviews"] is not None or frames["interactions"] is not None
        known: set[str] = set()
        if need_known:
            with self._engine.connect() as conn:
                known = set(conn.execute(sa.select(items_table.c.item_id)).scalars())
            if clean_items is not None:
                known.update(clean_items["item_id"])
        clean_reviews = clean_inter = None
        if frames["reviews"] is not None:
            clean_reviews, rep = validate_reviews(frames["reviews"], known_item_ids=known)
            report.extend(rep)
        if frames["interactions"] is not None:
            clean_inter, rep = validate_interactions(frames["interactions"], known_item_ids=known)
            report.extend(rep)

        if report and on_error == "raise":
            raise ValidationError(f"ingest rejected: {report.format()}", report=report)

        result = IngestResult(report=report)
        with self._engine.begin() as conn:
            # Reads of what is stored and the writes happen under one lock: a concurrent ingest of
            # the same rows waits here and then counts them as unchanged instead of added too.
            _lock_writers(conn)
            if clean_items is not None and len(clean_items):
                self._write_items(conn, clean_items, result)
            if clean_reviews is not None and len(clean_reviews):
                self._write_reviews(conn, clean_reviews, result)
            if clean_inter is not None and len(clean_inter):
                self._write_interactions(conn, clean_inter, result)
            sources = sorted(
                {str(f.attrs.get("source", f"<{k} DataFrame>")) for k, f in frames.items() if f is not None}
            )
            conn.execute(
                ingest_log_table.insert().values(
                    started_at=started,
                    finished_at=datetime.now(timezone.utc),
                    source=", ".join(sources) or "<nothing>",
                    n_checked=report.n_checked,
                    n_bad=report.n_bad_rows,
                    items_added=result.items_added,
                    items_updated=result.items_updated,
                    reviews_added=result.reviews_added,
                    interactions_added=result.interactions_added,
                )
            )
        if report:
            log.warning(
                "ingest stored the valid rows and skipped %d bad row(s):\n%s", report.n_bad_rows, report.format(10)
            )
        return result

    # -- writers (each runs inside the caller's transaction) -----------------------------

    def _dialect(self) -> str:
        return self._engine.dialect.name

    def _insert_ignore(self, conn: Connection, table: sa.Table, rows: list[dict[str, Any]], keys: Sequence[str]) -> None:
        """Insert rows whose primary key is not stored yet; others are left untouched."""
        dialect = self._dialect()
        if dialect in ("sqlite", "postgresql"):
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            stmt = dialect_insert(table).on_conflict_do_nothing(index_elements=list(keys))
            for chunk in _chunks(rows, CHUNK_ROWS):
                conn.execute(stmt, list(chunk))
            return
        # generic fallback: drop rows whose key exists (or repeats in this batch), then insert
        seen: set[tuple] = set()
        first_key = keys[0]
        for chunk in _chunks(rows, CHUNK_ROWS):
            firsts = sorted({r[first_key] for r in chunk})
            for ids in _chunks(firsts, IN_CHUNK):
                q = sa.select(*[table.c[k] for k in keys]).where(table.c[first_key].in_(ids))
                seen.update(tuple(r) for r in conn.execute(q))
            fresh = []
            for r in chunk:
                key = tuple(r[k] for k in keys)
                if key not in seen:
                    seen.add(key)
                    fresh.append(r)
            if fresh:
                conn.execute(table.insert(), fresh)

    def _count(self, conn: Connection, table: sa.Table) -> int:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def _write_items(self, conn: Connection, items: pd.DataFrame, result: IngestResult) -> None:
        now = datetime.now(timezone.utc)
        rows = _rows(items, ITEMS)
        for row, sha in zip(rows, items["image_sha256"].tolist()):
            row["image_sha256"] = _none_if_nan(sha)
            row["content_hash"] = _content_hash(row)
            row["updated_at"] = now
        stored: dict[str, str] = {}
        ids = [r["item_id"] for r in rows]
        for chunk in _chunks(ids, IN_CHUNK):
            q = sa.select(items_table.c.item_id, items_table.c.content_hash).where(items_table.c.item_id.in_(chunk))
            stored.update((i, h) for i, h in conn.execute(q))
        new = [r for r in rows if r["item_id"] not in stored]
        changed = [r for r in rows if r["item_id"] in stored and stored[r["item_id"]] != r["content_hash"]]
        result.items_added += len(new)
        result.items_updated += len(changed)
        result.items_unchanged += len(rows) - len(new) - len(changed)
        t = items_table
        upd_cols = (*ITEM_COLUMNS[1:], "image_sha256", "content_hash", "updated_at")
        dialect = self._dialect()
        if dialect in ("sqlite", "postgresql"):
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            ins = dialect_insert(t)
            stmt = ins.on_conflict_do_update(
                index_elements=[t.c.item_id],
                set_={c: ins.excluded[c] for c in upd_cols},
                where=t.c.content_hash != ins.excluded.content_hash,
            )
            for chunk in _chunks(new + changed, CHUNK_ROWS):
                conn.execute(stmt, list(chunk))
            return
        for chunk in _chunks(new, CHUNK_ROWS):
            conn.execute(t.insert(), list(chunk))
        if changed:
            stmt = (
                t.update()
                .where(t.c.item_id == sa.bindparam("b_item_id"))
                .values({c: sa.bindparam(f"b_{c}") for c in upd_cols})
            )
            for chunk in _chunks(changed, CHUNK_ROWS):
                conn.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in chunk])

    def _write_reviews(self, conn: Connection, reviews: pd.DataFrame, result: IngestResult) -> None:
        rows = _rows(reviews, REVIEWS)
        for row in rows:
            row["review_id"] = review_id(*(row[c] for c in REVIEWS.key))
        before = self._count(conn, reviews_table)
        self._insert_ignore(conn, reviews_table, rows, ["review_id"])
        result.reviews_added += self._count(conn, reviews_table) - before

    def _write_interactions(self, conn: Connection, inter: pd.DataFrame, result: IngestResult) -> None:
        rows = _rows(inter, INTERACTIONS)
        before = self._count(conn, interactions_table)
        self._insert_ignore(conn, interactions_table, rows, list(INTERACTIONS.key))
        result.interactions_added += self._count(conn, interactions_table) - before

    # -- readers -------------------------------------------------------------------------

    def _read(self, table: Table, sql: sa.Table, order_by: Sequence[str], extra: Sequence[str] = ()) -> pd.DataFrame:
        names = [*table.names, *extra]
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(*[sql.c[c] for c in names]).order_by(*[sql.c[c] for c in order_by])).all()
        data = {c.name: _from_sql(c.kind, [r[k] for r in rows]) for k, c in enumerate(table.columns)}
        for k, name in enumerate(extra, start=len(table.columns)):
            data[name] = pd.Series([r[k] for r in rows], dtype=object)
        return pd.DataFrame(data, columns=names)

    def items(self) -> pd.DataFrame:
        """Stored items, ordered by ``item_id``.

        Returns
        -------
        pandas.DataFrame
            ``ITEM_COLUMNS`` (attributes as dict) plus ``image_sha256`` and ``content_hash``.
        """
        return self._read(ITEMS, items_table, ["item_id"], extra=("image_sha256", "content_hash"))

    def reviews(self) -> pd.DataFrame:
        """Stored reviews (``REVIEW_COLUMNS``), ordered by item, timestamp and review id."""
        return self._read(REVIEWS, reviews_table, ["item_id", "timestamp", "review_id"])

    def interactions(self) -> pd.DataFrame:
        """Stored interactions (``INTERACTION_COLUMNS``), ordered by user, timestamp, item, event."""
        return self._read(INTERACTIONS, interactions_table, ["user_id", "timestamp", "item_id", "event"])

    def catalog(self, name: str = "catalog") -> CatalogData:
        """Everything stored, as a :class:`CatalogData` named ``name``."""
        return CatalogData(items=self.items(), reviews=self.reviews(), interactions=self.interactions(), name=name)

    def counts(self) -> dict[str, int]:
        """Row counts: ``{"items": n, "reviews": n, "interactions": n}``."""
        with self._engine.connect() as conn:
            return {
                "items": self._count(conn, items_table),
                "reviews": self._count(conn, reviews_table),
                "interactions": self._count(conn, interactions_table),
            }

    def remove_items(self, item_ids: Iterable[str]) -> int:
        """Remove items with their reviews and interactions, in one transaction.

        Parameters
        ----------
        item_ids : iterable of str
            Ids to remove; all must be stored.

        Returns
        -------
        int
            Number of items removed.

        Raises
        ------
        UnknownIdError
            When any id is not stored (nothing is removed then).
        """
        if isinstance(item_ids, (str, bytes)):
            raise TypeError("item_ids must be an iterable of ids, not a single string")
        ids = list(dict.fromkeys(str(i) for i in item_ids))
        if not ids:
            return 0
        with self._engine.begin() as conn:
            _lock_writers(conn)
            found: set[str] = set()
            for chunk in _chunks(ids, IN_CHUNK):
                found.update(
                    conn.execute(sa.select(items_table.c.item_id).where(items_table.c.item_id.in_(chunk))).scalars()
                )
            unknown = [i for i in ids if i not in found]
            if unknown:
                shown = ", ".join(repr(i) for i in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
                raise UnknownIdError(f"{len(unknown)} of {len(ids)} item id(s) are not in the store: {shown}")
            for chunk in _chunks(ids, IN_CHUNK):
                conn.execute(reviews_table.delete().where(reviews_table.c.item_id.in_(chunk)))
                conn.execute(interactions_table.delete().where(interactions_table.c.item_id.in_(chunk)))
                conn.execute(items_table.delete().where(items_table.c.item_id.in_(chunk)))
        return len(ids)


# Key of the PostgreSQL advisory lock that serializes recgen's writers on one database
# (an arbitrary constant: the bytes of "recgen").
_PG_WRITER_LOCK = int.from_bytes(b"recgen", "big")


def _lock_writers(conn: Connection) -> None:
    """Serialize this transaction with every other recgen writer of the database until it ends.

    Must be the first statement of the transaction. SQLite: ``BEGIN IMMEDIATE`` takes the write
    lock before anything is read (the driver's own ``BEGIN`` would come only before the first
    write, after the reads the counts come from). PostgreSQL: a transaction-level advisory lock;
    plain readers are not blocked. Other databases: no lock (the store stays right, the
    added/unchanged counts of concurrent ingests may overlap).
    """
    dialect = conn.dialect.name
    if dialect == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif dialect == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_WRITER_LOCK)))


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        # a second writer waits for the first one's transaction (a large ingest takes seconds)
        # instead of failing with "database is locked" after the driver's default 5 s
        cur.execute("PRAGMA busy_timeout=60000")
    finally:
        cur.close()
