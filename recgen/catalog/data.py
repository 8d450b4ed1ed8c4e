"""In-memory catalog: three pandas frames in recgen's documented schema.

The tables and their columns are defined in :mod:`recgen.catalog.columns` (:data:`TABLES`);
the tuples here are derived from it. After validation the frames hold: ids and text as
``str`` (object dtype), ``attributes`` as ``dict[str, str]``, ``image_path`` as an absolute
path or None, ratings as float64 (NaN where an optional rating is missing) and timestamps as
int64 unix seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recgen.catalog.columns import INTERACTIONS, ITEMS, REVIEWS

ITEM_COLUMNS = ITEMS.names
REVIEW_COLUMNS = REVIEWS.names
INTERACTION_COLUMNS = INTERACTIONS.names


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
