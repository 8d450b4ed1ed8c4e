"""The encoder protocol every modality encoder follows."""
from __future__ import annotations

import os
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Maps a batch of inputs of one modality to vectors.

    Attributes
    ----------
    name : str
        Stable identifier of the model *and* its preprocessing; it keys the embedding
        cache, so it must change whenever the output for the same input would.
    dim : int
        Output dimension.
    modality : str
        ``"text"`` or ``"image"``.
    """

    name: str
    dim: int
    modality: str

    def encode(self, batch: Sequence[Any], *, batch_size: int = 64) -> np.ndarray:
        """Encode ``batch``; returns float32, C-contiguous, shape (len(batch), dim), L2-normalized rows."""
        ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalization into a new float32 C-contiguous array (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def offline_hub() -> None:
    """Keep Hugging Face libraries off the network: weights come from installed packages."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pick_device(device: str | None) -> str:
    """``device`` if given, else ``"cuda"`` when torch sees a GPU, else ``"cpu"``."""
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
