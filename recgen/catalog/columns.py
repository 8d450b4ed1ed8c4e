"""The catalog's tables and columns, defined once.

Everything that names a catalog column derives from :data:`TABLES`: the in-memory schema
(:mod:`recgen.catalog.data`), the validators (:mod:`recgen.catalog.schema`: which columns
are required, how each kind of value is checked, the defaults), the SQL tables and the
readers and writers of the store (:mod:`recgen.catalog.store`), the CLI's help and the
README's column table (a test compares it with :func:`markdown_table`). Adding a column is
one :class:`Column` entry here (plus, for a new *kind* of value, its validator) and its tests.

Kinds of values
---------------
``id``
    Strings, or integral numbers (``42`` and ``42.0`` become ``"42"``; see :mod:`recgen.ids`).
``text``
    Free text (NUL and invalid UTF-8 rejected, whitespace stripped).
``attributes``
    A dict of ``str -> str`` or a JSON object string; stored as JSON with sorted keys.
``image``
    A path (relative to the items file or ``image_root``); the image is decoded and checked.
``rating``
    A finite number; ``bounded`` columns must lie in :data:`RATING_RANGE`.
``timestamp``
    Unix seconds, ISO 8601 text or datetimes; stored as int64 seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Column", "INTERACTIONS", "ITEMS", "KINDS", "RATING_RANGE", "REVIEWS", "TABLES", "Table",
           "markdown_table"]

KINDS = ("id", "text", "attributes", "image", "rating", "timestamp")
#: Inclusive range of review ratings (columns with ``bounded=True``).
RATING_RANGE = (0.0, 10.0)


@dataclass(frozen=True)
class Column:
    """One catalog column.

    Attributes
    ----------
    name : str
    kind : str
        One of :data:`KINDS` (how values are validated, stored and read back).
    required : bool
        The column must be present and every row must have a value.
    default : Any
        Value of a missing optional cell (and of every row when the column is absent).
    missing_reason : str
        Report text for a required cell that is missing (default ``"missing NAME"``).
    bounded : bool
        Ratings only: must lie within :data:`RATING_RANGE`.
    description : str
        One line for docs and CLI help.
    """

    name: str
    kind: str
    required: bool = False
    default: Any = None
    missing_reason: str = ""
    bounded: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Column {self.name!r} has kind {self.kind!r}; kinds: {KINDS}")

    @property
    def why_missing(self) -> str:
        return self.missing_reason or f"missing {self.name}"


@dataclass(frozen=True)
class Table:
    """One catalog table: its columns in order, and the columns that identify a row."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    description: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}; columns: {list(self.names)}")

    def summary(self, *, bold_required: bool = False) -> str:
        """``"item_id, title, description, ..."``; required ones marked ``(required)`` or in bold."""
        parts = []
        for c in self.columns:
            if c.required:
                parts.append(f"**{c.name}**" if bold_required else f"{c.name} (required)")
            else:
                parts.append(c.name)
        return ", ".join(parts)


ITEMS = Table("items", (
    Column("item_id", "id", required=True, description="your catalog's id (string or integer), unique"),
    Column("title", "text", required=True, description="product name"),
    Column("description", "text", default="", description="free text"),
    Column("attributes", "attributes", default=None, description="JSON object or dict, e.g. {\"colour\": \"red\"}"),
    Column("image_path", "image", description="relative to the items file or --image-root"),
), key=("item_id",), description="one row per item")

REVIEWS = Table("reviews", (
    Column("item_id", "id", required=True, description="an item of the items table"),
    Column("user_id", "id", description="reviewer (optional)"),
    Column("rating", "rating", required=True, bounded=True, description=f"number in {RATING_RANGE[0]:g}..{RATING_RANGE[1]:g}"),
    Column("text", "text", required=True, missing_reason="empty review text", description="the review"),
    Column("timestamp", "timestamp", description="unix seconds or ISO date (default 0)"),
), key=("item_id", "user_id", "timestamp", "text"), description="user reviews of items")

INTERACTIONS = Table("interactions", (
    Column("user_id", "id", required=True, description="the user"),
    Column("item_id", "id", required=True, description="an item of the items table"),
    Column("timestamp", "timestamp", required=True, description="unix seconds or ISO date"),
    Column("rating", "rating", description="explicit rating, if any"),
    Column("event", "text", default="interaction", description="event type (view, purchase, ...)"),
), key=("user_id", "item_id", "timestamp", "event"), description="who interacted with what, when")

#: The three tables of a catalog, in ingest order.
TABLES: dict[str, Table] = {t.name: t for t in (ITEMS, REVIEWS, INTERACTIONS)}


def markdown_table() -> str:
    """The README's column table: one row per table, required columns in bold."""
    rows = ["| table | columns |", "|---|---|"]
    rows += [f"| {t.name} | {t.summary(bold_required=True)} |" for t in TABLES.values()]
    return "\n".join(rows)
