"""A CLIP model (sentence-transformers format) as the joint image + text encoder."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recgen.encoders.base import offline_hub, pick_device
from recgen.encoders.image import load_image


class _ClipView:
    """One modality of a :class:`ClipEncoder`, satisfying the Encoder protocol."""

    def __init__(self, parent: "ClipEncoder", modality: str) -> None:
        self._parent, self.modality = parent, modality
        self.dim = parent.dim
        self.name = f"{parent.name}:{modality}"

    def encode(self, batch: Sequence[Any], *, batch_size: int = 32) -> np.ndarray:
        items = list(batch)
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        if self.modality == "image":
            items = [load_image(x) for x in items]
        elif any(not isinstance(t, str) for t in items):
            raise TypeError("text batch must contain only str")
        out = self._parent.model.encode(items, batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(out, dtype=np.float32)


class ClipEncoder:
    """Joint text/image encoder from a CLIP model that sentence-transformers can load.

    Parameters
    ----------
    model : str or path
        A local sentence-transformers CLIP folder (e.g. a saved ``clip-ViT-B-32``) or a
        name already in the local Hugging Face cache; the hub is never contacted.
    device : str, optional

    Attributes
    ----------
    text, image : Encoder
        The two modalities; their vectors share one space, so no projection is trained.
    """

    def __init__(self, model: str | Path, *, device: str | None = None) -> None:
        offline_hub()
        from sentence_transformers import SentenceTransformer

        self.device = pick_device(device)
        try:
            self.model = SentenceTransformer(str(model), device=self.device)
        except OSError as exc:
            raise ValueError(f"clip model {model!r} could not be loaded offline: {exc}") from exc
        dim = (self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
               else self.model.get_sentence_embedding_dimension())
        if dim is None:  # CLIP wrappers do not always report it: measure once
            dim = int(self.model.encode(["probe"], convert_to_numpy=True).shape[1])
        self.dim = int(dim)
        self.name = f"clip:{Path(str(model)).name}"
        self.text = _ClipView(self, "text")
        self.image = _ClipView(self, "image")
