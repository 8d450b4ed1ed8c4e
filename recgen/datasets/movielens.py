"""MovieLens-100K with TMDB overviews and posters (the ``movielens-posters`` layout).

Registered as the dataset ``"movielens"`` (:func:`recgen.datasets.load`). The data are not
redistributable: point ``path`` at your own copy.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recgen.catalog.data import REVIEW_COLUMNS, CatalogData, empty_frame
from recgen.catalog.loaders import map_object, read_table
from recgen.errors import ValidationError

__all__ = ["MOVIELENS_GENRES", "load_movielens_posters"]

log = logging.getLogger(__name__)

MOVIELENS_GENRES = {
    "Action": "Action",
    "Adventure": "Adventure",
    "Animation": "Animation",
    "Children": "Children's",
    "Comedy": "Comedy",
    "Crime": "Crime",
    "Documentary": "Documentary",
    "Drama": "Drama",
    "Fantasy": "Fantasy",
    "FilmNoir": "Film-Noir",
    "Horror": "Horror",
    "Musical": "Musical",
    "Mystery": "Mystery",
    "Romance": "Romance",
    "SciFi": "Sci-Fi",
    "Thriller": "Thriller",
    "War": "War",
    "Western": "Western",
}

_MOVIELENS_LAYOUT = (
    "expected layout: DIR/items.csv (movie_id, title, genre flag columns, year, overview, "
    "original_language, runtime, ...), DIR/ratings.csv (user_id, movie_id, rating, unix_timestamp), "
    "DIR/posters/{movie_id}.jpg"
)


def _clean_number_text(v: Any) -> str | None:
    """'1995.0' -> '1995', '7.5' -> '7.5', NaN/'' -> None; other text is kept as is."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    text = str(v).strip()
    if not text:
        return None
    try:
        f = float(text)
    except ValueError:
        return text
    if not np.isfinite(f):
        return None
    return str(int(f)) if f.is_integer() else text


def _numeric_or_raw(s: pd.Series, kind: str) -> pd.Series:
    """Convert to numbers when every value converts; otherwise leave it for validation to report."""
    try:
        out = pd.to_numeric(s, errors="raise")
    except (ValueError, TypeError):
        return s
    if kind == "int" and pd.api.types.is_integer_dtype(out.dtype):
        return out.astype("int64")
    return out.astype("float64") if kind == "float" else out


def load_movielens_posters(path: str | os.PathLike[str]) -> CatalogData:
    """Load MovieLens-100K with TMDB overviews and posters (``movielens-posters`` layout).

    Parameters
    ----------
    path : str or os.PathLike
        Folder holding ``items.csv``, ``ratings.csv`` and ``posters/{movie_id}.jpg``.

    Returns
    -------
    CatalogData
        ``name="movielens"``. Items: ``item_id=str(movie_id)``, ``title``,
        ``description`` = TMDB overview (``""`` when missing), ``attributes`` with
        ``genres`` (``"Action, Comedy"``), ``year``, ``language``, ``runtime`` (strings;
        missing ones left out), ``image_path`` = absolute poster path or None when the
        poster file is absent. Interactions from ``ratings.csv`` (``event="rating"``).
        No reviews (an empty frame with the schema's columns).

    Notes
    -----
    ``items.csv`` of this dataset lists some ``movie_id`` twice (1,746 rows, 1,682 ids);
    that is a known property of the published file, not an input error, so the first row
    of each id is kept and the others are dropped here. Ratings are returned unfiltered:
    ratings of movies absent from ``items.csv`` are reported by the store on ingest.
    If ``posters/`` is missing, items are returned without images (a warning is logged).

    Raises
    ------
    FileNotFoundError
        When the folder, ``items.csv`` or ``ratings.csv`` is missing.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"movielens-posters folder not found: {root}; {_MOVIELENS_LAYOUT}")
    missing = [n for n in ("items.csv", "ratings.csv") if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{root} lacks {', '.join(missing)}; {_MOVIELENS_LAYOUT}")
    posters = root / "posters"
    if not posters.is_dir():
        log.warning("%s has no posters/ folder; movielens items are loaded without images", root)

    raw = read_table(root / "items.csv")
    need = [c for c in ("movie_id", "title") if c not in raw.columns]
    if need:
        raise ValidationError(
            f"{root / 'items.csv'} lacks column(s) {need}; columns found: {list(raw.columns)}; {_MOVIELENS_LAYOUT}"
        )
    ids = map_object(raw["movie_id"], lambda v: v.strip() if isinstance(v, str) else v)
    raw = raw.assign(movie_id=ids)
    raw = raw[~raw["movie_id"].duplicated(keep="first") | raw["movie_id"].isna()].reset_index(drop=True)

    genre_cols = [c for c in MOVIELENS_GENRES if c in raw.columns]
    flags = np.zeros((len(raw), len(genre_cols)), dtype=bool)
    for j, c in enumerate(genre_cols):
        flags[:, j] = [_clean_number_text(v) == "1" for v in raw[c].tolist()]
    attr_sources = {"year": "year", "language": "original_language", "runtime": "runtime"}
    attr_values = {
        key: [_clean_number_text(v) for v in raw[col].tolist()] if col in raw.columns else [None] * len(raw)
        for key, col in attr_sources.items()
    }
    attributes = []
    for i in range(len(raw)):
        attrs: dict[str, str] = {}
        genres = [MOVIELENS_GENRES[c] for j, c in enumerate(genre_cols) if flags[i, j]]
        if genres:
            attrs["genres"] = ", ".join(genres)
        for key in attr_sources:
            if attr_values[key][i] is not None:
                attrs[key] = attr_values[key][i]
        attributes.append(attrs)

    image_paths = []
    for mid in raw["movie_id"]:
        p = posters / f"{mid}.jpg" if isinstance(mid, str) and mid else None
        image_paths.append(str(p.resolve()) if p is not None and p.is_file() else None)

    overview = raw["overview"] if "overview" in raw.columns else pd.Series([None] * len(raw), dtype=object)
    items = pd.DataFrame(
        {
            "item_id": pd.Series(raw["movie_id"].to_numpy(dtype=object), dtype=object),
            "title": pd.Series(raw["title"].to_numpy(dtype=object), dtype=object),
            "description": pd.Series(overview.fillna("").to_numpy(dtype=object), dtype=object),
            "attributes": pd.Series(attributes, dtype=object),
            "image_path": pd.Series(image_paths, dtype=object),
        }
    )
    items.attrs["source"] = str(root / "items.csv")

    ratings = read_table(root / "ratings.csv")
    need = [c for c in ("user_id", "movie_id", "rating", "unix_timestamp") if c not in ratings.columns]
    if need:
        raise ValidationError(
            f"{root / 'ratings.csv'} lacks column(s) {need}; columns found: {list(ratings.columns)}; "
            f"{_MOVIELENS_LAYOUT}"
        )
    interactions = pd.DataFrame(
        {
            "user_id": ratings["user_id"].astype(object),
            "item_id": ratings["movie_id"].astype(object),
            "timestamp": _numeric_or_raw(ratings["unix_timestamp"], "int"),
            "rating": _numeric_or_raw(ratings["rating"], "float"),
            "event": pd.Series(["rating"] * len(ratings), dtype=object),
        }
    )
    interactions.attrs["source"] = str(root / "ratings.csv")
    reviews = empty_frame(REVIEW_COLUMNS)
    return CatalogData(items=items, reviews=reviews, interactions=interactions, name="movielens", image_root=root)
