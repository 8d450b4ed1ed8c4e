"""Women's Clothing E-Commerce Reviews (CC0): real reviews for blurb quality.

Registered as the dataset ``"clothing"`` (:func:`recgen.datasets.load`); it has items and
reviews but no interactions and no images.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recgen.catalog.data import CatalogData
from recgen.catalog.loaders import map_object, read_table
from recgen.errors import ValidationError

__all__ = ["CLOTHING_FILE", "load_clothing_reviews"]

log = logging.getLogger(__name__)

CLOTHING_FILE = "WomensClothingE-CommerceReviews.parquet.brotli"


def _join_title_text(title: Any, body: Any) -> str:
    parts = [str(x).strip() for x in (title, body) if isinstance(x, str) and x.strip()]
    if len(parts) == 2:
        head = parts[0]
        return f"{head} {parts[1]}" if head[-1] in ".!?" else f"{head}. {parts[1]}"
    return parts[0] if parts else ""


def load_clothing_reviews(path: str | os.PathLike[str]) -> CatalogData:
    """Load the Women's Clothing E-Commerce Reviews set (CC0, one Parquet file).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.parquet.brotli`` file, or the folder holding
        ``WomensClothingE-CommerceReviews.parquet.brotli``.

    Returns
    -------
    CatalogData
        ``name="clothing-reviews"``. Items: one per ``Clothing ID`` with
        ``title = f"{Class Name} #{id}"`` (``"Item #{id}"`` without a class),
        ``description=""``, ``attributes`` ``division``/``department``/``class`` (taken
        from the item's first review), no images. Reviews: ``item_id``, ``user_id=None``
        (the set has no reviewer ids), ``rating``, ``text = Title + ". " + Review Text``
        (either part alone when the other is missing), ``timestamp=0``. No interactions.

    Notes
    -----
    Rows with neither a title nor a review text (844 of 23,486 in the published file)
    carry only a star rating: they are not reviews and are dropped here. Their number is
    kept in ``reviews.attrs["n_dropped_without_text"]`` and logged.

    Raises
    ------
    FileNotFoundError
        When the file (or the folder) is missing.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CLOTHING_FILE
    if not p.is_file():
        raise FileNotFoundError(
            f"clothing reviews file not found: {p}; expected {CLOTHING_FILE} (Parquet with columns "
            "Clothing ID, Title, Review Text, Rating, Division Name, Department Name, Class Name)"
        )
    df = read_table(p)
    need = [c for c in ("Clothing ID", "Rating") if c not in df.columns]
    if need:
        raise ValidationError(f"{p} lacks column(s) {need}; columns found: {list(df.columns)}")

    def col(name: str) -> pd.Series:
        return df[name] if name in df.columns else pd.Series([None] * len(df), dtype=object)

    ids = map_object(col("Clothing ID"), lambda v: str(int(v)) if isinstance(v, (int, np.integer)) else v)
    first = pd.DataFrame(
        {
            "item_id": ids,
            "division": col("Division Name"),
            "department": col("Department Name"),
            "class": col("Class Name"),
        }
    ).drop_duplicates("item_id", keep="first")
    attributes, titles = [], []
    for row in first.itertuples(index=False):
        attrs = {
            k: str(v).strip()
            for k, v in (("division", row.division), ("department", row.department), ("class", row[3]))
            if isinstance(v, str) and v.strip()
        }
        attributes.append(attrs)
        titles.append(f"{attrs['class']} #{row.item_id}" if "class" in attrs else f"Item #{row.item_id}")
    items = pd.DataFrame(
        {
            "item_id": pd.Series(first["item_id"].to_numpy(dtype=object), dtype=object),
            "title": pd.Series(titles, dtype=object),
            "description": pd.Series([""] * len(first), dtype=object),
            "attributes": pd.Series(attributes, dtype=object),
            "image_path": pd.Series([None] * len(first), dtype=object),
        }
    )
    items.attrs["source"] = str(p)

    text = pd.Series(
        [_join_title_text(t, b) for t, b in zip(col("Title").tolist(), col("Review Text").tolist())], dtype=object
    )
    has_text = (text != "").to_numpy()
    n_dropped = int((~has_text).sum())
    if n_dropped:
        log.info("%s: %d rows have neither title nor review text; dropped as non-reviews", p, n_dropped)
    reviews = pd.DataFrame(
        {
            "item_id": pd.Series(ids.to_numpy(dtype=object)[has_text], dtype=object),
            "user_id": pd.Series([None] * int(has_text.sum()), dtype=object),
            "rating": pd.to_numeric(col("Rating"), errors="coerce").to_numpy(dtype=float)[has_text],
            "text": pd.Series(text.to_numpy(dtype=object)[has_text], dtype=object),
            "timestamp": np.zeros(int(has_text.sum()), dtype=np.int64),
        }
    )
    reviews.attrs["source"] = str(p)
    reviews.attrs["n_dropped_without_text"] = n_dropped
    return CatalogData(items=items, reviews=reviews, name="clothing-reviews")
