"""Contrastive projection of image features into the shared (text) space, LiT style.

Both towers stay frozen; only a small head maps the image model's pooled features onto
the text encoder's space, trained with the symmetric InfoNCE (CLIP) loss on the
catalog's own (image, text) pairs. Text vectors are therefore unchanged by training and
the shared space *is* the text space: text queries, review vectors and projected images
are directly comparable.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
import numpy as np

from recgen._io import load_torch_state, save_torch_state
from recgen.encoders.base import l2_normalize
from recgen.errors import ModelFitError, NotFittedError

log = logging.getLogger(__name__)

_KIND = "image-projection"


@dataclass
class ProjectionConfig:
    """Hyper-parameters of :class:`ImageProjection`.

    Attributes
    ----------
    hidden : int
        Hidden width of the MLP head; 0 means a linear map.
    epochs : int
        Passes over the pairs.
    batch_size : int
        Pairs per step (the InfoNCE negatives are the other pairs of the batch).
    lr, weight_decay : float
        AdamW settings.
    dropout : float
        Dropout on the input features (regularizes small catalogs).
    val_fraction : float
        Share of pairs held out to pick the best epoch (early stopping); 0 disables.
    patience : int
        Epochs without validation improvement before stopping.
    refit : bool
        After early stopping picked the epoch count, train again from scratch on *all*
        pairs for that many epochs (small catalogs cannot spare 10% of their pairs: on the
        sample catalog this lifts held-out top-1 from 0.86 to about 0.93 over 5 seeds).
    seed : int
        Seeds initialization, shuffling and the split.
    """

    hidden: int = 0
    epochs: int = 150
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    dropout: float = 0.1
    val_fraction: float = 0.1
    patience: int = 30
    refit: bool = True
    seed: int = 0


@dataclass
class FitHistory:
    """Per-epoch training loss and validation MRR (val image -> own text among *all* texts)."""

    train_loss: list[float] = field(default_factory=list)
    val_mrr: list[float] = field(default_factory=list)
    best_epoch: int = -1


class ImageProjection:
    """Trainable map from image features (``in_dim``) into the text space (``out_dim``)."""

    def __init__(self, in_dim: int, out_dim: int, config: ProjectionConfig | None = None) -> None:
        import torch

        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.config = config or ProjectionConfig()
        torch.manual_seed(self.config.seed)
        self.module = self._make_module()
        self.fitted = False
        self.history = FitHistory()

    def _make_module(self):
        import torch.nn as nn

        c = self.config
        if c.hidden > 0:
            return nn.Sequential(nn.Dropout(c.dropout), nn.Linear(self.in_dim, c.hidden), nn.GELU(),
                                 nn.Linear(c.hidden, self.out_dim))
        return nn.Sequential(nn.Dropout(c.dropout), nn.Linear(self.in_dim, self.out_dim))

    # ---------------------------------------------------------------------------- fit
    def fit(self, image_features: np.ndarray, text_vectors: np.ndarray, *, show_progress: bool = False) -> "ImageProjection":
        """Train on paired rows: ``image_features[i]`` shows the item described by ``text_vectors[i]``.

        Raises
        ------
        ValueError
            Shapes do not match, fewer than 4 pairs, or non-finite values.
        ModelFitError
            The loss became NaN/inf.
        """
        import torch

        x = np.asarray(image_features, dtype=np.float32)
        y = np.asarray(text_vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"image_features must have shape (n, {self.in_dim}); got {x.shape}")
        if y.ndim != 2 or y.shape[1] != self.out_dim:
            raise ValueError(f"text_vectors must have shape (n, {self.out_dim}); got {y.shape}")
        if len(x) != len(y):
            raise ValueError(f"image_features has {len(x)} rows but text_vectors has {len(y)}; they must be paired")
        if len(x) < 4:
            raise ValueError(f"need at least 4 (image, text) pairs to train the projection; got {len(x)}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("image_features / text_vectors contain NaN or inf")
        c = self.config
        rng = np.random.default_rng(c.seed)
        order = rng.permutation(len(x))
        n_val = int(round(len(x) * c.val_fraction)) if c.val_fraction > 0 and len(x) >= 20 else 0
        xt, yt = torch.from_numpy(l2_normalize(x)), torch.from_numpy(l2_normalize(y))
        self._train(xt, yt, order[n_val:], order[:n_val], c.epochs, rng, show_progress)
        if n_val and c.refit and self.history.best_epoch >= 0:
            history = self.history
            torch.manual_seed(c.seed)
            self.module = self._make_module()
            self._train(xt, yt, order, order[:0], history.best_epoch + 1, rng, show_progress)
            self.history = history  # keep the validation curve that chose the epoch count
        self.module.eval()
        self.fitted = True
        return self

    def _train(self, xt, yt, train: np.ndarray, val: np.ndarray, n_epochs: int, rng, show_progress: bool) -> None:
        import torch
        import torch.nn.functional as F

        c = self.config
        n_val = len(val)
        torch.manual_seed(c.seed)
        log_scale = torch.nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))
        opt = torch.optim.AdamW(list(self.module.parameters()) + [log_scale], lr=c.lr, weight_decay=c.weight_decay)
        self.history = FitHistory()
        best_state, best_score, stale = None, -np.inf, 0
        epochs = range(n_epochs)
        if show_progress:
            from tqdm.auto import tqdm

            epochs = tqdm(epochs, desc="projection", unit="epoch")
        for epoch in epochs:
            self.module.train()
            perm = train[rng.permutation(len(train))]
            total, steps = 0.0, 0
            for s in range(0, len(perm), c.batch_size):
                b = perm[s:s + c.batch_size]
                if len(b) < 2:
                    continue
                z = F.normalize(self.module(xt[b]), dim=1)
                logits = log_scale.exp().clamp(max=100) * z @ yt[b].T
                target = torch.arange(len(b))
                loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
                if not torch.isfinite(loss):
                    raise ModelFitError(
                        f"projection training diverged at epoch {epoch} (loss {loss.item()}); lower lr (now {c.lr})"
                    )
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item()
                steps += 1
            self.history.train_loss.append(total / max(steps, 1))
            if n_val:
                score = self._val_score(xt[val], yt, val)
                self.history.val_mrr.append(score)
                if score >= best_score:  # ties go to the later epoch: tiny val sets plateau early
                    best_score, stale, self.history.best_epoch = score, 0, epoch
                    best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
                else:
                    stale += 1
                    if stale >= c.patience:
                        break
        if best_state is not None:
            self.module.load_state_dict(best_state)
        else:
            self.history.best_epoch = len(self.history.train_loss) - 1

    def _val_score(self, x, y_all, rows) -> float:
        # mean reciprocal rank of each validation image's own text among *all* texts: a
        # held-out image must beat the training texts the head has seen (where over-fitting
        # shows), and MRR stays informative on hard catalogs where top-1 is almost always 0
        import torch
        import torch.nn.functional as F

        self.module.eval()
        with torch.no_grad():
            sims = F.normalize(self.module(x), dim=1) @ y_all.T
            own = sims[torch.arange(len(rows)), torch.from_numpy(rows)]
            rank = (sims > own[:, None]).sum(dim=1).float() + 1
        return float((1 / rank).mean())

    # ------------------------------------------------------------------- transform
    def transform(self, image_features: np.ndarray) -> np.ndarray:
        """Project image features into the shared space; (n, out_dim) float32 unit rows."""
        import torch

        if not self.fitted:
            raise NotFittedError("ImageProjection is not fitted: call fit() or load() first")
        x = np.asarray(image_features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"image_features must have shape (n, {self.in_dim}); got {x.shape}")
        if not len(x):
            return np.empty((0, self.out_dim), dtype=np.float32)
        self.module.eval()
        with torch.no_grad():
            z = self.module(torch.from_numpy(l2_normalize(x))).numpy()
        return l2_normalize(z)

    # ----------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Save weights (safetensors, network ``projection``) and config (JSON manifest)
        atomically to ``directory``, with :func:`~recgen._io.save_torch_state`."""
        if not self.fitted:
            raise NotFittedError("refusing to save an unfitted ImageProjection")
        config = {"in_dim": self.in_dim, "out_dim": self.out_dim, "projection": asdict(self.config),
                  "history": asdict(self.history)}
        return save_torch_state(directory, kind=_KIND, modules={"projection": self.module}, config=config)

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True) -> "ImageProjection":
        """Load a projection saved by :meth:`save` (checksums verified when ``verify``; no pickle involved).

        Raises
        ------
        ArtifactError
            Missing, tampered or incomplete directory, or weights that do not match its manifest.
        """
        made: list[ImageProjection] = []

        def build(cfg: dict) -> dict:
            proj = cls(int(cfg["in_dim"]), int(cfg["out_dim"]), ProjectionConfig(**cfg["projection"]))
            proj.history = FitHistory(**cfg.get("history", {}))
            made.append(proj)
            return {"projection": proj.module}

        load_torch_state(directory, kind=_KIND, modules=build, verify=verify)
        proj = made[-1]
        proj.module.eval()
        proj.fitted = True
        return proj
