"""Vector index over the catalog's string ids."""
from recgen.index.item_index import ItemIndex, auto_factory

__all__ = ["ItemIndex", "auto_factory"]
