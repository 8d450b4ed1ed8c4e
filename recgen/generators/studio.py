"""Studio previews: the product kept as photographed, its presentation made for the user.

Two jobs, one generator (registry name ``"studio"``):

* **Items with a photo.** The product's own pixels are kept: a matte separates the product
  from a plain photo background (flood fill from the border over background-like pixels;
  full-bleed images such as posters keep the whole frame), and its shadow is kept as shading.
  What adapts to the user is the presentation around it:

  - the **backdrop** takes the colours the user picks most (``backdrop="history"``): the
    main colours of the items they liked fall into the library's colour clusters, and the
    colour layout of the most typical item (the medoid of the layouts) of the cluster they
    picked most often is blended, light, over white. Every colour of it is traceable to the
    user's own history, and two users with different favourites get visibly different
    backdrops. Users without a photographed liked item (known only by reviews or text) get
    the colour "mood" of :class:`~recgen.generators.nets.studio.MoodCVAE`, a conditional VAE
    trained to produce the low-frequency colours of the items a user liked from that user's
    taste vector (``backdrop="mood"`` gives it to every user). A cVAE's decoder regresses
    toward the population's mood (most users liked many colours), so a user's own difference
    from it is faint; the mood takes that difference ``mood_contrast`` times (2.5 by
    default). The neutral preview's backdrop is plain white by default, as a catalog photo's
    is (``neutral_mood_strength`` > 0 tints it with the population's mood);
  - **"goes with what you have"**: a small card shows an item from the user's own history
    that they did not rate low (``ProfileConfig.like_threshold``; by default the history item
    most similar to this one in the shared space;
    :meth:`StudioGenerator.generate` takes the blurb's choice through ``anchors`` so the
    picture and the words name the same item). The card goes in a corner the product leaves
    empty, so the product keeps the neutral layout's size and place. When no corner is free (a
    wide or tall product) the card is left out and the backdrop alone is personal: shrinking
    the product to make room made it read worse, to people and to the attribute judges. A
    full-bleed picture (a poster) has no backdrop to speak of, so it moves up-left to make
    room, at most ``personal_scale`` and smaller only if the card would otherwise hide part of
    it (``shrink_for_card`` makes every product do that).

  Faithfulness holds by construction (no product pixel is generated), and the preview is as
  sharp as the photo at the same scale.
* **Items without a photo** (new listings, text-only catalogs, or ``mode="text"``). Following
  instance-conditioned generation (IC-GAN, Casanova et al. 2021; RetrieveGAN), the photographed
  item whose photo is nearest to the item's *text* vector in the shared space is retrieved,
  and recoloured in two steps:

  1. **the colour the text names.** The library's products' main colours (:func:`main_colour`)
     are clustered, and a softmax regression from the text vector to the cluster is fitted on
     the library. When it finds that colour more likely than the exemplar's own (and the
     catalog's text names colours at all: ``colour_confidence``), the exemplar's colours go
     through the 3x3 linear map that sends its main colour to the predicted one and keeps
     white and black where they are (:func:`recolour`): tints and shades of the main colour
     follow it, neutral outlines, patterns and shadows stay. Catalogs whose text does not
     predict colour keep the exemplar's colours instead of getting a guessed cast.
  2. :class:`~recgen.generators.nets.studio.BilateralEditor` (an HDRNet-style bilateral-grid
     colour editor, FiLM-conditioned on the text of both items and the palettes) refines the
     result. It is trained as a cGAN on recoloured exemplars: a sliced-Wasserstein colour loss
     against the real photo of the target (shape-agnostic, since exemplar and target are
     different objects), low-resolution and product-colour losses, an identity loss on
     exemplar = target pairs, and a projection discriminator's hinge loss.

  Both steps change colours only, so every edge of the exemplar survives: the result is sharp,
  but it is a *generated* picture of the item, and it is marked as such (a "generated" label in
  the picture, ``PreviewOutput.generated`` and :meth:`StudioGenerator.is_generated`).

  **Artwork** (film posters, book and album covers) is different: its picture *is* the
  item's identity, so a retrieved exemplar would show another title's poster, title and all.
  When most library photos are full-bleed (``text_previews="auto"``; or ``"title"``), an item
  without a photo gets a typographic cover instead (:func:`title_card`): its title (and year)
  set over a top-to-bottom gradient of the colours its text predicts (a ridge map from text to
  the library's colour layouts), laid out like the library's pictures, marked generated like
  every text-only preview. No editor is trained for it. The text of a film says little about
  its poster's look (benchmarks/RESULTS.md measures how little), so the cover promises only
  what is known: the title.

No image feature of the item itself enters the text-only condition (only its text vector), so
a held-out photo can judge the result.

>>> gen = make_generator("studio").fit(GenerationContext(model, catalog))
>>> out = gen.generate(GenerationContext(model), ["SKU-0042"], ["U0001"])
>>> out.images.shape, out.anchors, out.generated          # ((1, 128, 128, 3), ['SKU-0007'], [False])
"""
from __future__ import annotations

import functools
import logging
import threading
import zlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recgen._io import load_torch_state, save_torch_state
from recgen._lru import MISSING, LRUCache
from recgen.encoders.base import l2_normalize
from recgen.errors import NotFittedError
from recgen.generators.base import PreviewOutput, title_parts
from recgen.generators.context import GenerationContext, output_user_ids, paired

log = logging.getLogger(__name__)

_KIND = "studio-generator"
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
MODES = ("auto", "photo", "text")
TEXT_PREVIEWS = ("auto", "exemplar", "title")
BACKDROPS = ("history", "mood", "card")


