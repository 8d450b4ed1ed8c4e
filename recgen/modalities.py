"""The modalities of recgen's shared space, defined once.

Every list of modality names in recgen (the encoders' fusion weights, the FAISS indexes a
model builds, the similarity features of the adapters, the CLI's and the HTTP service's
choices, the report's feature columns) is derived from :data:`MODALITIES`. Adding a
modality means one entry here plus the encoder that fills it.

This module imports nothing from recgen.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FUSED", "MODALITIES", "Modality", "SOURCE_MODALITIES", "VECTOR_MODALITIES", "check_modality",
           "default_fusion_weights"]


@dataclass(frozen=True)
class Modality:
    """One kind of item vector in the shared space.

    Attributes
    ----------
    name : str
        Short name used in every API (``modality="image"``) and file name.
    description : str
        What the vector is made from (shown in CLI help and docs).
    fusion_weight : float or None
        Default weight in the fused vector; None for the fused vector itself.
    """

    name: str
    description: str
    fusion_weight: float | None


FUSED = "fused"

#: Every vector an item (and a user's taste) has, in the order shown everywhere.
MODALITIES: tuple[Modality, ...] = (
    Modality(FUSED, "normalized weighted sum of the item's other vectors", None),
    Modality("text", "title, description and attributes, encoded by the text model", 1.0),
    Modality("image", "item photo, image features projected into the text space (or CLIP)", 1.0),
    Modality("review", "the item's reviews encoded as text, pooled by rating", 0.5),
)

#: Names of every vector kind, fused first: the indexes, features and API choices.
VECTOR_MODALITIES: tuple[str, ...] = tuple(m.name for m in MODALITIES)
#: The modalities encoded from an item's own data (everything but the fused vector).
SOURCE_MODALITIES: tuple[str, ...] = tuple(m.name for m in MODALITIES if m.fusion_weight is not None)


def default_fusion_weights() -> dict[str, float]:
    """A fresh ``{modality: weight}`` dict of the default fusion weights."""
    return {m.name: float(m.fusion_weight) for m in MODALITIES if m.fusion_weight is not None}


def check_modality(value: str, *, argument: str = "modality", allowed: tuple[str, ...] = VECTOR_MODALITIES) -> str:
    """``value`` if it names a modality in ``allowed``; else a ``ValueError`` naming ``argument`` and the choices."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{argument} must be one of {list(allowed)}; got {value!r}")
    return value
