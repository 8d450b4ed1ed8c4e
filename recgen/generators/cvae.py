"""Conditional VAE preview generator, with an optional cGAN (projection discriminator) term.

The decoder draws an image from a latent sample and a condition vector
``h = MLP(concat(item_cond, user_cond))`` made from the item's vectors and the user's taste
vector; the encoder ``q(z | x, h)`` is used for training (and :meth:`CVAEGenerator.reconstruct`).
With ``adversarial_weight > 0`` a projection discriminator (Miyato & Koyama, 2018:
``D(x, c) = psi(phi(x)) + <embed(c), phi(x)>``) is trained with the hinge loss, and its
adversarial term is added to the decoder's loss, which sharpens the blurry averages a pure
VAE produces (the registry calls this preset ``"cgan"``).

The adversarial term is weighted adaptively (after Esser et al. 2021, VQGAN): its gradient at
the decoder's output logits is rescaled to ``adversarial_weight`` times the reconstruction gradient
there, so the same weight means the same thing for every image size and loss scale.

Personalization. The decoder sees the item's vectors and the taste vector of a user who
interacted with the item. Because an item's own vectors already determine its picture, a
decoder trained only on full conditions learns to ignore the user; so during training the
item condition is dropped for a share of the pairs (``cond_dropout``), which forces the
decoder to learn what a taste looks like, and at generation the user's effect is scaled like
classifier-free guidance: ``x = x_neutral + user_guidance * (x_user - x_neutral)`` with the
same latent sample for both.

Training is reproducible: initialization is seeded, and each epoch draws its shuffling
order and noise from a ``torch.Generator`` seeded with ``(seed, epoch)``, so a run resumed
from an epoch checkpoint ends with the same weights as an uninterrupted one.

Two levels of API: the generator contract (:class:`~recgen.generators.base.PreviewGenerator`:
``fit(context)``, ``generate(context, item_ids, user_ids)``) and the arrays underneath it
(:meth:`CVAEGenerator.fit_arrays`, :meth:`CVAEGenerator.generate_arrays`,
:meth:`CVAEGenerator.reconstruct`). The networks are in :mod:`recgen.generators.nets.cvae`.
"""
from __future__ import annotations

import logging
import math
import time
import zlib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from recgen._io import MANIFEST, load_torch_state, save_torch_state
from recgen.errors import ModelFitError, NotFittedError
from recgen.generators.base import PreviewOutput
from recgen.generators.context import GenerationContext, output_user_ids, paired
from recgen.modalities import FUSED

log = logging.getLogger(__name__)

