"""Catalog: schemas, validation, loaders and the SQLAlchemy store."""
from recgen.catalog.data import CatalogData
