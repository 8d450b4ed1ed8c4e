"""Catalog: schemas, validation, file loaders and the SQLAlchemy store (named data sets: :mod:`recgen.datasets`)."""
from recgen.catalog.data import CatalogData
from recgen.catalog.loaders import load_frames, read_table
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
    "validate_items",
    "validate_reviews",
    "validate_interactions",
]
