"""Networks of the conditional VAE / cGAN preview generator (:mod:`recgen.generators.cvae`).

Shapes (``S`` = image size, ``k = len(channels)`` stride-2 stages, ``S = 4 * 2**k``; the
channels per stage come from :attr:`recgen.generators.cvae.CVAEConfig.channels`):

* :class:`ConditionMLP`: ``(n, cond_dim) -> (n, hidden)``, the vector ``h`` both the encoder
  and the decoder see.
* :class:`ConvEncoder`: ``x (n, 3, S, S), h (n, hidden) -> mu, logvar (n, latent_dim)``.
* :class:`FiLMDecoder`: ``z (n, latent_dim), h (n, hidden) -> logits (n, 3, S, S)``.
* :class:`ProjectionDiscriminator`: ``x (n, 3, S, S), c (n, cond_dim) -> scores (n,)``.

Attribute names are part of the saved format (they are the safetensors keys), and the order
in which the layers are created is part of the seeded initialization: change neither
without a format change.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn


class ConditionMLP(nn.Sequential):
    """``Linear(cond_dim, hidden) -> SiLU -> Linear(hidden, hidden)``.

    A :class:`torch.nn.Sequential` so its state-dict keys are ``0.weight`` ... as before it
    had a name.

    Parameters
    ----------
    cond_dim : int
        Width of ``concat(item_cond, user_cond)``.
    hidden : int
        Width of the output ``h``.
    """

    def __init__(self, cond_dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(cond_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))


class ConvEncoder(nn.Module):
    """Posterior ``q(z | x, h)``: stride-2 4x4 convolutions, then a linear head on ``[features, h]``.

    Parameters
    ----------
    channels : sequence of int
        Output channels of each stride-2 stage; the last stage's maps are 4x4.
    latent_dim : int
    cond_hidden : int
        Width of ``h``.
    """

    def __init__(self, channels: Sequence[int], latent_dim: int, cond_hidden: int) -> None:
        super().__init__()
        layers, cin = [], 3
        for c in channels:  # stride-2 4x4 convs: 2.25x cheaper than pool/upsample + 3x3 on CPU
            layers += [nn.Conv2d(cin, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            cin = c
        self.conv = nn.Sequential(*layers)
        self.head = nn.Linear(cin * 16 + cond_hidden, 2 * latent_dim)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``, each (n, latent_dim); logvar clamped to [-10, 10]."""
        mu, logvar = self.head(torch.cat([self.conv(x).flatten(1), h], 1)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)  # keeps exp(logvar) finite early in training


class FiLMDecoder(nn.Module):
    """Image logits from ``(z, h)``: a 4x4 seed map, transposed convs modulated by FiLM of ``h``.

    Parameters
    ----------
    channels : sequence of int
        The encoder's stage channels; the decoder runs them in reverse.
    latent_dim, cond_hidden : int
    """

    def __init__(self, channels: Sequence[int], latent_dim: int, cond_hidden: int) -> None:
        super().__init__()
        self.c0 = channels[-1]
        self.fc = nn.Sequential(nn.Linear(latent_dim + cond_hidden, self.c0 * 16), nn.SiLU())
        ups, films, cin = [], [], self.c0
        for c in reversed(channels[:-1]):
            ups.append(nn.ConvTranspose2d(cin, c, 4, 2, 1))
            films.append(nn.Linear(cond_hidden, 2 * c))
            cin = c
        self.ups, self.films = nn.ModuleList(ups), nn.ModuleList(films)
        # kernel 4 / stride 2: every output pixel gets the same number of taps (no checkerboard)
        self.out = nn.ConvTranspose2d(cin, 3, 4, 2, 1)
        self.out_shift = nn.Linear(cond_hidden, 3)  # per-image colour cast from the condition
        self.act = nn.SiLU()

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Logits of the image, (n, 3, S, S)."""
        x = self.fc(torch.cat([z, h], 1)).view(-1, self.c0, 4, 4).contiguous(memory_format=torch.channels_last)
        for up, film in zip(self.ups, self.films):
            # FiLM: the condition modulates every scale, so the decoder learns to use it
            # quickly instead of letting z carry what the condition already says
            scale, shift = film(h)[:, :, None, None].chunk(2, dim=1)
            x = self.act(up(x) * (1 + scale) + shift)
        return self.out(x) + self.out_shift(h)[:, :, None, None]


class ProjectionDiscriminator(nn.Module):
    """``D(x, c) = psi(phi(x)) + <embed(c), phi(x)>`` (Miyato & Koyama 2018), spectral-normalized.

    Parameters
    ----------
    channels : sequence of int
        Output channels of each stride-2 stage of ``phi``.
    cond_dim : int
        Width of the raw condition ``c`` (not ``h``: the discriminator judges the input
        condition itself).
    """

    def __init__(self, channels: Sequence[int], cond_dim: int) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        layers, cin = [], 3
        for c in channels:
            layers += [sn(nn.Conv2d(cin, c, 4, 2, 1)), nn.LeakyReLU(0.2)]
            cin = c
        self.phi = nn.Sequential(*layers)
        self.psi = sn(nn.Linear(cin, 1))
        self.embed = sn(nn.Linear(cond_dim, cin, bias=False))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Realness scores, (n,)."""
        f = self.phi(x).sum(dim=(2, 3))
        return self.psi(f).squeeze(1) + (self.embed(c) * f).sum(1)