_KIND = "cvae-generator"
# fields that may differ between the config of a resumed fit and its checkpoint (generation-time
# settings and the device do not change what training does)
_RESUME_FREE = ("epochs", "device", "cond_dim", "user_guidance")
# the item condition: concat of these item vectors
_ITEM_COND = ("text", FUSED)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass
class CVAEConfig:
    """Hyper-parameters of :class:`CVAEGenerator`.

    Attributes
    ----------
    image_size : int
        Square output size, a power of two >= 16. The networks have ``log2(image_size) - 2``
        stride-2 stages (64 -> 4 stages, down to 4x4).
    latent_dim : int
        Size of z.
    base_channels : int
        Channels of the first conv stage, doubled per stage and capped at 4x.
    cond_dim : int, optional
        Width of ``concat(item_cond, user_cond)``; set by :meth:`CVAEGenerator.fit` from
        the inputs (a value given here must match them).
    cond_hidden : int
        Width of the condition MLP (the vector both encoder and decoder see).
    beta : float
        KL weight, reached after ``warmup_epochs`` of linear warm-up.
    warmup_epochs : int
        0 = full ``beta`` from the first epoch.
    epochs, batch_size : int
        Default number of epochs of :meth:`CVAEGenerator.fit`; images per step (>= 2,
        batch norm needs two).
    lr : float
        Adam learning rate of condition MLP, encoder and decoder.
    recon_loss : {"mse", "bce"}
        Reconstruction loss, summed over the pixels of an image and averaged over the batch.
    adversarial_weight : float
        0 = plain cVAE; > 0 adds the projection discriminator and the generator's hinge
        adversarial term, scaled adaptively (see the module docstring).
    disc_lr : float
        Adam learning rate of the discriminator (betas 0.0, 0.9).
    pairs_per_item : int
        :meth:`CVAEGenerator.fit` on a context: training pairs (item image, taste of a user
        who interacted with the item) per item, plus one neutral pair.
    cond_dropout : float
        Share of the personalized training pairs whose item condition is zeroed, in [0, 1)
        (see the module docstring).
    user_guidance : float
        Scale of the user's effect in :meth:`CVAEGenerator.generate` (1 = as learned, 0 =
        the neutral preview); a generation-time setting.
    seed : int
        Seeds initialization, shuffling, the training noise and the choice of training pairs.
    device : str, optional
        Torch device; CUDA when available, else CPU.
    """

    image_size: int = 64
    latent_dim: int = 32
    base_channels: int = 32
    cond_dim: int | None = None
    cond_hidden: int = 128
    beta: float = 0.5
    warmup_epochs: int = 5
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    recon_loss: str = "mse"
    adversarial_weight: float = 0.0
    disc_lr: float = 2e-4
    pairs_per_item: int = 4
    cond_dropout: float = 0.3
    user_guidance: float = 1.0
    seed: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        s = self.image_size
        if not _is_int(s) or s < 16 or s & (s - 1):
            raise ValueError(f"image_size must be a power of two >= 16 (16, 32, 64, 128, ...); got {s!r}")
        for name, low in (("latent_dim", 1), ("base_channels", 1), ("cond_hidden", 1), ("batch_size", 2),
                          ("epochs", 0), ("warmup_epochs", 0), ("seed", 0), ("pairs_per_item", 1)):
            v = getattr(self, name)
            if not _is_int(v) or v < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {v!r}")
        if self.cond_dim is not None and (not _is_int(self.cond_dim) or self.cond_dim < 1):
            raise ValueError(f"cond_dim must be None or an integer >= 1; got {self.cond_dim!r}")
        for name, positive in (("lr", True), ("disc_lr", True), ("beta", False), ("adversarial_weight", False)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                    or (positive and v == 0):
                raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}; got {v!r}")
        c = self.cond_dropout
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c < 1:
            raise ValueError(f"cond_dropout must be a number in [0, 1); got {c!r}")
        g = self.user_guidance
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not math.isfinite(g):
            raise ValueError(f"user_guidance must be a finite number (1 = as learned, 0 = neutral); got {g!r}")
        if self.recon_loss not in ("mse", "bce"):
            raise ValueError(f"recon_loss must be 'mse' or 'bce'; got {self.recon_loss!r}")
        if self.device is not None and (not isinstance(self.device, str) or not self.device):
            raise ValueError(f"device must be None or a torch device string ('cpu', 'cuda'); got {self.device!r}")

    @property
    def stages(self) -> int:
        """Number of stride-2 stages (image_size -> 4x4)."""
        return int(math.log2(self.image_size)) - 2

    @property
    def channels(self) -> list[int]:
        """Channels of each stage: ``base_channels`` doubled per stage, capped at 4x."""
        return [min(self.base_channels * 2 ** i, self.base_channels * 4) for i in range(self.stages)]


