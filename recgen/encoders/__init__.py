"""Encoders into the shared space: text, image features, projection, CLIP, fusion, cache."""
from recgen.encoders.base import Encoder, l2_normalize
from recgen.encoders.cache import EmbeddingCache
from recgen.encoders.projection import ImageProjection, ProjectionConfig
from recgen.encoders.space import ItemVectors, MultimodalSpace, SpaceConfig, item_text

__all__ = ["Encoder", "EmbeddingCache", "ImageProjection", "ItemVectors", "MultimodalSpace", "ProjectionConfig",
           "SpaceConfig", "item_text", "l2_normalize"]
