"""In-memory catalog: three pandas frames in recgen's documented schema.

Schemas (column: dtype, required?)
----------------------------------
items
    ``item_id`` (str, required, unique), ``title`` (str, required), ``description``
    (str, may be empty), ``attributes`` (dict[str, str], may be empty), ``image_path``
    (str absolute path or None).
reviews
    ``item_id`` (str, required), ``user_id`` (str or None), ``rating`` (float, required,
    finite), ``text`` (str, required, non-empty), ``timestamp`` (int64 unix seconds, may be
    missing -> 0).
interactions
    ``user_id`` (str, required), ``item_id`` (str, required), ``timestamp`` (int64 unix
    seconds, required), ``rating`` (float or NaN), ``event`` (str, default ``"interaction"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ITEM_COLUMNS = ("item_id", "title", "description", "attributes", "image_path")
REVIEW_COLUMNS = ("item_id", "user_id", "rating", "text", "timestamp")
INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp", "rating", "event")


def empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    """An empty frame with the given columns (object dtype)."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})


@dataclass
class CatalogData:
    """Items, reviews and interactions of one catalog, in recgen's schema.

    Attributes
    ----------
    items, reviews, interactions : pandas.DataFrame
        Frames with the columns listed in this module's docstring.
    name : str
        Short name of the source (``"sample"``, ``"movielens"``, a file name).
    image_root : pathlib.Path or None
        Folder relative image paths were resolved against, if any.
    users : pandas.DataFrame or None
        Optional per-user side information (ground-truth tastes for the sample catalog).
    """

    items: pd.DataFrame
    reviews: pd.DataFrame = field(default_factory=lambda: empty_frame(REVIEW_COLUMNS))
    interactions: pd.DataFrame = field(default_factory=lambda: empty_frame(INTERACTION_COLUMNS))
    name: str = "catalog"
    image_root: Path | None = None
    users: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return (
            f"CatalogData(name={self.name!r}, items={len(self.items)}, reviews={len(self.reviews)}, "
            f"interactions={len(self.interactions)})"
        )
