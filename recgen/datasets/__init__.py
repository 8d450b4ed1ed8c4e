"""Bundled data sets: the synthetic sample shop with ground-truth user tastes."""
from recgen.datasets.shop import (
    CATEGORIES,
    COLOURS,
    MATERIALS,
    PATTERNS,
    draw_item_image,
    make_sample_catalog,
)

__all__ = ["CATEGORIES", "COLOURS", "MATERIALS", "PATTERNS", "draw_item_image", "make_sample_catalog"]
