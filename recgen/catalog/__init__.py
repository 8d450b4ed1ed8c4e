"""Catalog: schemas, validation, loaders and the SQLAlchemy store."""
from recgen.catalog.data import CatalogData
from recgen.catalog.loaders import load_clothing_reviews, load_frames, load_movielens_posters, read_table
from recgen.catalog.schema import (
    BadRow,
    ValidationReport,
    validate_interactions,
    validate_items,
    validate_reviews,
)
from recgen.catalog.store import CatalogStore, IngestResult

__all__ = [
    "CatalogData",
    "CatalogStore",
    "IngestResult",
    "BadRow",
    "ValidationReport",
    "read_table",
    "load_frames",
    "load_movielens_posters",
    "load_clothing_reviews",
    "validate_items",
    "validate_reviews",
    "validate_interactions",
]