@dataclass
class StudioConfig:
    """Settings of :class:`StudioGenerator`.

    Attributes
    ----------
    image_size : int
        Preview width and height (128 by default; 256 works the same, at 4x the memory).
    product_scale : float
        The product's share of the preview's side in the neutral layout.
    personal_scale : float
        Its largest share when a history item's card is shown and no corner of the picture is
        free of the product (full-bleed pictures, or any product with ``shrink_for_card``): the
        product moves up-left, and shrinks further only as far as it must for the card to hide
        none of it.
    inset_scale : float
        Side of the history item's card, as a share of the preview's side. The card is shown
        only where a corner is free for it: on the sample shop, 12 of 49 held-out products at
        0.40. Falling back to smaller cards (down to 0.28) showed one on most products, but the
        attribute judges then read the product worse (``benchmarks/RESULTS.md``, ninth round).
    shrink_for_card : bool
        When a cut-out product leaves no corner free for the card: False (default) leaves the
        card out (the backdrop alone is personal); True moves the product up-left and shrinks it
        to make room, as full-bleed pictures always do.
    backdrop : {"history", "mood", "card"}
        Where a personal backdrop's colours come from. ``history``: the user's favourite colour
        (the colour layout of the most typical liked item in the colour cluster the user picked
        most; the mood cVAE's sample for users without a photographed liked item). ``mood``: the
        mood cVAE's sample. ``card``: the colour layout of the history item the card shows (or
        would show, when no corner is free), so backdrop and card read as one composition.
    inset : bool
        Show the "goes with what you have" card (off: the backdrop alone personalizes).
    mood_strength : float
        How far a user's backdrop moves from white toward its colours (0..1); light by default
        so the product stays the subject. 0.36: on the sample shop, two contrasting users'
        previews of one item then differ visibly for at least 83 % of pairs on every split
        tried (0.32: 71 % on one), and the attribute judges read the products as before
        (``benchmarks/RESULTS.md``).
    mood_contrast : float
        How far a user's mood is taken from the population's (the mood the cVAE decodes for the
        neutral user from the same latent sample): population + ``mood_contrast`` x (user -
        population), before ``mood_strength`` lightens it. 1 is the cVAE's own sample, whose
        user differences are faint because the decoder regresses toward the population's mean
        (on the sample shop, two contrasting users' previews of one item differ visibly for
        76% of pairs at 1 and 92% at 2.5, and the attribute judges read the previews as well
        as before: no attribute moves by more than one item of 49 for the worse).
    neutral_mood_strength : float
        The same for the neutral preview (no user, or an unknown one): 0, plain white, by
        default, as a catalog photo is; the neutral preview then reads like the photo (the
        independent attribute judge reads it as it reads the photos) and a personal one
        differs from it visibly.
    mood_epochs, mood_latent : int
        Training epochs and latent width of the mood cVAE.
    mood_beta : float
        Weight of its KL term. A small weight lets the latent carry the whole mood and the
        decoder ignore the taste (every user then gets the same backdrops); 1.0 keeps what the
        taste predicts in the condition.
    moods_per_user : int
        History items per user the mood cVAE trains on.
    editor : bool
        Train the text-to-image editor (needed for items without a photo).
    editor_epochs : int
    editor_size : int
        Resolution the editor trains at (it applies at any resolution).
    exemplars : int
        Retrieved exemplars per training target.
    ridge : float
        Ridge penalty of the text-to-structure map used to retrieve exemplars.
    aligned_weight : float
        Weight of the editor's low-resolution (4x4) colour loss against the target photo, on
        top of the shape-agnostic sliced-Wasserstein colour loss.
    product_colour_weight : float
        Weight of the editor's loss on the product's mean colour (inside the mattes).
    adversarial_weight : float
        Weight of the projection discriminator's hinge loss (0 turns the cGAN term off).
    editor_keep_weight : float
        Weight of the editor's L1 penalty on changing the colour step's output inside the
        product: a refinement must earn each change against the targets. Without it (0), the
        editor drifted toward the library's average colours: it lifted black products by 15-20
        grey levels and tinted them, and what it learned varied with the training seed.
    colour_confidence : float
        Text-only items are recoloured to the colour their text predicts only when the colour
        model's cross-validated accuracy on the library reaches this (0..1): below it, this
        catalog's text does not say its products' colours and exemplars keep theirs. Above it,
        an item is recoloured when the model finds the predicted colour more likely than the
        exemplar's own.
    colour_clusters : int
        Most colour clusters of the library's main colours (fewer on small libraries).
    text_previews : {"auto", "exemplar", "title"}
        What an item without a photo gets. ``exemplar``: a retrieved product recoloured to its
        text (above). ``title``: a typographic cover, the item's title over the colours its
        text predicts; for artwork (posters, covers) a retrieved exemplar would show *another*
        title's picture. ``auto``: ``title`` when most library photos are full-bleed artwork
        (no plain background to cut the product from), else ``exemplar``.
    mark_generated : bool
        Draw a "generated" label on previews made without the item's photo.
    history_limit : int
        Most recent history items considered for the card and the backdrop.
    batch_size : int
    lr : float
    seed : int
    device : str
    """

    image_size: int = 128
    product_scale: float = 0.92
    personal_scale: float = 0.82
    inset_scale: float = 0.4
    inset: bool = True
    shrink_for_card: bool = False
    backdrop: str = "history"
    mood_strength: float = 0.36
    mood_contrast: float = 2.5
    neutral_mood_strength: float = 0.0
    mood_epochs: int = 80
    mood_latent: int = 4
    mood_beta: float = 1.0
    moods_per_user: int = 4
    editor: bool = True
    editor_epochs: int = 30
    editor_size: int = 32
    exemplars: int = 3
    ridge: float = 0.1
    aligned_weight: float = 1.0
    product_colour_weight: float = 5.0
    adversarial_weight: float = 0.05
    editor_keep_weight: float = 3.0
    colour_confidence: float = 0.5
    colour_clusters: int = 16
    text_previews: str = "auto"
    mark_generated: bool = True
    history_limit: int = 50
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("image_size", "mood_epochs", "mood_latent", "moods_per_user", "editor_epochs", "editor_size",
                     "exemplars", "history_limit", "batch_size", "colour_clusters"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if "epochs" in name else 1):
                raise ValueError(f"{name} must be a positive int; got {v!r}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32; got {self.image_size}")
        for name in ("product_scale", "personal_scale", "inset_scale", "mood_strength", "neutral_mood_strength",
                     "colour_confidence"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1]; got {v!r}")
        if self.text_previews not in TEXT_PREVIEWS:
            raise ValueError(f"text_previews must be one of {TEXT_PREVIEWS}; got {self.text_previews!r}")
        if self.backdrop not in BACKDROPS:
            raise ValueError(f"backdrop must be one of {BACKDROPS}; got {self.backdrop!r}")
        self._check_number("mood_contrast", 0.0, 10.0, "a number in [0, 10] (1 = the cVAE's own mood)")
        if self.adversarial_weight < 0 or self.lr <= 0:
            raise ValueError("adversarial_weight must be >= 0 and lr > 0")
        self._check_number("editor_keep_weight", 0.0, float("inf"),
                           "a finite number >= 0 (0 lets the editor change the colour step's output freely)")

    def _check_number(self, name: str, low: float, high: float, what: str) -> None:
        """Raise unless setting ``name`` is a real number (not a bool) with ``low <= v <= high``, finite."""
        v = getattr(self, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not low <= float(v) <= high \
                or not np.isfinite(float(v)):
            raise ValueError(f"{name} must be {what}; got {v!r}")


# ------------------------------------------------------------------------------ images
def fit_image(image, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a photo into a ``size`` square and separate the product from a plain background.

    Returns
    -------
    rgb : uint8 (size, size, 3)
        The photo, aspect kept, centred; letterbox bands take the background colour.
    alpha : float32 (size, size)
        1 on the product, 0 on the background. Only a light, nearly neutral border counts as a
        plain background; full-bleed images and artwork with a dark or saturated border (posters,
        covers) keep their whole rectangle.
    bg : float32 (3,)
        The background colour (0..255); shading of the backdrop is ``luma(rgb) / luma(bg)``.
    """
    from PIL import Image
    from scipy import ndimage

    image = image.convert("RGB")
    w, h = image.size
    f = size / max(w, h)
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    small = np.asarray(image.resize((nw, nh), Image.Resampling.LANCZOS), dtype=np.float32)
    border = np.concatenate([small[0], small[-1], small[:, 0], small[:, -1]])
    bg = np.median(border, axis=0).astype(np.float32)
    lum, lbg = small @ _LUMA, float(bg @ _LUMA)
    chroma = small.max(-1) - small.min(-1)
    close = np.linalg.norm(small - bg, axis=-1) < 24
    shadowish = (chroma < 16 + float(bg.max() - bg.min())) & (lum > 0.45 * lbg) & (lum <= lbg * 1.04 + 2)
    # a thin grey outline is as grey as a shadow but is part of the product: it is darker than
    # what a grey-level closing (which erases dark features up to about 4 px wide) leaves there.
    # Counted as background, it would let the fill leak into white stripes and dots the outline
    # encloses, and those would take the backdrop's colour.
    line = ndimage.grey_closing(lum, size=(5, 5)) - lum > 20
    cand = close | (shadowish & ~line)
    ring = np.concatenate([cand[0], cand[-1], cand[:, 0], cand[:, -1]])
    # a product shot: a border that is mostly one light, nearly neutral colour (studio white or
    # grey). A dark or saturated uniform border is part of the artwork (posters, covers): kept whole.
    if ring.mean() >= 0.85 and lbg >= 200 and float(bg.max() - bg.min()) <= 30:
        labels, _ = ndimage.label(cand)
        touching = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        outside = np.isin(labels, touching[touching > 0])
        # specks the outline test keeps (the thin tips of a soft shadow) are not product
        parts, n_parts = ndimage.label(~outside, structure=np.ones((3, 3)))
        sizes = np.bincount(parts.ravel(), minlength=n_parts + 1)
        speck = (sizes < max(4, 0.0008 * nh * nw)) & (np.arange(n_parts + 1) > 0)
        a = ((~outside) & ~speck[parts]).astype(np.float32)
    else:
        a = np.ones((nh, nw), np.float32)
    rgb = np.empty((size, size, 3), np.float32)
    rgb[:] = bg
    alpha = np.zeros((size, size), np.float32)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    rgb[y0:y0 + nh, x0:x0 + nw] = small
    alpha[y0:y0 + nh, x0:x0 + nw] = a
    return np.clip(rgb, 0, 255).round().astype(np.uint8), alpha, bg


def mood_of(rgb: np.ndarray, alpha: np.ndarray, grid: int = 4) -> np.ndarray:
    """The (3, grid, grid) colour mood in [0, 1] of one product: its colours where they are.

    Cells without product take the product's mean colour, so a mood is the product's palette
    laid out as in the photo, never the photo's background.
    """
    return moods_of(np.asarray(rgb)[None], np.asarray(alpha)[None], grid)[0]


def moods_of(rgb: np.ndarray, alpha: np.ndarray, grid: int = 4) -> np.ndarray:
    """:func:`mood_of` for a batch, in one pass: rgb uint8 (n, S, S, 3), alpha (n, S, S) -> (n, 3, grid, grid)."""
    if len(rgb) == 0:
        return np.zeros((0, 3, grid, grid), np.float32)
    rgb, alpha = np.asarray(rgb), np.asarray(alpha)
    n, s = len(rgb), rgb.shape[1] // grid
    x = rgb[:, : s * grid, : s * grid].astype(np.float32) / 255.0
    a = alpha[:, : s * grid, : s * grid, None].astype(np.float32)
    num = (x * a).reshape(n, grid, s, grid, s, 3).sum((2, 4))
    den = a.reshape(n, grid, s, grid, s, 1).sum((2, 4))
    mean = num.sum((1, 2)) / np.maximum(den.sum((1, 2)), 1e-6)
    cells = np.where(den > 0.15 * s * s, num / np.maximum(den, 1e-6), mean[:, None, None])
    return cells.transpose(0, 3, 1, 2).astype(np.float32)


def main_colour(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The main colour (float32 (3,), 0..255) of one product: its most frequent colour.

    Light, nearly neutral pixels (white patterns, highlights) are left out when the product has
    enough other pixels, so a striped or dotted product is named by its colour, not its stripes.
    When at least a fifth of the product is chromatic, only chromatic pixels count: a striped
    lamp is named by its shade, not by its grey stand, and a green hat not by its black band.
    A product with less colour than that is named by its neutral (a black product is black).
    The colour is the mean of the pixels near the most frequent cell of a coarse (32-level)
    colour grid.
    """
    px = np.asarray(rgb, dtype=np.float32)[np.asarray(alpha) > 0.5]
    if len(px) == 0:
        px = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    chroma = px.max(1) - px.min(1)
    light_neutral = (chroma < 30) & (px @ _LUMA > 140)
    if (chroma >= 40).sum() >= 0.2 * len(px):
        px = px[chroma >= 40]
    elif (~light_neutral).sum() > 0.05 * len(px):
        px = px[~light_neutral]
    cell = (px // 32).astype(np.int64) @ np.array([64, 8, 1])
    mode = px[cell == np.bincount(cell, minlength=512).argmax()].mean(0)
    near = px[np.linalg.norm(px - mode, axis=1) < 40]
    return (near.mean(0) if len(near) else mode).astype(np.float32)


def recolour(rgb: np.ndarray, alpha: np.ndarray, main: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Recolour a product (uint8 (S, S, 3)) so its main colour becomes ``target``; returns uint8.

    A chromatic main colour goes through the smallest linear change of RGB that sends ``main``
    to ``target`` and keeps white and black fixed: tints and shades of the main colour follow
    it, neutral greys (outlines, white patterns, shadows) barely move. A nearly neutral main
    colour (a black or grey product) cannot be mapped that way without moving every grey, so
    only the pixels near it are shifted, with a soft edge. Only the product (``alpha``) changes.
    """
    x = np.asarray(rgb, dtype=np.float32)
    m = np.asarray(main, dtype=np.float32)
    t = np.asarray(target, dtype=np.float32)
    a = np.asarray(alpha, dtype=np.float32)[..., None]
    if float(m.max() - m.min()) > 40:
        basis = np.stack([np.full(3, 255.0, np.float32), m])  # white and the main colour
        delta = np.stack([np.zeros(3, np.float32), t - m])     # where they go
        change = delta.T @ np.linalg.solve(basis @ basis.T + 1e-3 * np.eye(2), basis)  # (3, 3), least norm
        y = x + x @ change.T.astype(np.float32)
    else:
        w = np.clip(2.0 * (1.0 - np.linalg.norm(x - m, axis=-1) / 60.0), 0.0, 1.0)[..., None]
        y = x + w * (t - m)
    return np.clip(a * y + (1.0 - a) * x, 0, 255).round().astype(np.uint8)


def _grids(palettes: np.ndarray) -> np.ndarray:
    """Flattened palettes (n, 3 * G * G), as stored in the library, as (n, 3, G, G) grids."""
    palettes = np.asarray(palettes)
    g = round((palettes.shape[-1] / 3) ** 0.5)
    return palettes.reshape(-1, 3, g, g)


def _full_bleed(alpha: np.ndarray) -> float | None:
    """Width / height of a full-bleed picture (its matte fills its bounding box: artwork, not a cut-out
    product), or None."""
    on = np.asarray(alpha) > 0.5
    if not on.any():
        return None
    ys, xs = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    h, w = ys[-1] - ys[0] + 1, xs[-1] - xs[0] + 1
    return float(w / h) if on.sum() >= 0.98 * w * h else None


_CARD_MAY_HIDE = 0.005  # the share of a product the history card may cover when no corner is free


def _first_clear(ref: np.ndarray, sides: Sequence[int], corner: int, margin: int, bleed: bool,
                 share: float = _CARD_MAY_HIDE) -> int:
    """Index into ``sides`` (largest first) of the first side at which a card whose top-left is at
    ``(corner, corner)`` would cover at most ``share`` of a product placed at the top-left margin,
    estimated from its matte ``ref`` at ``sides[0]`` scaled (a summed-area table: no resizing);
    ``len(sides) - 1`` when none is estimated clear."""
    on = ref > 0.5
    total = float(ref.sum())
    if not on.any() or total <= 0:
        return 0
    top = sides[0]
    sat = np.zeros((ref.shape[0] + 1, ref.shape[1] + 1), np.float64)
    sat[1:, 1:] = ref.cumsum(0).cumsum(1)
    ys, xs = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    for k, side in enumerate(sides):
        f = top / side
        x0 = y0 = margin
        if bleed:
            x0, y0 = margin - int(xs[0] / f), margin - int(ys[0] / f)
        ty = min(max(int(np.ceil((corner - y0) * f)), 0), ref.shape[0])
        tx = min(max(int(np.ceil((corner - x0) * f)), 0), ref.shape[1])
        under = sat[-1, -1] - sat[ty, -1] - sat[-1, tx] + sat[ty, tx]
        if under <= share * total:
            return k
    return len(sides) - 1


def _shade(rgb: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """How much a background pixel is darkened in the photo (shadows, anti-aliased edges), 0..1."""
    return np.clip((rgb.astype(np.float32) @ _LUMA) / max(float(bg @ _LUMA), 1.0), 0.0, 1.0)


def _scaled_rgb(rgb: np.ndarray, side: int) -> np.ndarray:
    """A photo (uint8 (S, S, 3)) scaled to ``side`` (Lanczos: as sharp as the photo allows)."""
    from PIL import Image

    if side == rgb.shape[0]:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((side, side), Image.Resampling.LANCZOS))


def _scaled_matte(alpha: np.ndarray, side: int) -> np.ndarray:
    """A matte (float 0..1 (S, S)) scaled to ``side`` (bilinear: no ringing at the product's edge)."""
    from PIL import Image

    if side == alpha.shape[0]:
        return alpha
    am = Image.fromarray(alpha.astype(np.float32), mode="F").resize((side, side), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(am), 0.0, 1.0)


def _sized(rgb: np.ndarray, alpha: np.ndarray, bg: np.ndarray, side: int,
           matte: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A product scaled to ``side``, ready to composite: ``(over, keep, alpha)``, float32 (side, side, 3),
    (side, side, 3) and (side, side, 1). A pixel of the canvas under it becomes ``keep * canvas + over``:
    ``over`` is the product's colour times its matte, ``keep`` how much of the canvas shows through,
    darkened where the photo had shadows. Both are stored at full width (three channels), because
    numpy broadcasts a (side, side, 1) factor over the channels several times slower than it
    multiplies two equal shapes. ``matte``: ``alpha`` already scaled to ``side``, when the caller has it."""
    rgb = _scaled_rgb(rgb, side)
    alpha = (_scaled_matte(alpha, side) if matte is None else matte)[..., None].astype(np.float32)
    shade = _shade(rgb, bg)[..., None]
    over = alpha * rgb.astype(np.float32)
    keep = np.ascontiguousarray(np.broadcast_to((1 - alpha) * shade, over.shape), dtype=np.float32)
    return over, keep, alpha


def _paste_sized(canvas: np.ndarray, sized: tuple[np.ndarray, np.ndarray, np.ndarray], x0: int, y0: int) -> None:
    """Composite a product from :func:`_sized` onto ``canvas`` (float 0..255) at ``(x0, y0)``, in place."""
    over, keep, _alpha = sized
    side = over.shape[0]
    s = canvas.shape[0]
    ys, xs = slice(max(y0, 0), min(y0 + side, s)), slice(max(x0, 0), min(x0 + side, s))
    sub = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    canvas[ys, xs] = keep[sub] * canvas[ys, xs] + over[sub]


def _card_pad(side: int) -> int:
    return max(2, side // 14)


def _card(canvas: np.ndarray, sized: tuple[np.ndarray, np.ndarray, np.ndarray], side: int, x0: int,
          y0: int) -> None:
    """A white card with a thin frame holding a history item (sized to ``side - 2 * _card_pad(side)``), in place."""
    s = canvas.shape[0]
    x1, y1 = min(x0 + side, s), min(y0 + side, s)
    canvas[y0:y1, x0:x1] = 252.0
    canvas[y0:y1, [x0, x1 - 1]] = 180.0
    canvas[[y0, y1 - 1], x0:x1] = 180.0
    pad = _card_pad(side)
    _paste_sized(canvas, sized, x0 + pad, y0 + pad)


@functools.lru_cache(maxsize=8)
def _label(size: int, text: str = "generated") -> np.ndarray:
    """The "generated" label for a ``size`` preview, float (h, w, 3), drawn once per size."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=max(8, size // 16))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = probe.textbbox((0, 0), text, font=font)
    pad = max(1, size // 96)
    w, h = min(size, x1 - x0 + 2 * pad), min(size, y1 - y0 + 2 * pad)
    rgb = Image.new("RGB", (w, h), (230, 150, 20))  # amber
    ImageDraw.Draw(rgb).text((pad - x0, pad - y0), text, fill=(255, 255, 255), font=font)
    return np.asarray(rgb, dtype=np.float32)


_TYPESET = threading.Lock()


def _wrap(draw, text: str, font, width: int) -> list[str]:
    """Greedy word wrap of ``text`` to ``width`` pixels; a word longer than the line stays whole."""
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


@functools.lru_cache(maxsize=64)
def _font(size: int):
    """A bold sans-serif at ``size`` px and whether it covers accented Latin: DejaVu Sans Bold where the
    system has it (Debian's fonts-dejavu-core), else Pillow's built-in font (ASCII only)."""
    from PIL import ImageFont

    for name in ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf"):
        try:
            return ImageFont.truetype(name, size), True
        except OSError:
            continue
    return ImageFont.load_default(size=size), False


def _printable(text: str, unicode_font: bool) -> str:
    """``text`` as the font can set it: accents dropped (é -> e) and other non-ASCII left out for the
    ASCII-only built-in font, so a title never shows missing-glyph boxes."""
    if unicode_font:
        return text
    import unicodedata

    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(plain.split())


def title_card(title: str, palette: np.ndarray, width: int, height: int) -> np.ndarray:
    """A typographic cover, uint8 (height, width, 3): the title set over a colour field.

    ``palette`` (3, G, G) in 0..1 is the colour layout the cover's colours follow (e.g. the
    one the item's text predicts); it is smoothly upsampled. The title is set as large as fits
    (at most four lines) in the upper part, the year below it, in white or near-black,
    whichever reads on the field, with a thin outline in the other.
    """
    with _TYPESET:  # the cached FreeType faces are shared between threads: one sets type at a time
        return _set_title(title, palette, width, height)


def _set_title(title: str, palette: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    grid = np.clip(np.asarray(palette, dtype=np.float32), 0.0, 1.0).transpose(1, 2, 0)
    field = Image.fromarray((grid * 255).round().astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    name, year = title_parts(title)
    name = _printable(name, _font(12)[1])
    draw = ImageDraw.Draw(field)
    box = round(0.84 * width)
    top = round(0.12 * height)
    chosen = None
    for size in range(max(8, height // 6), max(7, height // 16) - 1, -1):
        font = _font(size)[0]
        lines = _wrap(draw, name, font, box)
        if len(lines) <= 4 and all(draw.textlength(t, font=font) <= box for t in lines) \
                and len(lines) * size * 1.15 <= 0.55 * height:
            chosen = (font, lines, size)
            break
    if chosen is None:  # a very long title: the smallest size, cut to four lines
        size = max(7, height // 16)
        font = _font(size)[0]
        lines = _wrap(draw, name, font, box)
        if len(lines) > 4:
            lines = lines[:4]
            while lines[3] and draw.textlength(lines[3] + "\u2026", font=font) > box:
                lines[3] = lines[3].rsplit(" ", 1)[0] if " " in lines[3] else lines[3][:-1]
            lines[3] += "\u2026" if _font(12)[1] else "..."
        chosen = (font, lines, size)
    font, lines, size = chosen
    block = round(len(lines) * size * 1.15)
    band = np.asarray(field, dtype=np.float32)[top:top + block + size] @ _LUMA
    light = float(band.mean()) < 140 if band.size else True
    ink, edge = ((250, 250, 250), (20, 20, 20)) if light else ((18, 18, 18), (240, 240, 240))
    stroke = max(1, size // 14)
    y = top
    for line in lines:
        w = draw.textlength(line, font=font)
        draw.text(((width - w) / 2, y), line, font=font, fill=ink, stroke_width=stroke, stroke_fill=edge)
        y += round(size * 1.15)
    if year:
        small = _font(max(7, height // 12))[0]
        w = draw.textlength(year, font=small)
        draw.text(((width - w) / 2, y + size * 0.25), year, font=small, fill=ink, stroke_width=max(1, stroke // 2),
                  stroke_fill=edge)
    return np.asarray(field, dtype=np.uint8)


def _tag(canvas: np.ndarray, text: str = "generated") -> None:
    """Mark a preview as generated, in place: an amber "generated" label in the bottom-left corner.

    No frame around the picture: a border reads as part of the picture (it made the judges'
    classifiers misread the product), a label does not.
    """
    label = _label(canvas.shape[0], text)
    canvas[-label.shape[0]:, :label.shape[1]] = label


# --------------------------------------------------------------------------- generator
class StudioGenerator:
    """Product-kept, user-presented previews; text-only items edited from a retrieved exemplar.

    See the module docstring for the design. Implements
    :class:`~recgen.generators.base.PreviewGenerator`.
    """

    kind = "preview"

    def __init__(self, config: StudioConfig | None = None) -> None:
        self.config = replace(config) if config is not None else StudioConfig()
        self.ids: list[str] = []
        self._row: dict[str, int] = {}
        self._nets: dict[str, Any] = {}
        self.history: dict[str, list[float]] = {}
        self.dim = 0
        self._fresh_caches()
        self._structure_unit: np.ndarray | None = None
        #: what items without a photo get ("exemplar" or "title"; ``config.text_previews`` resolved at fit)
        self.text_style = "exemplar"
        #: titles of the catalog's items (kept for the title style), width / height of a title card
        self.titles: dict[str, str] = {}
        self.card_aspect = 1.0
        self._card_colours: tuple[np.ndarray, np.ndarray] | None = None

    #: memory (MiB) kept for products scaled to preview size and their layouts, least recently
    #: used out first; set on the class, or on an instance before its first ``fit`` / ``load``
    sized_cache_mib = 256
    #: memory (MiB) kept for generated products of items without a photo (they depend on the
    #: item's text, not the user, so each is made once while it stays here)
    text_cache_mib = 128

    # ------------------------------------------------------------------ helpers
    def _fresh_caches(self) -> None:
        """Empty caches (a refit, new photos, or a copy whose settings change what they hold)."""
        self._sized_cache = LRUCache(max_bytes=int(self.sized_cache_mib * 2**20))
        self._text_cache = LRUCache(max_bytes=int(self.text_cache_mib * 2**20))

    def _check(self) -> None:
        if not self._nets:
            raise NotFittedError("StudioGenerator is not fitted: call fit(context) or load() first")

    @property
    def _lib(self):
        return self._nets["library"]

    def is_generated(self, item_ids: Sequence[str], *, mode: str = "auto") -> list[bool]:
        """Whether each item's preview is generated from text (True) or keeps its photo (False)."""
        self._check()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
        return [mode == "text" or (mode == "auto" and str(i) not in self._row) for i in item_ids]

    def _retrieve(self, text_vecs: np.ndarray, exclude: Sequence[str | None], k: int = 1) -> np.ndarray:
        """Library rows whose photo's *structure* best matches ``text_vecs`` (n, k), never the item itself.

        The structure of a photo is the image encoder's features of its grey-scale version
        (shape and pattern, not colour: the editor supplies the colour); a ridge regression
        fitted on the library predicts it from the text vector.
        """
        lib = self._lib
        if lib.structure.shape[1] == 0:
            raise NotFittedError("this studio generator makes title cards for items without a photo "
                                 "(text_previews='title'): it keeps no structure features to retrieve exemplars by; "
                                 "fit it with text_previews='exemplar' for that")
        w = lib.ridge.numpy()
        pred = np.concatenate([text_vecs, np.ones((len(text_vecs), 1), np.float32)], 1) @ w
        if self._structure_unit is None:  # normalized once, not on every call (reset by add_photos)
            self._structure_unit = l2_normalize(lib.structure.numpy())
        score = l2_normalize(pred) @ self._structure_unit.T
        for j, item in enumerate(exclude):
            r = self._row.get(item) if item is not None else None
            if r is not None:
                score[j, r] = -np.inf
        k = max(1, min(k, score.shape[1] - 1))
        return np.argsort(-score, axis=1, kind="stable")[:, :k]

    # ---------------------------------------------------------------------- fit
    def fit(self, context: GenerationContext, *, progress: bool = False) -> "StudioGenerator":
        """Cut out every catalog photo, train the mood cVAE and (``config.editor``) the text-only editor.

        Raises
        ------
        ValueError
            No catalog in ``context``, or no catalog item has a usable image.
        """
        import torch

        from recgen.encoders.image import load_image
        from recgen.generators.nets.studio import BilateralEditor, MoodCVAE

        cfg = self.config
        catalog = context.require_catalog("the studio preview generator")
        items = context.model.items
        paths = {i: p for i, p in zip(catalog.items["item_id"].astype(str), catalog.items["image_path"])
                 if isinstance(p, str) and p}
        rows = [r for r, i in enumerate(items.ids) if i in paths and items.present["image"][r]]
        if not rows:
            raise ValueError("no item of the catalog has an image: the studio generator needs photos to keep "
                             "and to learn from")
        size = cfg.image_size
        photos, alphas, bgs, ids = [], [], [], []
        for r in rows:
            try:
                rgb, a, bg = fit_image(load_image(paths[items.ids[r]]), size)
            except ValueError as exc:  # an unreadable photo: the item is served as text-only
                log.warning("item %s: photo skipped (%s)", items.ids[r], exc)
                continue
            photos.append(rgb)
            alphas.append(a)
            bgs.append(bg)
            ids.append(items.ids[r])
        rows = context.item_rows(ids)
        torch.manual_seed(cfg.seed)
        self.dim = context.dim
        text = context.item_vectors(rows, "text")
        palettes = moods_of(photos, alphas).reshape(len(photos), -1)
        mains = np.stack([main_colour(p, a) for p, a in zip(photos, alphas)])
        centres, weights, cv = _colour_model(text, mains, cfg.colour_clusters, cfg.seed)
        bleed = [_full_bleed(a) for a in alphas]
        artwork = [b for b in bleed if b is not None]
        style = cfg.text_previews
        if style == "auto":
            style = "title" if len(artwork) >= 0.5 * len(alphas) else "exemplar"
        self.text_style = style
        self.card_aspect = float(np.median(artwork)) if artwork else 1.0
        self.titles = {}
        if style == "exemplar":  # what exemplar retrieval matches (covers retrieve nothing)
            structure, ridge = _structure(context, photos, text, cfg.ridge)
        else:
            structure, ridge = np.zeros((len(photos), 0), np.float32), np.zeros((text.shape[1] + 1, 0), np.float32)
        if style == "title":
            if "title" in catalog.items.columns:
                self.titles = {str(i): str(t) for i, t in zip(catalog.items["item_id"], catalog.items["title"])
                               if isinstance(t, str) and t.strip()}
            log.info("%d of %d library photos are full-bleed artwork: items without a photo get a title card "
                     "(text_previews=%r)", len(artwork), len(alphas), cfg.text_previews)
        elif cfg.editor and cv < cfg.colour_confidence:
            log.warning("the catalog's texts do not name its products' colours (colour model cross-validated "
                        "accuracy %.2f < colour_confidence %.2f): previews of items without a photo will show a "
                        "retrieved exemplar in its own colours, refined by the editor; they are marked generated. "
                        "For artwork (posters, covers) set text_previews='title'",
                        cv, cfg.colour_confidence)
        lib = _Library(np.stack(photos), np.stack(alphas), np.stack(bgs), text, context.item_vectors(rows, "image"),
                       structure, ridge, _ridge(text, palettes, cfg.ridge), palettes, mains, centres, weights,
                       np.float32(cv))
        self.ids = ids
        self._row = {i: j for j, i in enumerate(ids)}
        self._nets = {"library": lib, "mood": MoodCVAE(self.dim, latent_dim=cfg.mood_latent)}
        self._fresh_caches()  # caches of a previous fit
        self._structure_unit = None
        self._card_colours = None
        self._fit_mood(context, progress)
        if cfg.editor and style == "exemplar" and len(ids) >= 2:
            self._nets["editor"] = BilateralEditor(_editor_cond_dim(self.dim))
            self._fit_editor(progress)
        for net in self._nets.values():
            net.eval()
        return self

    @property
    def shows_cards(self) -> bool:
        """Whether personal previews show a history item's card ("goes with what you have")."""
        return bool(self.config.inset)

    def can_show(self, item_ids: Sequence[str]) -> np.ndarray:
        """Whether a card can show each item (the generator has its photo), bool (n,)."""
        self._check()
        return np.array([str(i) in self._row for i in item_ids], dtype=bool)

    def add_photos(self, context: GenerationContext, item_ids: Sequence[str], images: Sequence[Any]) -> "StudioGenerator":
        """Add (or replace) the photos of items of the model without retraining; returns self.

        New listings with a photo get product-kept previews at once: nothing learned depends
        on a particular item (the mood cVAE reads tastes, the editor and the retrieval map
        read text), so only the library grows.

        Parameters
        ----------
        context : GenerationContext
            The model (its text and image vectors of the items are stored with the photos).
        item_ids : sequence of str
            Items of the model.
        images : sequence of path, bytes or PIL image
            One photo per item.

        Raises
        ------
        UnknownIdError
            An item is not in the model.
        ValueError
            Lengths differ, or a photo cannot be read (the message names the item).
        """
        import torch

        from recgen.encoders.image import load_image

        self._check()
        item_ids = [str(i) for i in item_ids]
        images = list(images)
        if len(images) != len(item_ids):
            raise ValueError(f"images has {len(images)} entries but item_ids has {len(item_ids)}")
        if not item_ids:
            return self
        rows = context.item_rows(item_ids)
        fitted = []
        for i, im in zip(item_ids, images):
            try:
                fitted.append(fit_image(load_image(im), self.config.image_size))
            except ValueError as exc:
                raise ValueError(f"item {i}: {exc}") from exc
        photos = [f[0] for f in fitted]
        lib = self._lib
        self._fresh_caches()  # retrieval may pick the new photos
        self._structure_unit = None
        self._card_colours = None  # the cover colours' library statistics change too
        grey = _grey_features(context, photos) if lib.structure.shape[1] else np.zeros((len(photos), 0), np.float32)
        new = {"photo": np.stack(photos), "alpha": np.stack([np.clip(f[1] * 255, 0, 255).round() for f in fitted])
               .astype(np.uint8), "bg": np.stack([f[2] for f in fitted]),
               "text": context.item_vectors(rows, "text"), "image": context.item_vectors(rows, "image"),
               "structure": grey,
               "palette": moods_of(np.stack(photos), np.stack([f[1] for f in fitted])).reshape(len(photos), -1),
               "main": np.stack([main_colour(f[0], f[1]) for f in fitted])}
        for j, i in enumerate(item_ids):
            r = self._row.get(i)
            for name, values in new.items():
                buf = getattr(lib, name)
                value = torch.as_tensor(np.ascontiguousarray(values[j:j + 1]), dtype=buf.dtype)
                if r is None:
                    setattr(lib, name, torch.cat([buf, value]))
                else:
                    buf[r] = value[0]
            if r is None:
                self._row[i] = len(self.ids)
                self.ids.append(i)
        return self

    def add_titles(self, item_ids: Sequence[str], titles: Sequence[str]) -> "StudioGenerator":
        """Add (or replace) the titles that title cards show (new listings of an artwork catalog); returns self.

        Titles are kept at :meth:`fit` for the catalog's items; a ``GenerationContext`` whose
        catalog has the item's title overrides them at generation.

        Raises
        ------
        ValueError
            Lengths differ.
        """
        self._check()
        item_ids, titles = [str(i) for i in item_ids], list(titles)
        if len(titles) != len(item_ids):
            raise ValueError(f"titles has {len(titles)} entries but item_ids has {len(item_ids)}")
        for i, t in zip(item_ids, titles):
            if isinstance(t, str) and t.strip():
                self.titles[i] = " ".join(t.split())
        return self

    def _fit_mood(self, context: GenerationContext, progress: bool) -> None:
        import torch

        cfg = self.config
        lib = self._lib
        moods = _grids(lib.palette.numpy())
        rng = np.random.default_rng(cfg.seed)
        users = [str(u) for u in context.model.profiles.user_ids_]
        tastes, targets = [], []
        hist = context.user_histories(users, liked=True)  # a taste's colours: what the user liked
        uvecs = context.user_vectors(users)
        for u, (h, vec) in enumerate(zip(hist, uvecs)):
            have = [self._row[i] for i in dict.fromkeys(h) if i in self._row]
            for j in rng.permutation(len(have))[: cfg.moods_per_user]:
                tastes.append(vec)
                targets.append(moods[have[j]])
        for j in range(len(moods)):  # the neutral user: the population's moods
            tastes.append(np.zeros(self.dim, np.float32))
            targets.append(moods[j])
        x = torch.from_numpy(np.stack(targets))
        c = torch.from_numpy(np.stack(tastes).astype(np.float32))
        net = self._nets["mood"]
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        gen = torch.Generator().manual_seed(cfg.seed)
        losses = []
        for _epoch in _epochs(cfg.mood_epochs, progress, "mood cVAE"):
            order = torch.randperm(len(x), generator=gen)
            total = 0.0
            for s in range(0, len(x), cfg.batch_size):
                b = order[s:s + cfg.batch_size]
                rec, mu, logvar = net(x[b], c[b])
                kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1).mean()
                loss = (rec - x[b]).pow(2).sum((1, 2, 3)).mean() + cfg.mood_beta * kl
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            losses.append(total / len(x))
        self.history["mood_loss"] = losses

    def _small_photos(self, size: int):
        """The library's photos at ``size``, float (n, 3, size, size) in [0, 1] (what the editor trains on)."""
        import torch.nn.functional as F

        x = self._lib.photo.permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return x.contiguous()

    def _fit_editor(self, progress: bool) -> None:
        import torch
        import torch.nn.functional as F

        from recgen.generators.nets.cvae import ProjectionDiscriminator
        from recgen.generators.nets.studio import sliced_colour_distance

        cfg = self.config
        lib = self._lib
        text = lib.text.numpy()
        n = len(self.ids)
        ex = self._retrieve(text, self.ids, k=cfg.exemplars)  # never the item itself
        tgt = np.concatenate([np.repeat(np.arange(n), ex.shape[1]), np.arange(n)])
        src = np.concatenate([ex.reshape(-1), np.arange(n)])  # + identity pairs
        same = torch.from_numpy(tgt == src)
        t = torch.from_numpy(text)
        editor = self._nets["editor"]
        # the CVAE's projection discriminator, on images scaled to [-1, 1]
        critic = ProjectionDiscriminator((16, 32, 64), self.dim) if cfg.adversarial_weight > 0 else None
        opt = torch.optim.Adam(editor.parameters(), lr=cfg.lr)
        opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.lr, betas=(0.5, 0.999)) if critic else None
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        losses, adversarial = [], []
        photos = self._small_photos(cfg.editor_size)
        loss_size = min(16, cfg.editor_size)  # colour statistics need few pixels; sorting is the cost
        small = F.interpolate(photos, size=(loss_size, loss_size), mode="area")
        mattes = F.interpolate(lib.alpha[:, None].float() / 255.0, size=(cfg.editor_size, cfg.editor_size),
                               mode="area")  # (n, 1, s, s): where each photo's product is
        # the editor refines what the colour step makes: each pair's exemplar recoloured to the
        # colour the target's text names (identity pairs: their own text, so nearly unchanged)
        small_u8 = (photos.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        small_a = mattes[:, 0].numpy()
        inputs = self._recoloured(src, text[tgt], small_u8[src], small_a[src])
        palettes = torch.from_numpy(moods_of(inputs, small_a[src]).reshape(len(inputs), -1))
        inputs = torch.from_numpy(inputs).permute(0, 3, 1, 2).float() / 255.0
        for _epoch in _epochs(cfg.editor_epochs, progress, "text-to-image editor"):
            order = torch.randperm(len(tgt), generator=gen).numpy()
            total = total_adv = 0.0
            for s in range(0, len(order), cfg.batch_size):
                b = order[s:s + cfg.batch_size]
                xs, xt = inputs[b], photos[tgt[b]]
                cond = self._editor_cond(t[tgt[b]], src[b], palettes[b])
                out = editor(xs, cond)
                dirs = torch.randn(8, 3, generator=gen)
                dirs = dirs / dirs.norm(dim=1, keepdim=True)
                out_small = F.interpolate(out, size=(loss_size, loss_size), mode="area")
                loss = sliced_colour_distance(out_small, small[tgt[b]], dirs)
                # exemplars are retrieved by structure (same shape and pattern, up to the photos'
                # small shifts), so colours can also be compared where they are, at low resolution
                loss = loss + cfg.aligned_weight * (F.avg_pool2d(out_small, 4) - F.avg_pool2d(small[tgt[b]], 4)).abs().mean()
                # the product's mean colour (exemplar and target share shape and pattern, so this
                # is mostly the main colour): the most direct signal of what the text asks for
                ms, mt = mattes[src[b]], mattes[tgt[b]]
                mean_out = (out * ms).sum((2, 3)) / ms.sum((2, 3)).clamp_min(1e-3)
                mean_tgt = (xt * mt).sum((2, 3)) / mt.sum((2, 3)).clamp_min(1e-3)
                loss = loss + cfg.product_colour_weight * (mean_out - mean_tgt).abs().mean()
                if cfg.editor_keep_weight:  # a change must pay for itself: the colour step is usually right
                    kept = ((out - xs).abs() * ms).sum() / (3 * ms.sum()).clamp_min(1e-3)
                    loss = loss + cfg.editor_keep_weight * kept
                sb = same[b]
                if sb.any():
                    loss = loss + (out[sb] - xt[sb]).abs().mean()
                total += float(loss.detach()) * len(b)  # what the editor matches, without the critic's term
                if critic is not None:
                    d_real = critic(xt * 2 - 1, t[tgt[b]])
                    d_fake = critic(out.detach() * 2 - 1, t[tgt[b]])
                    d_loss = torch.relu(1 - d_real).mean() + torch.relu(1 + d_fake).mean()
                    opt_d.zero_grad()
                    d_loss.backward()
                    opt_d.step()
                    adv = -critic(out * 2 - 1, t[tgt[b]]).mean()
                    total_adv += float(adv.detach()) * len(b)
                    loss = loss + cfg.adversarial_weight * adv
                opt.zero_grad()
                loss.backward()
                opt.step()
            losses.append(total / len(order))
            if critic is not None:
                adversarial.append(total_adv / len(order))
        # reported apart: the critic's term rises as the critic learns, which says nothing about colours
        self.history["editor_loss"] = losses
        if adversarial:
            self.history["editor_adversarial"] = adversarial

    # ----------------------------------------------------------------- generate
    def _mood_grids(self, user_vecs: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """The mood cVAE's colour grids, (n, 3, G, G) in 0..1, one per row (its own seed)."""
        import torch

        cfg = self.config
        net = self._mood_net64()
        # float64, so that a row's mood does not depend on the other rows of the batch: float32
        # matrix products of different batch shapes differ in their last bits, which sometimes
        # flipped a pixel by one level (a preview must not change with what it was batched with)
        z = torch.from_numpy(_row_normals(seeds, cfg.mood_latent).astype(np.float32).astype(np.float64) * 0.5)
        taste = torch.from_numpy(np.asarray(user_vecs, dtype=np.float32).astype(np.float64))
        with torch.no_grad():
            m = net.decode(z, taste).numpy()
            if cfg.mood_contrast != 1.0:  # the user's difference from the population's mood, taken further
                population = net.decode(z, torch.zeros_like(taste)).numpy()
                m = np.clip(population + cfg.mood_contrast * (m - population), 0.0, 1.0)
        return m

    def _canvases(self, item_ids, user_ids, known, histories, user_vecs, seeds) -> np.ndarray:
        """Each row's backdrop, float (n, S, S, 3) in 0..255: the user's favourite colours
        (``backdrop="history"``, for users with a photographed liked item other than the row's
        item: a backdrop says what else they like), else the mood cVAE's sample (white at the
        default ``neutral_mood_strength`` for the neutral preview)."""
        cfg = self.config
        keys: list = [None] * len(user_ids)
        favourite: dict = {}
        if cfg.backdrop == "history":
            for j, (i, u) in enumerate(zip(item_ids, user_ids)):
                if not known[j]:
                    continue
                mine = i in histories[j]  # (rare: recommendations leave out what the user had)
                keys[j] = (u, i if mine else None)
                if keys[j] not in favourite:
                    favourite[keys[j]] = self._favourite_palette([h for h in histories[j] if h != i] if mine
                                                                 else histories[j])
        own = [j for j, k in enumerate(keys) if k is not None and favourite[k] is not None]
        mood = np.setdiff1d(np.arange(len(user_ids)), own)
        g = round((self._lib.palette.shape[1] / 3) ** 0.5)
        grids = np.empty((len(user_ids), 3, g, g), np.float64)  # colour grids are small: the backdrops are made once
        if len(mood):
            grids[mood] = self._mood_grids(np.asarray(user_vecs)[mood], seeds[mood])
        if own:
            grids[own] = _grids(np.stack([favourite[keys[j]] for j in own]))
        return self._backdrops(grids, np.where(known, cfg.mood_strength, cfg.neutral_mood_strength))

    def _mood_net64(self):
        """The mood cVAE in float64 (a copy, made once per fitted or loaded network)."""
        import copy

        net = self._nets["mood"]
        held = getattr(self, "_mood64", None)
        if held is None or held[0] is not net:
            held = (net, copy.deepcopy(net).double().eval())
            self._mood64 = held  # a race between threads makes two equal copies, harmlessly
        return held[1]

    def _backdrops(self, m: np.ndarray, strength: np.ndarray | None = None) -> np.ndarray:
        """Mood grids (n, 3, G, G) in 0..1 as backdrops, float (n, S, S, 3) in 0..255, each ``strength``
        (n,) of the way from white (``config.mood_strength`` by default)."""
        cfg = self.config
        k = np.full(len(m), cfg.mood_strength, np.float32) if strength is None else np.asarray(strength, np.float32)
        # bilinear upsampling (corners aligned) as two small matrix products: (n, 3, G, G) -> (n, S, S, 3)
        g, size = m.shape[-1], cfg.image_size
        pos = np.linspace(0, g - 1, size, dtype=np.float32)
        w = np.maximum(0.0, 1.0 - np.abs(pos[:, None] - np.arange(g, dtype=np.float32)[None, :]))
        # one small product per row (stacked matmul), not one product over the batch: a row's
        # result does not depend on how many rows came with it
        up = np.matmul(np.matmul(w, np.asarray(m, np.float32)), w.T).transpose(0, 2, 3, 1)
        return (1.0 - k[:, None, None, None] * (1.0 - up)) * 255.0

    def _editor_cond(self, target_text, exemplar_rows, exemplar_palettes):
        """The editor's condition: target text, exemplar text, the palette the target's text predicts
        (a ridge map fitted on the library) and the (recoloured) exemplar's palette, (n, 48)."""
        import torch

        lib = self._lib
        ex = torch.as_tensor(np.asarray(exemplar_rows))
        x = torch.cat([target_text, torch.ones(len(target_text), 1)], 1)
        predicted = (x @ lib.palette_ridge).clamp(0, 1)
        return torch.cat([target_text, lib.text[ex], predicted, exemplar_palettes], 1)

    def _named_colours(self, text_vecs: np.ndarray, exemplar_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The colour each text names, (n, 3) 0..255, and whether to use it, (n,) bool.

        A colour is used when the colour model finds it more likely than the colour the exemplar
        already has (the cluster of the exemplar's main colour): the decision that is right more
        often. Nothing is used when the model's cross-validated accuracy on the library is below
        ``config.colour_confidence`` (this catalog's text does not name colours).
        """
        lib = self._lib
        n = len(text_vecs)
        if lib.colour_centres.shape[0] == 0 or float(lib.colour_cv) < self.config.colour_confidence:
            return np.zeros((n, 3), np.float32), np.zeros(n, bool)
        logits = np.concatenate([text_vecs, np.ones((n, 1), np.float32)], 1) @ lib.colour_weights.numpy()
        logits -= logits.max(1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(1, keepdims=True)
        own = self._colour_clusters(exemplar_rows)
        return lib.colour_centres.numpy()[prob.argmax(1)], prob.max(1) > prob[np.arange(n), own]

    def _colour_clusters(self, rows) -> np.ndarray:
        """The library colour cluster of each library row's main colour, (n,) int."""
        centres = self._lib.colour_centres.numpy()
        mains = self._lib.main.numpy()[np.asarray(rows, dtype=np.int64)]
        return ((mains[:, None] - centres[None]) ** 2).sum(-1).argmin(1)

    def _recoloured(self, exemplar_rows: np.ndarray, text_vecs: np.ndarray, photos: np.ndarray,
                    alphas: np.ndarray) -> np.ndarray:
        """``photos`` (uint8 (n, S, S, 3), the exemplars') recoloured to what ``text_vecs`` name, where
        the colour model finds that colour more likely than the exemplar's own."""
        colours, use = self._named_colours(text_vecs, exemplar_rows)
        mains = self._lib.main.numpy()
        out = np.array(photos, dtype=np.uint8, copy=True)
        for j in np.flatnonzero(use):
            out[j] = recolour(photos[j], alphas[j], mains[exemplar_rows[j]], colours[j])
        return out

    def _titles(self, context: GenerationContext, item_ids: Sequence[str]) -> list[str]:
        """Each item's title: from ``context.catalog`` when it has the item (newer), else as kept at fit, else ""."""
        fresh: dict[str, str] = {}
        cat = context.catalog
        if cat is not None and "title" in cat.items.columns:
            want = set(item_ids)
            fresh = {str(i): str(t) for i, t in zip(cat.items["item_id"], cat.items["title"])
                     if str(i) in want and isinstance(t, str) and t.strip()}
        return [fresh.get(i) or self.titles.get(i, "") for i in item_ids]

    def _covers(self, item_vecs: np.ndarray, titles: Sequence[str]) -> list:
        """Title cards of items without a photo: list of (rgb, alpha, bg, None), laid out like a library photo.

        The colours are the library palette the item's text predicts (ridge map), moved away from
        the library's mean as far as real palettes vary (a ridge prediction shrinks toward the
        mean, which reads as grey), and reduced to a top-to-bottom gradient.
        """
        lib = self._lib
        if self._card_colours is None:  # how far predictions shrink, measured once on the library
            pal = lib.palette.numpy()
            pred = np.concatenate([lib.text.numpy(), np.ones((len(pal), 1), np.float32)], 1) @ lib.palette_ridge.numpy()
            self._card_colours = (pal.mean(0), pal.std(0) / np.maximum(pred.std(0), 1e-3))
        mean, stretch = self._card_colours
        x = np.concatenate([item_vecs, np.ones((len(item_vecs), 1), np.float32)], 1)
        pal = _grids(np.clip(mean + (x @ lib.palette_ridge.numpy() - mean) * stretch, 0, 1))
        half = pal.shape[-1] // 2
        s = self.config.image_size
        w = h = s
        if self.card_aspect < 1:
            w = max(8, round(s * self.card_aspect))
        else:
            h = max(8, round(s / self.card_aspect))
        x0, y0 = (s - w) // 2, (s - h) // 2
        out = []
        for p, title in zip(pal, titles):
            top, bottom = p[:, :half].mean((1, 2)), p[:, half:].mean((1, 2))
            grid = np.stack([top, bottom], 1)[:, :, None].repeat(2, 2)
            rgb = np.full((s, s, 3), 255, np.uint8)
            rgb[y0:y0 + h, x0:x0 + w] = title_card(title, grid, w, h)
            alpha = np.zeros((s, s), np.float32)
            alpha[y0:y0 + h, x0:x0 + w] = 1.0
            out.append((rgb, alpha, np.full(3, 255.0, np.float32), None))
        return out

    def _edited(self, item_vecs: np.ndarray, item_ids: Sequence[str | None]) -> tuple[list, np.ndarray]:
        """Text-only products: (list of (rgb, alpha, bg, exemplar row)), exemplar rows. A product has its
        exemplar's matte (the editor moves colours only), so it is laid out as the exemplar is."""
        import torch

        if "editor" not in self._nets:
            raise NotFittedError("this studio generator was trained without the text-to-image editor "
                                 "(config.editor=False or fewer than two photos): it cannot draw items without a photo")
        ex = self._retrieve(item_vecs, item_ids, k=1)[:, 0]
        lib = self._lib
        alpha = lib.alpha[torch.as_tensor(ex)].numpy().astype(np.float32) / 255.0
        photos = self._recoloured(ex, item_vecs, lib.photo[torch.as_tensor(ex)].numpy(), alpha)
        palettes = torch.from_numpy(moods_of(photos, alpha).reshape(len(photos), -1))
        with torch.no_grad():
            x = torch.from_numpy(photos).permute(0, 3, 1, 2).float() / 255.0
            out = self._nets["editor"](x, self._editor_cond(torch.from_numpy(item_vecs), ex, palettes))
        rgb = (out.permute(0, 2, 3, 1).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        # the background as edited (its shading is kept relative to it)
        border = np.concatenate([rgb[:, 0], rgb[:, -1], rgb[:, :, 0], rgb[:, :, -1]], axis=1).astype(np.float32)
        bgs = np.median(border, axis=1)
        return [(rgb[j], alpha[j], bgs[j], int(ex[j])) for j in range(len(ex))], ex

    def _source(self, key: int | tuple, made: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rgb uint8, alpha float 0..1, bg)`` of library photo ``key`` or of a generated product (a
        key of ``made``, else of the text cache)."""
        if isinstance(key, tuple):
            return (made or self._text_cache)[key][:3]
        lib = self._lib
        return lib.photo[key].numpy(), lib.alpha[key].numpy().astype(np.float32) / 255.0, lib.bg[key].numpy()

    def _shape(self, key: int | tuple, made: dict | None = None) -> int | tuple:
        """The key whose matte ``key``'s product has: the library row it was edited from, for a
        text-only product (the editor moves colours, not edges), else ``key``. Layouts are decided
        on mattes alone, so they are made and cached once per library photo, not once per item."""
        if isinstance(key, tuple):
            product = (made or self._text_cache).get(key)
            if product is not None and product[3] is not None:
                return product[3]
        return key

    def _cached(self, key: tuple, make):
        """``self._sized_cache[key]``, made by ``make()`` on a miss."""
        hit = self._sized_cache.get(key, MISSING)
        if hit is MISSING:
            hit = self._sized_cache[key] = make()
        return hit

    def _sized(self, row: int | tuple, side: int, made: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Library photo ``row`` (or the key of a generated product in ``made``) scaled to ``side``, ready
        to composite; cached (resizing is most of the cost)."""
        return self._cached((row, side), lambda: _sized(*self._source(row, made), side,
                                                          matte=self._sized_cache.get(("matte", self._shape(row, made),
                                                                                       side))))

    def _matte(self, row: int | tuple, side: int, made: dict | None = None) -> np.ndarray:
        """The matte (float (side, side)) of :meth:`_sized`, without scaling the colours: what layout
        decisions need (a product may be tried at several sides and drawn at one)."""
        full = self._sized_cache.get((row, side))
        if full is not None:
            return full[2][..., 0]
        return self._cached(("matte", row, side), lambda: _scaled_matte(self._source(row, made)[1], side))

    def _free_corner(self, key: int | tuple, side: int, card: int, tagged: bool,
                     made: dict | None = None) -> tuple[int, int] | None:
        """Top-left ``(x, y)`` of a ``card``-sided card in a corner where it hides none of the product
        (``key`` centred at ``side``), or None. Bottom-left is left to the "generated" label when ``tagged``."""
        cache_key = ("corner", key, side, card, tagged)
        hit = self._sized_cache.get(cache_key, MISSING)
        if hit is not MISSING:
            return hit
        s = self.config.image_size
        alpha = self._matte(key, side, made)
        off, margin = (s - side) // 2, round(0.02 * s)
        corners = [(s - card - margin, s - card - margin), (s - card - margin, margin), (margin, margin)]
        if not tagged:
            corners.insert(2, (margin, s - card - margin))
        found = None
        for x0, y0 in corners:
            ys = slice(max(y0 - off, 0), max(min(y0 + card - off, side), 0))
            xs = slice(max(x0 - off, 0), max(min(x0 + card - off, side), 0))
            if float(alpha[ys, xs].sum()) <= 0.01 * card * card:
                found = (x0, y0)
                break
        self._sized_cache[cache_key] = found
        return found

    def _beside(self, key: int | tuple, card: int, made: dict | None = None) -> tuple[int, int, int]:
        """``(side, x0, y0)`` of a product placed up-left beside a ``card``-sided card in the bottom-right
        corner: the largest side up to ``personal_scale`` at which the card hides (almost) none of it.

        A cut-out product keeps its square at the top-left margin (the product stays centred in
        it, as in a photo); a full-bleed picture (a letterboxed poster) puts its own edges against
        the margin, which usually leaves the card room without shrinking."""
        cache_key = ("beside", key, card)
        hit = self._sized_cache.get(cache_key, MISSING)
        if hit is not MISSING:
            return hit
        s = self.config.image_size
        margin = round(0.02 * s)
        c0 = s - card - margin  # the card's top-left, on both axes
        top = round(self.config.personal_scale * s)
        ref = self._matte(key, top, made)
        bleed = self._bleeds(key, made)
        sides = list(range(top, max(8, round(0.5 * s)) - 1, -max(1, s // 64)))
        # resizing is the cost: the top-size matte, scaled, estimates where to start, and the exact
        # check starts one step above that estimate (usually one to three resizes, not up to twenty)
        start = _first_clear(ref, sides, c0, margin, bleed)

        def place(side):  # ((x0, y0) of the product at this side, whether the card leaves it clear)
            alpha = self._matte(key, side, made)
            on = alpha > 0.5
            if not on.any():
                return (margin, margin), True
            x0 = y0 = margin
            if bleed:
                x0, y0 = margin - int(np.flatnonzero(on.any(0))[0]), margin - int(np.flatnonzero(on.any(1))[0])
            under = alpha[max(c0 - y0, 0):, max(c0 - x0, 0):]  # the part of the product the card would cover
            return (x0, y0), float(under.sum()) <= _CARD_MAY_HIDE * float(alpha.sum())

        k = max(start - 1, 0)
        at, ok = place(sides[k])
        if ok:  # the estimate was cautious: climb while the next larger side is clear too
            while k > 0 and (up := place(sides[k - 1]))[1]:
                k, at = k - 1, up[0]
        else:  # step down; at half size the smallest tried is kept even if the card covers a little
            while not ok and k + 1 < len(sides):
                k += 1
                at, ok = place(sides[k])
        found = (sides[k], *at)
        self._sized_cache[cache_key] = found
        return found

    def _bleeds(self, key: int | tuple, made: dict | None = None) -> bool:
        """Whether product ``key`` is a full-bleed picture (its matte fills its box: a poster)."""
        cache_key = ("bleeds", key)
        hit = self._sized_cache.get(cache_key, MISSING)
        if hit is MISSING:
            hit = _full_bleed(self._matte(key, round(self.config.personal_scale * self.config.image_size),
                                          made)) is not None
            self._sized_cache[cache_key] = hit
        return hit

    def _favourite_palette(self, history: list[str]) -> np.ndarray | None:
        """The colour layout (flat, as the library stores it) of the user's favourite colour, or None
        when no history item has a photo.

        Among the photographed items of the last ``history_limit`` of ``history`` (liked items,
        oldest first), the main colours fall into the library's colour clusters; in the cluster
        picked most often, the item whose layout is nearest to the others' (least summed squared
        distance: the medoid) gives it. A tie goes to the more colourful cluster (a colour says
        more about a taste than black, white or grey do, and a grey backdrop reads as a dull
        photo), then to the one picked last. A library too small for colour clusters takes the
        medoid of all."""
        lib = self._lib
        have = self._history_rows(history)
        if not have:
            return None
        centres = lib.colour_centres.numpy()
        if len(centres):
            cluster = self._colour_clusters(have)
            count = np.bincount(cluster, minlength=len(centres))
            latest = np.full(len(centres), -1)
            np.maximum.at(latest, cluster, np.arange(len(have)))  # the last position each cluster was picked at
            chroma = centres.max(1) - centres.min(1)
            best = np.lexsort((latest, chroma, count))[-1]  # most often, then the more colourful, then the latest
            have = [r for r, c in zip(have, cluster) if c == best]
        pal = lib.palette.numpy()[have].astype(np.float64)
        sq = (pal * pal).sum(1)
        d = sq[:, None] + sq[None, :] - 2.0 * pal @ pal.T
        return pal[int(np.argmin(d.sum(1)))].astype(np.float32)

    def _history_rows(self, history: list[str]) -> list[int]:
        """Library rows of the photographed items among the last ``history_limit`` of ``history`` (once each)."""
        return [self._row[i] for i in dict.fromkeys(history[-self.config.history_limit:]) if i in self._row]

    def _anchor(self, item_row: int | None, item_vec: np.ndarray, history: list[str]) -> int | None:
        """Library row of the history item to show beside the product (most similar look), or None."""
        have = [r for r in self._history_rows(history) if r != item_row]
        if not have:
            return None
        im = self._lib.image.numpy()[have]
        return have[int(np.argmax(l2_normalize(im) @ l2_normalize(item_vec[None])[0]))]

    def generate(self, context: GenerationContext, item_ids: Sequence[str], user_ids: Sequence[str | None], *,
                 seed: int = 0, mode: str = "auto", anchors: Sequence[str | None] | None = None) -> PreviewOutput:
        """One preview per (item, user) pair.

        Parameters
        ----------
        context : GenerationContext
            The model the generator was trained with (no catalog needed).
        item_ids : sequence of str
            Items of the model.
        user_ids : sequence of str or None
            ``None`` or an unknown user: the neutral preview (centred product, neutral backdrop).
        seed : int
            Seeds each row's mood sample by ``(seed, item id)``: the same seed, the same preview;
            an item's previews for two users differ only by the user.
        mode : {"auto", "photo", "text"}
            ``auto``: keep the photo where the generator has one, generate from text otherwise;
            ``text``: generate from text for every item (e.g. to judge against held-out photos);
            ``photo``: refuse items without a photo.
        anchors : sequence of str or None, optional
            The history item to show beside each product (e.g. the one the blurb names); an
            id the generator has no photo of falls back to its own choice.

        Returns
        -------
        PreviewOutput
            ``images`` uint8 (n, S, S, 3); ``anchors`` the history item shown per row (or None);
            ``generated`` whether each preview was made without the item's photo.

        Raises
        ------
        UnknownIdError
            An item is not in the model.
        ValueError
            Lengths differ, bad ``mode``, or ``mode="photo"`` with an item without a photo.
        """
        self._check()
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer; got {seed!r}")
        item_ids, user_ids = paired(item_ids, user_ids)
        if anchors is not None and len(anchors) != len(item_ids):
            raise ValueError(f"anchors has {len(anchors)} entries but item_ids has {len(item_ids)}")
        generated = self.is_generated(item_ids, mode=mode)
        missing = [i for i in item_ids if i not in self._row]
        if mode == "photo" and missing:
            raise ValueError(f"mode='photo' but the generator has no photo of {missing[:5]}; use mode='auto' "
                             "(or add_photos first)")
        cfg = self.config
        s = cfg.image_size
        rows = context.item_rows(item_ids)
        if not item_ids:
            return PreviewOutput(images=np.zeros((0, s, s, 3), np.uint8), user_ids=[], item_ids=[])
        uvecs = context.user_vectors(user_ids)
        known = [u is not None and bool(np.any(v)) for u, v in zip(user_ids, uvecs)]
        seeds = np.array([zlib.crc32(f"{int(seed)}\0{i}".encode()) for i in item_ids], dtype=np.int64)
        histories = context.user_histories([u if k else None for u, k in zip(user_ids, known)], liked=True) \
            if cfg.inset or cfg.backdrop == "history" else [[] for _ in item_ids]
        canvases = self._canvases(item_ids, user_ids, known, histories, uvecs, seeds)
        products: list[tuple | None] = [None] * len(item_ids)  # keys of generated products
        made: dict[tuple, tuple] = {}  # this call's generated products (rgb, alpha, bg, exemplar row)
        gen_idx = [j for j, g in enumerate(generated) if g]
        if gen_idx:  # a generated product does not depend on the user: made once per item, then cached
            tv = context.item_vectors(rows[gen_idx], "text")
            titles = self._titles(context, [item_ids[j] for j in gen_idx]) if self.text_style == "title" \
                else [""] * len(gen_idx)
            keys = [("text", item_ids[j], zlib.crc32(tv[k].tobytes() + titles[k].encode()))
                    for k, j in enumerate(gen_idx)]
            for key in keys:
                hit = self._text_cache.get(key)
                if hit is not None:
                    made[key] = hit
            todo = list({key: k for k, key in enumerate(keys) if key not in made}.values())
            if todo:
                if self.text_style == "title":
                    edited = self._covers(tv[todo], [titles[k] for k in todo])
                else:
                    edited, _ = self._edited(tv[todo], [keys[k][1] for k in todo])
                made.update((keys[k], p) for k, p in zip(todo, edited))
                self._text_cache.update((keys[k], p) for k, p in zip(todo, edited))
            for k, j in enumerate(gen_idx):
                products[j] = keys[k]
        fused = context.item_vectors(rows, "image")
        shown: list[str | None] = []
        for j, i in enumerate(item_ids):
            a = None
            if cfg.inset and known[j]:
                want = anchors[j] if anchors is not None else None
                if want is not None and str(want) in self._row and str(want) != i:
                    a = self._row[str(want)]
                else:
                    a = self._anchor(self._row.get(i), fused[j], histories[j])
            canvas = canvases[j]
            if a is not None and cfg.backdrop == "card":  # the backdrop takes up the card's colours
                canvas[:] = self._backdrops(_grids(self._lib.palette[a].numpy()))[0]
            key = self._row[i] if products[j] is None else products[j]
            shape = self._shape(key, made)
            side = round(cfg.product_scale * s)
            card = round(cfg.inset_scale * s)
            corner = None if a is None else self._free_corner(shape, side, card, generated[j] and cfg.mark_generated,
                                                              made)
            if a is not None and corner is None and not cfg.shrink_for_card and not self._bleeds(shape, made):
                a = None  # no corner is free and the product is a cut-out: it keeps its size and place, and
                # the backdrop alone is personal
            if a is None or corner is not None:  # the product as in the neutral layout (the card, if any,
                # sits in a corner the product leaves empty)
                _paste_sized(canvas, self._sized(key, side, made), (s - side) // 2, (s - side) // 2)
            else:  # no free corner (e.g. a full-bleed poster): the product moves up-left, shrinking
                # only as far as it must for the card to hide none of it
                margin = round(0.02 * s)
                side, x0, y0 = self._beside(shape, card, made)
                _paste_sized(canvas, self._sized(key, side, made), x0, y0)
                corner = (s - card - margin, s - card - margin)
            if a is not None:
                _card(canvas, self._sized(a, card - 2 * _card_pad(card)), card, *corner)
            shown.append(None if a is None else self.ids[a])
            if generated[j] and cfg.mark_generated:
                _tag(canvas)
        images = np.clip(canvases, 0, 255).round().astype(np.uint8)
        return PreviewOutput(images=images, user_ids=output_user_ids(user_ids), item_ids=item_ids,
                             anchors=shown, generated=list(generated))

    # -------------------------------------------------------------- persistence
    def save(self, directory: str | Path) -> Path:
        """Save atomically (networks and the photo library in ``weights.safetensors``, settings in the manifest)."""
        self._check()
        config = {"studio": asdict(self.config), "ids": self.ids, "dim": self.dim, "history": self.history,
                  "features": int(self._lib.structure.shape[1]), "colours": int(self._lib.colour_centres.shape[0]),
                  "editor": "editor" in self._nets, "text_style": self.text_style, "titles": self.titles,
                  "card_aspect": self.card_aspect}
        return save_torch_state(directory, kind=_KIND, modules=self._nets, config=config)

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True, device: str | None = None) -> "StudioGenerator":
        """Load what :meth:`save` wrote (checksums checked when ``verify``).

        Raises
        ------
        ArtifactError
            Missing, incomplete, tampered or inconsistent artefact.
        """
        from recgen.generators.nets.studio import BilateralEditor, MoodCVAE

        made: list[StudioGenerator] = []

        def build(cfg: dict[str, Any]) -> dict[str, Any]:
            if "colours" not in cfg:
                raise ValueError("it was saved by an older recgen (before the text-only colour model): fit the "
                                 "studio generator again")
            config = StudioConfig(**_as_saved(cfg["studio"]))
            if device is not None:
                config = replace(config, device=device)
            gen = cls(config)
            gen.ids = [str(i) for i in cfg["ids"]]
            gen._row = {i: j for j, i in enumerate(gen.ids)}
            gen.dim = int(cfg["dim"])
            gen.history = {k: [float(x) for x in v] for k, v in cfg["history"].items()}
            gen.text_style = str(cfg.get("text_style", "exemplar"))
            gen.titles = {str(k): str(v) for k, v in (cfg.get("titles") or {}).items()}
            gen.card_aspect = float(cfg.get("card_aspect", 1.0))
            n, s = len(gen.ids), config.image_size
            nets = {"library": _Library.empty(n, s, gen.dim, int(cfg["features"]), int(cfg["colours"])),
                    "mood": MoodCVAE(gen.dim, latent_dim=config.mood_latent)}
            if cfg["editor"]:
                nets["editor"] = BilateralEditor(_editor_cond_dim(gen.dim))
            gen._nets = nets
            made.append(gen)
            return nets

        load_torch_state(directory, kind=_KIND, modules=build, verify=verify)
        gen = made[-1]
        for net in gen._nets.values():
            net.eval()
        return gen


def _as_saved(settings: dict[str, Any]) -> dict[str, Any]:
    """A saved config's settings, with those added since it was saved set to the values that
    reproduce how it drew (an older artefact keeps its look; new defaults apply to new fits)."""
    out = dict(settings)
    out.setdefault("mood_contrast", 1.0)  # the cVAE's own mood
    # before neutral_mood_strength, the neutral user's backdrop was the population's mood at the users' strength
    out.setdefault("neutral_mood_strength", out.get("mood_strength", StudioConfig.mood_strength))
    out.setdefault("editor_keep_weight", 0.0)  # how its editor was trained (a training setting only)
    # before the backdrop setting: the card's colours when card_backdrop, else the mood cVAE's; and a product
    # that left no corner free shrank for the card
    out.setdefault("backdrop", "card" if out.pop("card_backdrop", False) else "mood")
    out.setdefault("shrink_for_card", True)
    return out


def _grey_features(context: GenerationContext, photos: Sequence[np.ndarray]) -> np.ndarray:
    """The model's image-encoder features of grey-scale copies of ``photos`` (shape and pattern, not colour)."""
    from PIL import Image

    grey = [Image.fromarray(p).convert("L").convert("RGB") for p in photos]
    return np.asarray(context.model.space.image_features(grey), dtype=np.float32)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Ridge regression weights ``(dim + 1, k)`` from ``x`` (n, dim) to ``y`` (n, k); the last row is the bias."""
    xb = np.concatenate([x, np.ones((len(x), 1), np.float32)], 1).astype(np.float64)
    reg = alpha * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0  # the bias is not shrunk
    return np.linalg.solve(xb.T @ xb + reg, xb.T @ np.asarray(y, dtype=np.float64)).astype(np.float32)


def _colour_model(text: np.ndarray, mains: np.ndarray, clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """What colour a text names: clusters of the library's main colours and a softmax regression to them.

    Returns ``(centres (k, 3), weights (dim + 1, k), cv accuracy)``; the last row of
    ``weights`` is the bias. The cross-validated accuracy says whether this catalog's text
    names its products' colours at all (film titles do not); with fewer than 16 photos there
    is no model (``k = 0``).
    """
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    k = min(int(clusters), len(mains) // 8)
    dim = text.shape[1]
    if k < 2:
        return np.zeros((0, 3), np.float32), np.zeros((dim + 1, 0), np.float32), 0.0
    labels = KMeans(k, n_init=10, random_state=seed).fit(mains).labels_
    k = int(labels.max()) + 1
    centres = np.stack([mains[labels == c].mean(0) for c in range(k)]).astype(np.float32)
    clf = LogisticRegression(C=10.0, max_iter=3000)
    folds = min(5, int(np.bincount(labels).max()))
    if folds >= 2 and len(np.unique(labels)) >= 2:
        import warnings

        with warnings.catch_warnings():  # small clusters: fewer members than folds is expected
            warnings.simplefilter("ignore", UserWarning)
            pred = cross_val_predict(clf, text, labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
        cv = float(np.mean(pred == labels))
    else:
        cv = 0.0
    clf.fit(text, labels)
    coef = np.zeros((k, dim), np.float32)
    bias = np.zeros(k, np.float32)
    if len(clf.classes_) == 2:  # sklearn's binary case: one row of weights
        coef[clf.classes_[1]], bias[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
    else:
        coef[clf.classes_], bias[clf.classes_] = clf.coef_, clf.intercept_
    return centres, np.concatenate([coef.T, bias[None]], 0), cv


def _editor_cond_dim(dim: int) -> int:
    from recgen.generators.nets.studio import MOOD_GRID

    return 2 * dim + 2 * 3 * MOOD_GRID * MOOD_GRID


def _structure(context: GenerationContext, photos: list[np.ndarray], text: np.ndarray,
               alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Grey-scale image features of the photos, and the ridge map from text vectors to them.

    Returns ``(features (n, F), weights (dim + 1, F))``; the last row of ``weights`` is the bias.
    """
    feats = _grey_features(context, photos)
    return feats, _ridge(text, feats, alpha)


def _row_normals(seeds: np.ndarray, k: int) -> np.ndarray:
    """Standard normal draws, (n, k) float32, row ``i`` a function of ``seeds[i]`` only (splitmix64 + Box-Muller).

    A vectorized counter-based generator: one numpy Generator per row cost more than the rest
    of a preview.
    """
    m = 2 * ((k + 1) // 2)
    x = (np.asarray(seeds, dtype=np.uint64)[:, None] * np.uint64(0x9E3779B97F4A7C15)
         + np.arange(1, m + 1, dtype=np.uint64)[None, :] * np.uint64(0xBF58476D1CE4E5B9))
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    u = ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)  # in (0, 1)
    u1, u2 = u[:, 0::2], u[:, 1::2]
    r = np.sqrt(-2.0 * np.log(u1))
    z = np.concatenate([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)], axis=1)[:, :k]
    return z.astype(np.float32)


def _epochs(n: int, progress: bool, what: str):
    if not progress:
        return range(n)
    from tqdm.auto import tqdm

    return tqdm(range(n), desc=what, unit="epoch")


@functools.lru_cache(maxsize=None)
def _library_module():
    import torch
    import torch.nn as nn

    class Library(nn.Module):
        """The kept photos, their mattes and backgrounds, and their text and image vectors (buffers)."""

        def __init__(self, photo, alpha, bg, text, image, structure, ridge, palette_ridge, palette, main,
                     colour_centres, colour_weights, colour_cv) -> None:
            super().__init__()
            self.register_buffer("photo", torch.as_tensor(np.ascontiguousarray(photo, dtype=np.uint8)))
            if np.asarray(alpha).dtype != np.uint8:  # mattes are kept as 0..255
                alpha = np.clip(np.asarray(alpha, dtype=np.float32) * 255.0, 0, 255).round().astype(np.uint8)
            self.register_buffer("alpha", torch.as_tensor(np.ascontiguousarray(alpha)))
            self.register_buffer("bg", torch.as_tensor(np.ascontiguousarray(bg, dtype=np.float32)))
            self.register_buffer("text", torch.as_tensor(np.ascontiguousarray(text, dtype=np.float32)))
            self.register_buffer("image", torch.as_tensor(np.ascontiguousarray(image, dtype=np.float32)))
            self.register_buffer("structure", torch.as_tensor(np.ascontiguousarray(structure, dtype=np.float32)))
            self.register_buffer("ridge", torch.as_tensor(np.ascontiguousarray(ridge, dtype=np.float32)))
            self.register_buffer("palette_ridge", torch.as_tensor(np.ascontiguousarray(palette_ridge, dtype=np.float32)))
            self.register_buffer("palette", torch.as_tensor(np.ascontiguousarray(palette, dtype=np.float32)))
            self.register_buffer("main", torch.as_tensor(np.ascontiguousarray(main, dtype=np.float32)))
            self.register_buffer("colour_centres", torch.as_tensor(np.ascontiguousarray(colour_centres, dtype=np.float32)))
            self.register_buffer("colour_weights", torch.as_tensor(np.ascontiguousarray(colour_weights, dtype=np.float32)))
            self.register_buffer("colour_cv", torch.as_tensor(np.float32(colour_cv)))

    return Library


class _Library:
    """Factory of the library module (torch is imported lazily, so ``import recgen`` stays light)."""

    def __new__(cls, *buffers):
        return _library_module()(*buffers)

    @staticmethod
    def empty(n: int, size: int, dim: int, features: int, colours: int):
        z = np.zeros
        return _library_module()(z((n, size, size, 3), np.uint8), z((n, size, size), np.uint8), z((n, 3), np.float32),
                                 z((n, dim), np.float32), z((n, dim), np.float32), z((n, features), np.float32),
                                 z((dim + 1, features), np.float32), z((dim + 1, 48), np.float32),
                                 z((n, 48), np.float32), z((n, 3), np.float32), z((colours, 3), np.float32),
                                 z((dim + 1, colours), np.float32), np.float32(0))
