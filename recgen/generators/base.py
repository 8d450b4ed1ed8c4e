"""Shared types of the generators: what they condition on and what they return."""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PreviewOutput:
    """Generated preview images.

    Attributes
    ----------
    images : ndarray of uint8, shape (n, H, W, 3)
        RGB previews, one per requested (user, item) pair, in request order.
    user_ids, item_ids : list of str
        The pairs, in the same order.
    """

    images: np.ndarray
    user_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)


@dataclass
class BlurbOutput:
    """Generated blurbs ("why you may like it").

    Attributes
    ----------
    texts : list of str
        One blurb per requested pair.
    sources : list of list of str
        For each blurb, where each of its sentences comes from (e.g. ``"description"``,
        ``"review:<review_id>"``); empty lists for generators that do not track provenance.
    user_ids, item_ids : list of str
    """

    texts: list[str]
    sources: list[list[str]] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode one uint8 (H, W, 3) RGB image as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def png_array(data: bytes) -> np.ndarray:
    """Decode PNG bytes written by :func:`png_bytes` into a uint8 (H, W, 3) RGB array."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
