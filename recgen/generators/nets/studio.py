"""Networks of the studio preview generator (:mod:`recgen.generators.studio`).

* :class:`MoodCVAE`: a small conditional VAE over 4x4 colour "moods", conditioned on a
  user's taste vector. It learns what the items a user liked look like at the lowest
  frequencies (their colours and where they sit), so a taste vector alone, also one built
  from reviews or text only, gives a backdrop in that user's palette.
* :class:`BilateralEditor`: an image-conditioned colour editor after HDRNet (Gharbi et al.
  2017): a low-resolution network, FiLM-modulated by the text condition, predicts a bilateral
  grid of per-pixel affine colour transforms; a learned per-pixel guide slices it at full
  resolution. The output is ``A(x, y, g) @ rgb + b``: every edge of the input is kept, so
  the result is as sharp as the exemplar at any resolution, and only colours move.
The editor trains as a cGAN against the CVAE's
:class:`~recgen.generators.nets.cvae.ProjectionDiscriminator` (Miyato & Koyama 2018), fed the
target's text condition.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

MOOD_GRID = 4  # a mood is (3, MOOD_GRID, MOOD_GRID) colours in [0, 1]


class MoodCVAE(nn.Module):
    """``p(mood | taste)``: MLP encoder and decoder over flattened 4x4 colour grids.

    Parameters
    ----------
    cond_dim : int
        Width of the taste vector.
    hidden : int
    latent_dim : int
    """

    def __init__(self, cond_dim: int, hidden: int = 64, latent_dim: int = 4) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        flat = 3 * MOOD_GRID * MOOD_GRID
        self.cond = nn.Sequential(nn.Linear(cond_dim, hidden), nn.SiLU())
        self.enc = nn.Sequential(nn.Linear(flat + hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2 * latent_dim))
        self.dec = nn.Sequential(nn.Linear(latent_dim + hidden, hidden), nn.SiLU(), nn.Linear(hidden, flat))

    def encode(self, mood: torch.Tensor, taste: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of ``q(z | mood, taste)``."""
        mu, logvar = self.enc(torch.cat([mood.flatten(1), self.cond(taste)], 1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8, 8)

    def decode(self, z: torch.Tensor, taste: torch.Tensor) -> torch.Tensor:
        """Moods in [0, 1], (n, 3, G, G)."""
        out = torch.sigmoid(self.dec(torch.cat([z, self.cond(taste)], 1)))
        return out.view(-1, 3, MOOD_GRID, MOOD_GRID)

    def forward(self, mood: torch.Tensor, taste: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(reconstruction, mu, logvar)`` with the reparameterization trick."""
        mu, logvar = self.encode(mood, taste)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z, taste), mu, logvar


class BilateralEditor(nn.Module):
    """Edit an exemplar image's colours toward a condition, keeping all of its edges.

    Parameters
    ----------
    cond_dim : int
        Width of the condition (e.g. ``concat(target text vector, exemplar text vector)``).
    grid : int
        Spatial size of the bilateral grid (``grid x grid`` cells).
    depth : int
        Guide bins of the grid.
    width : int
        Channels of the low-resolution network.
    low_res : int
        Size the exemplar is resized to for the low-resolution network.
    """

    def __init__(self, cond_dim: int, *, grid: int = 8, depth: int = 8, width: int = 32, low_res: int = 16) -> None:
        super().__init__()
        self.grid, self.depth, self.low_res = grid, depth, low_res
        self.cond = nn.Sequential(nn.Linear(cond_dim, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU())
        stages, cin, size = [], 3, low_res
        while size > grid:
            stages.append(nn.Conv2d(cin, width, 3, 2, 1))
            cin, size = width, size // 2
        self.stages = nn.ModuleList(stages)
        self.films = nn.ModuleList(nn.Linear(128, 2 * width) for _ in stages)
        self.local = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.SiLU())
        self.global_ = nn.Linear(128, width)
        self.coeffs = nn.Conv2d(width, 12 * depth, 1)
        nn.init.zeros_(self.coeffs.weight)
        with torch.no_grad():  # start at the identity transform: A = I, b = 0 in every cell
            bias = torch.zeros(depth, 3, 4)
            bias[:, 0, 0] = bias[:, 1, 1] = bias[:, 2, 2] = 1.0
            self.coeffs.bias.copy_(bias.permute(1, 2, 0).reshape(-1))
        # per-pixel MLP as Linear layers on channels-last pixels: a 1x1 convolution over 3
        # channels is many times slower on CPU
        self.guide = nn.Sequential(nn.Linear(3, 16), nn.SiLU(), nn.Linear(16, 1))
        self.act = nn.SiLU()

    def grid_coeffs(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The bilateral grid, (n, 12, depth, grid, grid)."""
        h = self.cond(c)
        y = F.interpolate(x, size=(self.low_res, self.low_res), mode="bilinear", align_corners=False,
                          antialias=True)
        for conv, film in zip(self.stages, self.films):
            scale, shift = film(h)[:, :, None, None].chunk(2, dim=1)
            y = self.act(conv(y) * (1 + scale) + shift)
        y = self.local(y) + self.global_(h)[:, :, None, None]
        n = x.shape[0]
        return self.coeffs(self.act(y)).view(n, 12, self.depth, self.grid, self.grid)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Edited images in [0, 1], the size of ``x`` (n, 3, H, W) in [0, 1]."""
        n, _, hgt, wid = x.shape
        coeffs = self.grid_coeffs(x, c)
        g = torch.sigmoid(self._guide(x.permute(0, 2, 3, 1).reshape(-1, 3))).view(n, hgt, wid)  # in [0, 1]
        sliced = slice_grid(coeffs, g)
        a = sliced.view(n, 3, 4, hgt, wid)
        # A x + b per pixel, written out: the same numbers as an einsum, several times faster on CPU
        out = a[:, :, 0] * x[:, :1] + a[:, :, 1] * x[:, 1:2] + a[:, :, 2] * x[:, 2:3] + a[:, :, 3]
        return out.clamp(0, 1)

    def _guide(self, pixels: torch.Tensor) -> torch.Tensor:
        """The guide MLP's logits on pixels (m, 3), (m, 1). Without gradients it runs on one
        contiguous (m, 16) buffer, activated in place: the same numbers, 1.7x faster on CPU than
        the module call (which copies the strided pixels and allocates the activation anew)."""
        if torch.is_grad_enabled():
            return self.guide(pixels)
        first, last = self.guide[0], self.guide[2]
        hidden = F.silu(torch.addmm(first.bias, pixels, first.weight.t()), inplace=True)
        return torch.addmm(last.bias, hidden, last.weight.t())


def slice_grid(coeffs: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """Trilinear slicing of a bilateral grid at every pixel: (n, C, H, W) from ``coeffs``
    (n, C, depth, gh, gw) and ``guide`` (n, H, W) in [0, 1].

    The same numbers as a 3-D ``grid_sample`` (align_corners, border) at ``(x, y, guide)``, computed
    as two separable steps: the grid is first interpolated along y to every output row (a
    pixel's row fixes its y), then each row is a 2-D ``(guide, x)`` image sampled with the 2-D
    ``grid_sample``, which is vectorized on CPU where the 3-D one is not: 2-3.5x faster on the
    benchmark's CPU (``benchmarks/bench_editor.py``).
    """
    n, c, depth, gh, gw = coeffs.shape
    hgt, wid = guide.shape[1:]
    rows = F.interpolate(coeffs.reshape(n, c * depth, gh, gw), size=(hgt, gw), mode="bilinear",
                         align_corners=True)
    rows = rows.view(n, c, depth, hgt, gw).permute(0, 3, 1, 2, 4).reshape(n * hgt, c, depth, gw)
    xs = torch.linspace(-1, 1, wid, device=guide.device, dtype=guide.dtype)
    at = torch.stack([xs.expand(n, hgt, wid), guide * 2 - 1], dim=-1).reshape(n * hgt, 1, wid, 2)
    out = F.grid_sample(rows, at, mode="bilinear", padding_mode="border", align_corners=True)
    return out.view(n, hgt, c, wid).permute(0, 2, 1, 3)


def sliced_colour_distance(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Sliced Wasserstein distance between the pixel colour distributions of ``a`` and ``b``.

    Shape-agnostic: it compares which colours occur and how much, not where, so it can train
    an editor whose exemplar and target are different objects. ``a``, ``b``: (n, 3, H, W);
    ``directions``: (k, 3) unit vectors. Returns the mean over images, a scalar.
    """
    pa = torch.einsum("nchw,kc->nkhw", a, directions).flatten(2).sort(dim=2).values
    pb = torch.einsum("nchw,kc->nkhw", b, directions).flatten(2).sort(dim=2).values
    return (pa - pb).abs().mean()