class CVAEGenerator:
    """Conditional VAE (optionally + cGAN head) that draws previews from item and user vectors.

    A :class:`~recgen.generators.base.PreviewGenerator`. Registry names: ``"cvae"``
    (``adversarial_weight=0``) and ``"cgan"`` (``> 0``).

    Attributes
    ----------
    config : CVAEConfig
        A copy of the config given, with ``cond_dim`` filled in by :meth:`fit_arrays`.
    item_dim, user_dim : int or None
        Widths of ``item_cond`` and ``user_cond`` seen at fit.
    history : dict of str to list of float
        Per-epoch means: ``loss``, ``recon``, ``kl`` (and ``d_loss``, ``g_adv`` when adversarial).
    epochs_done : int
        Epochs trained so far (the checkpoint's epoch counter).

    Examples
    --------
    On a fitted model and its catalog:

    >>> gen = CVAEGenerator(CVAEConfig(epochs=20)).fit(GenerationContext(model, catalog), progress=True)
    >>> gen.generate(GenerationContext(model), ["SKU-0042"], ["U0001"], seed=0).images   # uint8 (1, 64, 64, 3)

    On arrays:

    >>> gen = CVAEGenerator(CVAEConfig(epochs=20)).fit_arrays(images, item_cond, user_cond)
    >>> previews = gen.generate_arrays(item_cond[:4], user_cond[:4], seed=0)   # uint8 (4, 64, 64, 3)
    """

    kind = "preview"

    def __init__(self, config: CVAEConfig | None = None) -> None:
        self.config = replace(config) if config is not None else CVAEConfig()
        self._cond_dim_given = self.config.cond_dim  # fit() fills config.cond_dim; a refit may change it
        self.item_dim: int | None = None
        self.user_dim: int | None = None
        self.history: dict[str, list[float]] = {}
        self.epochs_done = 0
        self._nets: dict[str, Any] | None = None
        self._opts: dict[str, Any] | None = None

    @property
    def device(self) -> str:
        from recgen.encoders.base import pick_device

        return pick_device(self.config.device)

    @property
    def adversarial(self) -> bool:
        return self.config.adversarial_weight > 0

    # --------------------------------------------------------------- validation
    def _conds(self, item_cond, user_cond, dims=(None, None)) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for name, value, fitted in (("item_cond", item_cond, dims[0]), ("user_cond", user_cond, dims[1])):
            try:
                arr = np.ascontiguousarray(value, dtype=np.float32)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{name} must be a numeric array of shape (n, dim): {exc}") from exc
            if arr.ndim != 2:
                raise ValueError(f"{name} must be 2-D (n, dim); got shape {arr.shape}")
            if fitted is not None and arr.shape[1] != fitted:
                raise ValueError(f"{name} has {arr.shape[1]} columns; this generator was fitted with {fitted}")
            if not np.isfinite(arr).all():
                bad = int(np.flatnonzero(~np.isfinite(arr).all(1))[0])
                raise ValueError(f"{name} contains NaN or inf (first bad row {bad})")
            out.append(arr)
        if len(out[0]) != len(out[1]):
            raise ValueError(f"item_cond has {len(out[0])} rows but user_cond has {len(out[1])}; they must be paired")
        return out[0], out[1]

    def _images(self, images) -> np.ndarray:
        """float32 (n, 3, S, S) in [0, 1] from uint8 or float (n, H, W, 3)."""
        from PIL import Image

        arr = np.asarray(images)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"images must have shape (n, H, W, 3); got {arr.shape}")
        if arr.dtype != np.uint8:
            if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
                raise TypeError(f"images must be uint8 or float in [0, 1]; got dtype {arr.dtype}")
            arr = arr.astype(np.float32)
            if not np.isfinite(arr).all() or (arr.size and (arr.min() < 0 or arr.max() > 1)):
                raise ValueError("float images must be finite and within [0, 1] (uint8 images take 0..255)")
        s = self.config.image_size
        if arr.shape[1:3] != (s, s):
            if arr.dtype != np.uint8:
                arr = (arr * 255).round().astype(np.uint8)
            arr = np.stack([np.asarray(Image.fromarray(a).resize((s, s), Image.BICUBIC)) for a in arr]) \
                if len(arr) else np.zeros((0, s, s, 3), np.uint8)
        x = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def _check(self) -> None:
        if self._nets is None or self.epochs_done == 0:
            raise NotFittedError("CVAEGenerator is not fitted: call fit() or load() first")

    # ---------------------------------------------------------------------- fit
    def _build(self, item_dim: int, user_dim: int) -> None:
        import torch

        cond_dim = item_dim + user_dim
        if cond_dim < 1:
            raise ValueError("item_cond and user_cond have 0 columns together; the generator needs a condition")
        if self._cond_dim_given is not None and self._cond_dim_given != cond_dim:
            raise ValueError(f"item_cond and user_cond have {item_dim} + {user_dim} = {cond_dim} columns; "
                             f"config.cond_dim is {self._cond_dim_given}")
        self.config = replace(self.config, cond_dim=cond_dim)
        self.item_dim, self.user_dim = item_dim, user_dim
        torch.manual_seed(self.config.seed)
        cond, enc, dec, disc = _networks(self.config, cond_dim)
        dev = self.device
        self._nets = {"cond": cond, "enc": enc, "dec": dec}
        if disc is not None:
            self._nets["disc"] = disc
        for k, net in self._nets.items():
            self._nets[k] = net.to(dev, memory_format=torch.channels_last)  # ~2x faster convs on CPU
        vae_params = [p for k in ("cond", "enc", "dec") for p in self._nets[k].parameters()]
        self._opts = {"vae": torch.optim.Adam(vae_params, lr=self.config.lr)}
        if disc is not None:
            self._opts["disc"] = torch.optim.Adam(self._nets["disc"].parameters(), lr=self.config.disc_lr,
                                                  betas=(0.0, 0.9))
        self.history = {"loss": [], "recon": [], "kl": []}
        if disc is not None:
            self.history.update({"d_loss": [], "g_adv": []})
        self.epochs_done = 0

    def _resume_from(self, checkpoint_dir: Path, item_dim: int, user_dim: int) -> bool:
        """Load the checkpoint in ``checkpoint_dir`` into ``self``; False when there is none."""
        if not (checkpoint_dir / MANIFEST).is_file():
            log.info("no checkpoint in %s: training from scratch", checkpoint_dir)
            return False
        ck = type(self).load(checkpoint_dir, device=self.config.device)
        for name, got, want in (("item_cond", item_dim, ck.item_dim), ("user_cond", user_dim, ck.user_dim)):
            if got != want:
                raise ValueError(f"{name} has {got} columns; the checkpoint in {checkpoint_dir} was trained "
                                 f"with {want}")
        diff = [f"{f.name}={getattr(self.config, f.name)!r} (checkpoint: {getattr(ck.config, f.name)!r})"
                for f in fields(CVAEConfig) if f.name not in _RESUME_FREE
                and getattr(self.config, f.name) != getattr(ck.config, f.name)]
        if diff:
            raise ValueError(f"config differs from the checkpoint in {checkpoint_dir}: {', '.join(diff)}; "
                             "resume with the config the checkpoint was trained with")
        ck.config = replace(ck.config, **{k: getattr(self.config, k) for k in _RESUME_FREE if k != "cond_dim"})
        ck._cond_dim_given = self._cond_dim_given
        self.__dict__.update(ck.__dict__)
        return True

    # ------------------------------------------------------------ the contract
    def fit(self, context: GenerationContext, *, progress: bool = False, checkpoint_dir: str | Path | None = None,
            resume: bool = False, epochs: int | None = None) -> "CVAEGenerator":
        """Train on the catalog's item images, conditioned on the model's item and user vectors.

        Builds the training set with :meth:`training_set` and trains with :meth:`fit_arrays`
        (``checkpoint_dir``, ``resume`` and ``epochs`` are passed on: the training set is the
        same for the same config and context, so a resumed fit continues the same run).

        Parameters
        ----------
        context : GenerationContext
            Needs ``catalog``.
        progress : bool
            tqdm bar over epochs.
        checkpoint_dir, resume, epochs
            See :meth:`fit_arrays`.

        Returns
        -------
        self
        """
        images, item_cond, user_cond = self.training_set(context)
        log.info("training %s on %d (image, item, user) pairs", "cgan" if self.adversarial else "cvae", len(images))
        return self.fit_arrays(images, item_cond, user_cond, progress=progress, checkpoint_dir=checkpoint_dir,
                               resume=resume, epochs=epochs)

    @staticmethod
    def item_condition(context: GenerationContext, rows: np.ndarray) -> np.ndarray:
        """The item condition ``concat(text, fused)`` of the model's item ``rows``, float32 (n, 2 * dim)."""
        return np.concatenate([context.item_vectors(rows, m) for m in _ITEM_COND], axis=1).astype(np.float32)

    def training_set(self, context: GenerationContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(images, item_cond, user_cond)`` for :meth:`fit_arrays` from the catalog.

        Every catalog item with an image (and vectors in the model) gives one neutral pair
        (zeros as the user) and up to ``pairs_per_item`` pairs with the taste vector of a
        user who interacted with it; ``cond_dropout`` of the personalized pairs get a zero
        item condition. Draws come from ``numpy.random.default_rng(config.seed)``.

        Returns
        -------
        images : ndarray of uint8, shape (n, image_size, image_size, 3)
        item_cond : ndarray of float32, shape (n, 2 * dim)
        user_cond : ndarray of float32, shape (n, dim)

        Raises
        ------
        ValueError
            No catalog in ``context``, or no catalog item has an image.
        """
        from recgen.encoders.image import load_image

        catalog = context.require_catalog("the preview generator")
        items = context.model.items
        rng = np.random.default_rng(self.config.seed)
        size = self.config.image_size
        path_of = {i: p for i, p in zip(catalog.items["item_id"].astype(str), catalog.items["image_path"])
                   if isinstance(p, str) and p}
        # train on the catalog's items only (a held-out item may be in the model but not here)
        has = items.present["image"] & pd.Index(items.ids).isin(list(path_of))
        rows = np.flatnonzero(has)
        if not len(rows):
            raise ValueError("no item of the catalog has an image: the preview generator needs item images "
                             "to learn from")
        pixels = np.stack([np.asarray(load_image(path_of[items.ids[r]]).resize((size, size)), dtype=np.uint8)
                           for r in rows])
        users_of = (catalog.interactions.assign(item_id=catalog.interactions["item_id"].astype(str))
                    .groupby("item_id")["user_id"].agg(list))
        img_idx, cond_rows, users = [], [], []
        for j, r in enumerate(rows):
            cands = list(dict.fromkeys(users_of.get(items.ids[r], [])))
            pick = rng.permutation(len(cands))[: self.config.pairs_per_item]
            for u in [None] + [cands[p] for p in pick]:
                img_idx.append(j)
                cond_rows.append(r)
                users.append(u)
        item_cond = self.item_condition(context, np.asarray(cond_rows))
        user_cond = context.user_vectors(users)
        drop = rng.random(len(item_cond)) < self.config.cond_dropout
        drop &= np.array([u is not None for u in users])  # keep neutral pairs fully conditioned
        item_cond[drop] = 0.0
        return pixels[np.asarray(img_idx)], item_cond, user_cond

    def generate(self, context: GenerationContext, item_ids: Sequence[str], user_ids: Sequence[str | None], *,
                 seed: int = 0) -> PreviewOutput:
        """One preview per (item, user) pair, the user's effect scaled by ``config.user_guidance``.

        Parameters
        ----------
        context : GenerationContext
            The model the generator was trained with (the catalog is not needed).
        item_ids : sequence of str
            Items of the model (with or without a photo: only their vectors are used).
        user_ids : sequence of str or None
            ``None`` or an unknown user: the neutral preview.
        seed : int
            Each pair's latent sample is seeded by ``(seed, item id)``: the same seed gives the
            same previews, a pair's preview does not depend on the other pairs of the call,
            and an item's personalized and neutral previews differ only by the user.

        Returns
        -------
        PreviewOutput
            ``images`` uint8 (n, image_size, image_size, 3).

        Raises
        ------
        UnknownIdError
            An item is not in the model.
        ValueError
            ``item_ids`` and ``user_ids`` differ in length.
        """
        self._check()
        if not _is_int(seed):
            raise TypeError(f"seed must be an integer; got {seed!r}")
        item_ids, user_ids = paired(item_ids, user_ids)
        cond = self.item_condition(context, context.item_rows(item_ids))
        user = context.user_vectors(user_ids)
        g = self.config.user_guidance
        seeds = np.array([zlib.crc32(f"{int(seed)}\0{i}".encode()) for i in item_ids], dtype=np.int64)
        personal = self.generate_arrays(cond, user, seed=seeds).astype(np.float32)
        if g == 1.0:
            images = personal.astype(np.uint8)
        else:
            neutral = self.generate_arrays(cond, np.zeros_like(user), seed=seeds).astype(np.float32)
            images = np.clip(neutral + g * (personal - neutral), 0, 255).round().astype(np.uint8)
        return PreviewOutput(images=images, user_ids=output_user_ids(user_ids), item_ids=item_ids)

    # ------------------------------------------------------------- on arrays
    def fit_arrays(self, images, item_cond, user_cond, *, progress: bool = False,
                   checkpoint_dir: str | Path | None = None, resume: bool = False,
                   epochs: int | None = None) -> "CVAEGenerator":
        """Train on (image, item condition, user condition) triples.

        Parameters
        ----------
        images : ndarray, uint8 (n, H, W, 3) or float in [0, 1]
            Resized (bicubic) to ``image_size`` when needed.
        item_cond : ndarray, float32 (n, d_item)
            Item vectors (e.g. the item's text and fused vectors, concatenated).
        user_cond : ndarray, float32 (n, d_user)
            Taste vector of a user who interacted with the item; zeros = neutral user.
        progress : bool
            tqdm bar over epochs with the running losses.
        checkpoint_dir : path, optional
            The generator is saved there (atomically, with optimizer state) after every epoch.
        resume : bool
            Continue from the checkpoint in ``checkpoint_dir`` (weights, optimizer state,
            epoch counter, history) at its next epoch; ``fit_arrays(epochs=4)`` ends with the
            same weights as ``fit_arrays(epochs=2, checkpoint_dir=d)`` then
            ``fit_arrays(epochs=4, checkpoint_dir=d, resume=True)``. Without a checkpoint there
            it trains from scratch.
        epochs : int, optional
            Total epochs to reach (default ``config.epochs``).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Inconsistent shapes or row counts, non-finite values, fewer than 2 images, or a
            checkpoint of other dimensions / config when resuming.
        ModelFitError
            A loss (or a weight) became NaN or inf.
        """
        import torch

        if resume and checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir (the folder fit() checkpoints into)")
        x_np = self._images(images)
        ic, uc = self._conds(item_cond, user_cond)  # dims: free on a fresh fit, checked against a checkpoint
        if len(x_np) != len(ic):
            raise ValueError(f"images has {len(x_np)} rows but item_cond and user_cond have {len(ic)}; "
                             "they must be paired")
        if len(ic) < 2:
            raise ValueError(f"need at least 2 images to train; got {len(ic)}")
        total = self.config.epochs if epochs is None else epochs
        if not _is_int(total) or total < 0:
            raise ValueError(f"epochs must be an integer >= 0; got {epochs!r}")
        if not (resume and self._resume_from(Path(checkpoint_dir), ic.shape[1], uc.shape[1])):
            self._build(ic.shape[1], uc.shape[1])
        x_all = torch.from_numpy(x_np)
        cond_all = torch.from_numpy(np.concatenate([ic, uc], axis=1))
        epoch_iter = range(self.epochs_done, int(total))
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(epoch_iter, desc="cgan" if self.adversarial else "cvae", unit="epoch")
            epoch_iter = bar
        t0 = time.perf_counter()
        for epoch in epoch_iter:
            means = self._epoch(epoch, int(total), x_all, cond_all)
            for k, v in means.items():
                self.history[k].append(v)
            self.epochs_done = epoch + 1
            if bar is not None:
                bar.set_postfix({k: f"{means[k]:.3g}" for k in ("loss", "recon", "kl")})
            log.debug("cvae epoch %d/%d: %s (%.1fs)", epoch + 1, total, means, time.perf_counter() - t0)
            if checkpoint_dir is not None:
                self.save(checkpoint_dir)
        for net in self._nets.values():
            net.eval()
        return self

    def _epoch(self, epoch: int, total: int, x_all, cond_all) -> dict[str, float]:
        import torch
        import torch.nn.functional as F

        c, nets, dev = self.config, self._nets, self.device
        # one generator per epoch, seeded by (seed, epoch): a resumed run draws the same
        # order and noise as an uninterrupted one
        g = torch.Generator().manual_seed(c.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(x_all), generator=g)
        for net in nets.values():
            net.train()
        beta = c.beta * min(1.0, (epoch + 1) / c.warmup_epochs) if c.warmup_epochs else c.beta
        sums = {k: 0.0 for k in self.history}
        steps = 0
        for step, s in enumerate(range(0, len(perm), c.batch_size), start=1):
            idx = perm[s:s + c.batch_size]
            if len(idx) < 2:  # batch norm needs two samples; the leftover one is seen next epoch
                continue
            x = x_all[idx].to(dev).contiguous(memory_format=torch.channels_last)
            cond = cond_all[idx].to(dev)
            eps = torch.randn((len(idx), c.latent_dim), generator=g).to(dev)
            h = nets["cond"](cond)
            mu, logvar = nets["enc"](x, h)
            logits = nets["dec"](mu + eps * (0.5 * logvar).exp(), h)
            xr = torch.sigmoid(logits)
            if c.recon_loss == "bce":
                recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
            else:
                recon = F.mse_loss(xr, x, reduction="sum") / len(x)
            kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
            loss = recon + beta * kl
            parts = {"recon": recon, "kl": kl}
            backward = None
            if "disc" in nets:
                disc, n = nets["disc"], len(x)
                d_out = disc(torch.cat([x, xr.detach()]), torch.cat([cond, cond]))
                d_loss = F.relu(1 - d_out[:n]).mean() + F.relu(1 + d_out[n:]).mean()
                self._step("disc", d_loss, epoch, total, step)
                g_adv = -disc(xr, cond).mean()
                # adaptive weight (VQGAN), measured on the decoder's logits: both gradients meet
                # there, so one backward pass through D serves the weight and the update
                g_rec = torch.autograd.grad(recon, logits, retain_graph=True)[0]
                g_gan = torch.autograd.grad(g_adv, logits)[0]
                w = c.adversarial_weight * float((g_rec.norm() / (g_gan.norm() + 1e-8)).clamp(max=1e4))
                loss = loss + w * g_adv.detach()
                parts.update(d_loss=d_loss, g_adv=g_adv)
                kl_term = beta * kl

                def backward():
                    torch.autograd.backward([logits, kl_term], [g_rec + w * g_gan, torch.ones_like(kl_term)])

            parts["loss"] = loss
            self._step("vae", loss, epoch, total, step, backward)
            for k, v in parts.items():
                sums[k] += float(v.detach())
            steps += 1
        for name, net in nets.items():  # the last step's update is not checked by a later loss
            if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
                raise ModelFitError(f"{name} weights became NaN/inf in epoch {epoch + 1}/{total}; "
                                    f"lower the learning rate (lr={c.lr}, disc_lr={c.disc_lr})")
        return {k: v / max(steps, 1) for k, v in sums.items()}

    def _step(self, which: str, loss, epoch: int, total: int, step: int, backward=None) -> None:
        import torch

        if not torch.isfinite(loss):
            raise ModelFitError(
                f"{'discriminator' if which == 'disc' else 'VAE'} loss became {loss.item()} in epoch "
                f"{epoch + 1}/{total}, step {step}; lower the learning rate "
                f"({'disc_lr=' + str(self.config.disc_lr) if which == 'disc' else 'lr=' + str(self.config.lr)})")
        opt = self._opts[which]
        opt.zero_grad(set_to_none=True)
        loss.backward() if backward is None else backward()
        opt.step()

    def generate_arrays(self, item_cond, user_cond, *, seed: int = 0, temperature: float = 1.0,
                        batch_size: int = 256) -> np.ndarray:
        """Draw one preview per (item_cond, user_cond) row.

        Parameters
        ----------
        item_cond : ndarray, float32 (n, d_item)
        user_cond : ndarray, float32 (n, d_user)
            Zeros = neutral user.
        seed : int or sequence of int
            Seeds ``z ~ N(0, temperature^2 I)``: the same seed gives the same images (row
            ``i``'s image depends on ``seed`` and ``n``, not on ``batch_size``). A sequence
            of ``n`` seeds draws each row's noise from its own seed, so a row's image does
            not depend on the other rows of the call (what services and caches need).
        temperature : float
            Scale of the latent noise; 0 gives the decoder's mode for the condition.
        batch_size : int

        Returns
        -------
        ndarray of uint8, shape (n, image_size, image_size, 3)
        """
        import torch

        self._check()
        ic, uc = self._conds(item_cond, user_cond, (self.item_dim, self.user_dim))
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
                or not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature must be a finite number >= 0; got {temperature!r}")
        if not _is_int(batch_size) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")
        if _is_int(seed):
            z_all = torch.randn((len(ic), self.config.latent_dim), generator=torch.Generator().manual_seed(int(seed)))
        else:
            seeds = np.asarray(seed) if isinstance(seed, (list, tuple, np.ndarray)) else None
            if seeds is None or seeds.shape != (len(ic),) or not np.issubdtype(seeds.dtype, np.integer):
                raise TypeError(f"seed must be an integer or a sequence of {len(ic)} integers (one per row); "
                                f"got {seed!r}")
            z_all = torch.zeros((len(ic), self.config.latent_dim))
            for r, sd in enumerate(seeds.tolist()):
                z_all[r] = torch.randn(self.config.latent_dim, generator=torch.Generator().manual_seed(int(sd)))
        z_all = z_all * float(temperature)
        cond_all = torch.from_numpy(np.concatenate([ic, uc], axis=1))
        s = self.config.image_size
        out = [np.zeros((0, s, s, 3), np.uint8)]
        with torch.no_grad():
            for b in range(0, len(ic), batch_size):
                h = self._nets["cond"](cond_all[b:b + batch_size].to(self.device))
                xr = torch.sigmoid(self._nets["dec"](z_all[b:b + batch_size].to(self.device), h))
                out.append(_to_uint8(xr))
        return np.concatenate(out)

    def reconstruct(self, images, item_cond, user_cond) -> np.ndarray:
        """Decode the posterior mean of each image: uint8 (n, image_size, image_size, 3)."""
        import torch

        self._check()
        x_np = self._images(images)
        ic, uc = self._conds(item_cond, user_cond, (self.item_dim, self.user_dim))
        if len(x_np) != len(ic):
            raise ValueError(f"images has {len(x_np)} rows but item_cond and user_cond have {len(ic)}")
        with torch.no_grad():
            x = torch.from_numpy(x_np).to(self.device).contiguous(memory_format=torch.channels_last)
            h = self._nets["cond"](torch.from_numpy(np.concatenate([ic, uc], 1)).to(self.device))
            mu, _ = self._nets["enc"](x, h)
            return _to_uint8(torch.sigmoid(self._nets["dec"](mu, h)))

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Save atomically to ``directory`` (replacing what is there), with :func:`~recgen._io.save_torch_state`.

        Files: ``weights.safetensors`` (networks ``cond``, ``enc``, ``dec`` and, when
        adversarial, ``disc``), ``optimizer.safetensors`` (Adam moments and step counts, so
        :meth:`fit_arrays` can resume) and ``manifest.json`` (config, condition dims,
        history, epoch counter, optimizer hyper-parameters, checksums). The generator itself
        is not changed.
        """
        self._check()
        config = {"cvae": asdict(self.config), "item_dim": self.item_dim, "user_dim": self.user_dim,
                  "history": self.history, "epochs_done": self.epochs_done}
        return save_torch_state(directory, kind=_KIND, modules=self._nets, optimizers=self._opts, config=config)

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True, device: str | None = None) -> "CVAEGenerator":
        """Load a generator saved by :meth:`save` (no pickle involved).

        Parameters
        ----------
        directory : path
        verify : bool
            Check every file against the manifest's checksums.
        device : str, optional
            Overrides the saved ``config.device`` (e.g. load a GPU-trained model on CPU).

        Raises
        ------
        ArtifactError
            Missing, incomplete, tampered or inconsistent artefact.
        """
        made: list[CVAEGenerator] = []

        def build(cfg: dict[str, Any]) -> dict[str, Any]:
            config = CVAEConfig(**cfg["cvae"])
            if device is not None:
                config = replace(config, device=device)
            gen = cls(replace(config, cond_dim=None))
            gen._build(int(cfg["item_dim"]), int(cfg["user_dim"]))
            gen.history = {k: [float(x) for x in v] for k, v in cfg["history"].items()}
            gen.epochs_done = int(cfg["epochs_done"])
            made.append(gen)
            return gen._nets

        load_torch_state(directory, kind=_KIND, modules=build, optimizers=lambda _: made[-1]._opts, verify=verify)
        gen = made[-1]
        for net in gen._nets.values():
            net.eval()
        return gen


def _networks(cfg: CVAEConfig, cond_dim: int):
    """(condition MLP, encoder, decoder, discriminator or None) for ``cfg``.

    Created in the order condition MLP, discriminator, encoder, decoder: the seeded
    initialization (and so every saved reference output) depends on it.
    """
    from recgen.generators.nets.cvae import ConditionMLP, ConvEncoder, FiLMDecoder, ProjectionDiscriminator

    chans = cfg.channels
    cond = ConditionMLP(cond_dim, cfg.cond_hidden)
    disc = ProjectionDiscriminator(chans, cond_dim) if cfg.adversarial_weight > 0 else None
    enc = ConvEncoder(chans, cfg.latent_dim, cfg.cond_hidden)
    dec = FiLMDecoder(chans, cfg.latent_dim, cfg.cond_hidden)
    return cond, enc, dec, disc


def _to_uint8(x) -> np.ndarray:
    """(n, 3, S, S) float in [0, 1] -> uint8 (n, S, S, 3)."""
    return (x.permute(0, 2, 3, 1).float().cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
