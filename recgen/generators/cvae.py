"""Conditional VAE preview generator, with an optional cGAN (projection discriminator) term.

The decoder draws an image from a latent sample and a condition vector made from the
item's vectors and the user's taste vector. With ``adversarial_weight > 0`` a projection
discriminator (Miyato & Koyama, 2018: ``D(x, c) = psi(phi(x)) + <embed(c), phi(x)>``) is
trained with the hinge loss and its adversarial term is added to the decoder's loss, which
sharpens the blurry averages a pure VAE produces.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recgen._io import atomic_path, read_manifest, save_directory, write_manifest
from recgen.errors import ArtifactError, ModelFitError, NotFittedError

log = logging.getLogger(__name__)

_KIND = "cvae-generator"


@dataclass
class CVAEConfig:
    """Hyper-parameters of :class:`CVAEGenerator`.

    Attributes
    ----------
    image_size : int
        Square output size, a power of two >= 16 (64 on CPU by default).
    latent_dim : int
    base_channels : int
        Channels of the first conv stage (doubled per stage, capped at 8x).
    cond_hidden : int
        Width of the condition MLP.
    beta : float
        KL weight (reached after ``warmup_epochs`` of linear warm-up).
    warmup_epochs : int
    epochs, batch_size : int
    lr : float
        Adam learning rate of the VAE.
    adversarial_weight : float
        0 = plain cVAE; > 0 adds the projection-discriminator hinge loss (the "cgan" preset).
    disc_lr : float
    seed : int
    device : str, optional
        Torch device; CUDA when available by default.
    """

    image_size: int = 64
    latent_dim: int = 32
    base_channels: int = 32
    cond_hidden: int = 128
    beta: float = 0.5
    warmup_epochs: int = 5
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    adversarial_weight: float = 0.0
    disc_lr: float = 2e-4
    seed: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 16; got {self.image_size}")
        for name in ("latent_dim", "base_channels", "cond_hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1 and not (name == "epochs" and getattr(self, name) == 0):
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        for name in ("beta", "adversarial_weight", "lr", "disc_lr"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be finite and >= 0; got {v}")


def _modules(cfg: CVAEConfig, cond_dim: int):
    import torch
    import torch.nn as nn

    stages = int(math.log2(cfg.image_size)) - 2  # down to 4x4
    chans = [min(cfg.base_channels * 2 ** i, cfg.base_channels * 8) for i in range(stages)]

    class CondNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(cond_dim, cfg.cond_hidden), nn.SiLU(),
                                     nn.Linear(cfg.cond_hidden, cfg.cond_hidden))

        def forward(self, c):
            return self.net(c)

    def down(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))

    def up(cin, cout):
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1),
                             nn.BatchNorm2d(cout), nn.SiLU())

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [], 3
            for c in chans:
                layers.append(down(cin, c))
                cin = c
            self.conv = nn.Sequential(*layers)
            self.head = nn.Linear(cin * 16 + cfg.cond_hidden, 2 * cfg.latent_dim)

        def forward(self, x, h):
            mu, logvar = self.head(torch.cat([self.conv(x).flatten(1), h], 1)).chunk(2, dim=1)
            return mu, logvar.clamp(-10, 10)

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0 = chans[-1]
            self.fc = nn.Linear(cfg.latent_dim + cfg.cond_hidden, self.c0 * 16)
            layers, cin = [], self.c0
            for c in reversed(chans[:-1]):
                layers.append(up(cin, c))
                cin = c
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, 3, 3, 1, 1)]
            self.deconv = nn.Sequential(*layers)

        def forward(self, z, h):
            x = self.fc(torch.cat([z, h], 1)).view(-1, self.c0, 4, 4)
            return torch.sigmoid(self.deconv(x))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            sn = nn.utils.parametrizations.spectral_norm
            layers, cin = [], 3
            for c in chans:
                layers += [sn(nn.Conv2d(cin, c, 4, 2, 1)), nn.LeakyReLU(0.2)]
                cin = c
            self.phi = nn.Sequential(*layers)
            self.psi = sn(nn.Linear(cin, 1))
            self.embed = sn(nn.Linear(cond_dim, cin))

        def forward(self, x, c):
            f = self.phi(x).sum(dim=(2, 3))
            return self.psi(f).squeeze(1) + (self.embed(c) * f).sum(1)

    return CondNet(), Encoder(), Decoder(), (Discriminator() if cfg.adversarial_weight > 0 else None)


class CVAEGenerator:
    """Conditional VAE (optionally + cGAN head) that draws previews from item and user vectors.

    Examples
    --------
    >>> gen = CVAEGenerator(CVAEConfig(epochs=20)).fit(images, item_cond, user_cond, progress=True)
    >>> previews = gen.generate(item_cond[:4], user_cond[:4], seed=0)   # uint8 (4, 64, 64, 3)
    """

    def __init__(self, config: CVAEConfig | None = None) -> None:
        self.config = config or CVAEConfig()
        self.item_dim: int | None = None
        self.user_dim: int | None = None
        self.history: dict[str, list[float]] = {}
        self.epochs_done = 0
        self._nets = None
        self._opts = None

    @property
    def device(self) -> str:
        from recgen.encoders.base import pick_device

        return pick_device(self.config.device)

    # --------------------------------------------------------------- validation
    def _inputs(self, images, item_cond, user_cond):
        x = None
        if images is not None:
            x = self._images(images)
        ic = np.asarray(item_cond, dtype=np.float32)
        uc = np.asarray(user_cond, dtype=np.float32)
        if ic.ndim != 2:
            raise ValueError(f"item_cond must be 2-D (n, dim); got shape {ic.shape}")
        if uc.ndim != 2:
            raise ValueError(f"user_cond must be 2-D (n, dim); got shape {uc.shape}")
        n = len(ic)
        if len(uc) != n or (x is not None and len(x) != n):
            raise ValueError(f"images ({None if x is None else len(x)}), item_cond ({n}) and user_cond ({len(uc)}) "
                             "must have the same number of rows")
        if not (np.isfinite(ic).all() and np.isfinite(uc).all()):
            raise ValueError("item_cond / user_cond contain NaN or inf")
        if self.item_dim is not None and (ic.shape[1], uc.shape[1]) != (self.item_dim, self.user_dim):
            raise ValueError(f"item_cond/user_cond have dims ({ic.shape[1]}, {uc.shape[1]}); this generator was "
                             f"fitted with ({self.item_dim}, {self.user_dim})")
        return x, ic, uc

    def _images(self, images) -> np.ndarray:
        from PIL import Image

        arr = np.asarray(images)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"images must have shape (n, H, W, 3); got {arr.shape}")
        if arr.dtype != np.uint8:
            if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
                raise ValueError("float images must be finite and within [0, 1]")
            arr = (arr * 255).round().astype(np.uint8)
        s = self.config.image_size
        if arr.shape[1:3] != (s, s):
            arr = np.stack([np.asarray(Image.fromarray(a).resize((s, s), Image.BICUBIC)) for a in arr])
        return arr

    # ---------------------------------------------------------------------- fit
    def _build(self, item_dim: int, user_dim: int) -> None:
        import torch

        torch.manual_seed(self.config.seed)
        self.item_dim, self.user_dim = item_dim, user_dim
        cond, enc, dec, disc = _modules(self.config, item_dim + user_dim)
        dev = self.device
        self._nets = {"cond": cond.to(dev), "enc": enc.to(dev), "dec": dec.to(dev)}
        if disc is not None:
            self._nets["disc"] = disc.to(dev)
        vae_params = [p for k in ("cond", "enc", "dec") for p in self._nets[k].parameters()]
        self._opts = {"vae": torch.optim.Adam(vae_params, lr=self.config.lr)}
        if disc is not None:
            self._opts["disc"] = torch.optim.Adam(self._nets["disc"].parameters(), lr=self.config.disc_lr,
                                                  betas=(0.0, 0.9))

    def fit(self, images, item_cond, user_cond, *, progress: bool = False, checkpoint_dir: str | Path | None = None,
            resume: bool = False, epochs: int | None = None) -> "CVAEGenerator":
        """Train on (image, item condition, user condition) triples.

        Parameters
        ----------
        images : ndarray, uint8 (n, H, W, 3) or float in [0, 1]
            Resized to ``image_size`` when needed.
        item_cond : ndarray, float32 (n, d_item)
            Item vectors (zeros where the item condition is dropped).
        user_cond : ndarray, float32 (n, d_user)
            Taste vector of a user who interacted with the item; zeros = neutral.
        progress : bool
            tqdm bar with the running losses.
        checkpoint_dir : path, optional
            Saved (atomically) after every epoch.
        resume : bool
            Continue from the checkpoint in ``checkpoint_dir`` (weights, optimizer state,
            epoch counter): ``fit(epochs=4)`` equals ``fit(epochs=2)`` then a resumed ``fit(epochs=4)``.
        epochs : int, optional
            Total epochs to reach (default ``config.epochs``).

        Raises
        ------
        ModelFitError
            A loss became NaN or inf.
        """
        import torch
        import torch.nn.functional as F

        x_np, ic, uc = self._inputs(images, item_cond, user_cond)
        c = self.config
        total_epochs = c.epochs if epochs is None else int(epochs)
        if resume:
            if checkpoint_dir is None:
                raise ValueError("resume=True needs checkpoint_dir")
            if (Path(checkpoint_dir) / "manifest.json").exists():
                loaded = type(self).load(checkpoint_dir)
                if (loaded.item_dim, loaded.user_dim) != (ic.shape[1], uc.shape[1]):
                    raise ValueError(f"checkpoint in {checkpoint_dir} has condition dims "
                                     f"({loaded.item_dim}, {loaded.user_dim}); the data has ({ic.shape[1]}, {uc.shape[1]})")
                self.__dict__.update(loaded.__dict__)
        if self._nets is None or not resume:
            self._build(ic.shape[1], uc.shape[1])
            self.history = {"loss": [], "recon": [], "kl": []}
            if "disc" in self._nets:
                self.history.update({"d_loss": [], "g_adv": []})
            self.epochs_done = 0
        dev = self.device
        x_all = torch.from_numpy(x_np).permute(0, 3, 1, 2).float().div(255.0)
        cond_all = torch.from_numpy(np.concatenate([ic, uc], axis=1))
        n = len(x_all)
        pixels = float(x_all[0].numel())
        epoch_iter = range(self.epochs_done, total_epochs)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(epoch_iter, desc=f"cvae{'+gan' if 'disc' in self._nets else ''}", unit="epoch")
            epoch_iter = bar
        for epoch in epoch_iter:
            g = torch.Generator().manual_seed(c.seed * 100_003 + epoch)
            perm = torch.randperm(n, generator=g)
            for net in self._nets.values():
                net.train()
            beta = c.beta * min(1.0, (epoch + 1) / max(c.warmup_epochs, 1))
            sums = {k: 0.0 for k in self.history}
            steps = 0
            for s in range(0, n, c.batch_size):
                idx = perm[s:s + c.batch_size]
                if len(idx) < 2:
                    continue
                x, cond = x_all[idx].to(dev), cond_all[idx].to(dev)
                h = self._nets["cond"](cond)
                mu, logvar = self._nets["enc"](x, h)
                eps = torch.randn(mu.shape, generator=g).to(dev)
                z = mu + eps * (0.5 * logvar).exp()
                xr = self._nets["dec"](z, h)
                recon = F.mse_loss(xr, x, reduction="sum") / len(x) / pixels * 1000.0
                kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean() / pixels * 1000.0
                loss = recon + beta * kl
                parts = {"recon": recon, "kl": kl}
                if "disc" in self._nets:
                    disc = self._nets["disc"]
                    d_loss = F.relu(1 - disc(x, cond)).mean() + F.relu(1 + disc(xr.detach(), cond)).mean()
                    self._step("disc", d_loss, epoch, s)
                    g_adv = -disc(xr, cond).mean()
                    loss = loss + c.adversarial_weight * g_adv
                    parts.update(d_loss=d_loss, g_adv=g_adv)
                self._step("vae", loss, epoch, s)
                parts["loss"] = loss
                for k, v in parts.items():
                    sums[k] += float(v.detach())
                steps += 1
            for k in self.history:
                self.history[k].append(sums[k] / max(steps, 1))
            self.epochs_done = epoch + 1
            if bar is not None:
                bar.set_postfix(loss=f"{self.history['loss'][-1]:.2f}", recon=f"{self.history['recon'][-1]:.2f}")
            if checkpoint_dir is not None:
                self.save(checkpoint_dir)
        for net in self._nets.values():
            net.eval()
        return self

    def _step(self, which: str, loss, epoch: int, step: int) -> None:
        import torch

        if not torch.isfinite(loss):
            raise ModelFitError(f"{which} loss became {loss.item()} at epoch {epoch}, batch offset {step}; "
                                f"lower the learning rate (lr={self.config.lr}, disc_lr={self.config.disc_lr})")
        opt = self._opts[which]
        opt.zero_grad()
        loss.backward()
        opt.step()

    # ----------------------------------------------------------------- generate
    def _check(self) -> None:
        if self._nets is None or self.epochs_done == 0:
            raise NotFittedError("CVAEGenerator is not fitted: call fit() or load() first")

    def generate(self, item_cond, user_cond, *, seed: int = 0, temperature: float = 1.0,
                 batch_size: int = 256) -> np.ndarray:
        """Draw previews: uint8 (n, image_size, image_size, 3). The same seed gives the same images."""
        import torch

        self._check()
        _, ic, uc = self._inputs(None, item_cond, user_cond)
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0; got {temperature}")
        g = torch.Generator().manual_seed(int(seed))
        z_all = torch.randn((len(ic), self.config.latent_dim), generator=g) * temperature
        cond_all = torch.from_numpy(np.concatenate([ic, uc], axis=1))
        out = []
        with torch.no_grad():
            for s in range(0, len(ic), batch_size):
                h = self._nets["cond"](cond_all[s:s + batch_size].to(self.device))
                out.append(self._nets["dec"](z_all[s:s + batch_size].to(self.device), h).cpu())
        if not out:
            s = self.config.image_size
            return np.zeros((0, s, s, 3), dtype=np.uint8)
        x = torch.cat(out).permute(0, 2, 3, 1).numpy()
        return (x * 255).round().clip(0, 255).astype(np.uint8)

    def reconstruct(self, images, item_cond, user_cond) -> np.ndarray:
        """Posterior-mean reconstructions (uint8), for checking what the model has learned."""
        import torch

        self._check()
        x_np, ic, uc = self._inputs(images, item_cond, user_cond)
        with torch.no_grad():
            x = torch.from_numpy(x_np).permute(0, 3, 1, 2).float().div(255.0).to(self.device)
            h = self._nets["cond"](torch.from_numpy(np.concatenate([ic, uc], 1)).to(self.device))
            mu, _ = self._nets["enc"](x, h)
            xr = self._nets["dec"](mu, h).cpu().permute(0, 2, 3, 1).numpy()
        return (xr * 255).round().clip(0, 255).astype(np.uint8)

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Weights and optimizer state (safetensors) + config and history (manifest), atomically."""
        from safetensors.torch import save_file

        self._check()
        tensors = {}
        for name, net in self._nets.items():
            for k, v in net.state_dict().items():
                tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
        opt_meta: dict[str, Any] = {}
        for name, opt in self._opts.items():
            state = opt.state_dict()
            opt_meta[name] = {"param_groups": state["param_groups"], "steps": {}}
            for pid, st in state["state"].items():
                for k, v in st.items():
                    if hasattr(v, "detach"):
                        tensors[f"opt.{name}.{pid}.{k}"] = v.detach().cpu().contiguous().reshape(v.shape)
        config = {"cvae": asdict(self.config), "item_dim": self.item_dim, "user_dim": self.user_dim,
                  "history": self.history, "epochs_done": self.epochs_done, "optimizers": opt_meta}

        def write(tmp: Path) -> None:
            with atomic_path(tmp / "weights.safetensors") as p:
                save_file(tensors, str(p))
            write_manifest(tmp, kind=_KIND, files=["weights.safetensors"], config=config)

        return save_directory(directory, write)

    @classmethod
    def load(cls, directory: str | Path) -> "CVAEGenerator":
        """Load a generator (and its optimizer state, for resuming) saved by :meth:`save`."""
        from safetensors.torch import load_file

        directory = Path(directory)
        manifest = read_manifest(directory, kind=_KIND)
        cfg = manifest["config"]
        try:
            gen = cls(CVAEConfig(**cfg["cvae"]))
            gen._build(int(cfg["item_dim"]), int(cfg["user_dim"]))
            tensors = load_file(str(directory / "weights.safetensors"))
            for name, net in gen._nets.items():
                prefix = f"{name}."
                net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
                net.eval()
            for name, opt in gen._opts.items():
                meta = cfg["optimizers"][name]
                state: dict[int, dict[str, Any]] = {}
                for k, v in tensors.items():
                    if k.startswith(f"opt.{name}."):
                        _, _, pid, key = k.split(".", 3)
                        state.setdefault(int(pid), {})[key] = v
                opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
            gen.history = {k: list(v) for k, v in cfg["history"].items()}
            gen.epochs_done = int(cfg["epochs_done"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"{directory}: generator weights do not match its manifest: {exc}") from exc
        return gen
