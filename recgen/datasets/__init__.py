"""Data sets by name: the bundled sample shop and the layouts of real public data sets.

==========  ==========================================  ==========================================
name        loader                                      what it is
==========  ==========================================  ==========================================
sample      :func:`make_sample_catalog`                 synthetic shop with ground-truth tastes
                                                        (``path``: where to write it)
movielens   :func:`load_movielens_posters`              MovieLens-100K + TMDB overviews and posters
clothing    :func:`load_clothing_reviews`               Women's Clothing E-Commerce Reviews (CC0)
==========  ==========================================  ==========================================

:data:`DATASETS` is the one table: the CLI's ``--dataset`` choices, the demo, ``recgen
evaluate``'s ``[data] dataset`` and :func:`load` all derive from it. Adding a data set is
one :class:`DatasetSpec` entry (plus its loader module here and its test).

>>> data = recgen.datasets.load("sample", "shop-data", seed=0)
>>> data = recgen.datasets.load("movielens", "../shared/data/movielens-posters")
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from recgen.catalog.data import CatalogData
from recgen.datasets.clothing import load_clothing_reviews
from recgen.datasets.movielens import load_movielens_posters
from recgen.datasets.shop import (
    CATEGORIES,
    COLOURS,
    MATERIALS,
    PATTERNS,
    draw_item_image,
    make_sample_catalog,
)

__all__ = ["CATEGORIES", "COLOURS", "DATASETS", "DatasetSpec", "MATERIALS", "PATTERNS", "draw_item_image",
           "load", "load_clothing_reviews", "load_movielens_posters", "make_sample_catalog", "names"]


@dataclass(frozen=True)
class DatasetSpec:
    """One named data set.

    Attributes
    ----------
    name : str
    load : callable
        ``load(path, seed) -> CatalogData``; ``path`` is None only when ``needs_path`` is False.
    needs_path : bool
        The data live outside the project (real data sets): ``path`` is required.
    path_help : str
        What ``path`` must point at (error messages and CLI help).
    has_interactions : bool
        Whether the set has user interactions (what ``recgen demo`` and ranking need).
    description : str
    """

    name: str
    load: Callable[[Path | None, int], CatalogData]
    needs_path: bool
    path_help: str
    has_interactions: bool
    description: str


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("sample", lambda path, seed: make_sample_catalog(path, seed=seed), False,
                "folder to write the generated shop to (default: a cached folder under the temp dir)", True,
                "the bundled synthetic shop: 240 drawn products, 120 users with known tastes"),
    DatasetSpec("movielens", lambda path, seed: load_movielens_posters(path), True,
                "the movielens-posters folder (items.csv, ratings.csv, posters/), e.g. "
                "../shared/data/movielens-posters", True,
                "MovieLens-100K ratings with TMDB overviews and posters"),
    DatasetSpec("clothing", lambda path, seed: load_clothing_reviews(path), True,
                "the clothing-reviews folder or its WomensClothingE-CommerceReviews.parquet.brotli file", False,
                "23k real clothing reviews (items and reviews, no interactions or images)"),
)}


def names(*, with_interactions: bool = False) -> tuple[str, ...]:
    """Registered data set names (only those with interactions when asked)."""
    return tuple(n for n, s in DATASETS.items() if s.has_interactions or not with_interactions)


def load(name: str, path: str | os.PathLike[str] | None = None, seed: int = 0) -> CatalogData:
    """Load data set ``name`` (see the module's table).

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS`.
    path : path, optional
        Its folder (required for the real data sets; for ``sample``, where to write it).
    seed : int
        Seed of generated data sets (ignored by real ones).

    Raises
    ------
    ValueError
        Unknown ``name`` (the message lists the registered ones) or a missing ``path``.
    FileNotFoundError
        ``path`` lacks the data set's files (the message names the expected layout).
    """
    spec = DATASETS.get(name)
    if spec is None:
        raise ValueError(f"dataset must be one of {list(DATASETS)}; got {name!r}")
    if path is None and spec.needs_path:
        raise ValueError(f"dataset {name!r} needs path= ({spec.path_help})")
    return spec.load(None if path is None else Path(path), seed)
