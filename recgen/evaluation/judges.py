"""Independent judges of generated images: what they measure never enters a generator.

recgen's generators condition on recgen's own vectors (the text model, and EfficientNet-Lite0
image features projected into the text space). A metric computed in that space flatters them:
a preview can match the conditioning vector without looking like the item. The judges here
use none of it:

* :func:`independent_features` - hand-made descriptors of pixels only: the spatial colour layout
  (an 8x8 thumbnail in a perceptual colour space), a joint HSV histogram and gradient-orientation
  histograms on a 4x4 grid (HOG-like). Identifiability among candidates, feature-space FID,
  personalization shift and visible difference are computed in this space.
* :func:`texture_features` - local binary patterns (Ojala et al., 2002) at two radii: what a
  surface pattern (stripes, dots, checks) looks like up close, wherever it is in the picture.
* :class:`AttributeJudge` - per-attribute classifiers (e.g. category, colour, pattern) trained
  only on the catalog's *real* photos, reading the attributes back from generated previews,
  from both descriptors above.
* :func:`sharpness` / :func:`sharpness_ratio` - high-frequency energy (variance of the
  Laplacian) of previews relative to real photos at the same size.

Images are uint8 arrays ``(n, H, W, 3)`` (or lists of PIL images / paths); they are resized to
``size`` (default 64) before description, so previews and photos of different sizes compare.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["AttributeJudge", "independent_features", "light_backdrops", "sharpness", "sharpness_ratio",
           "texture_features", "visible_difference", "presentation_colours", "window_boxes", "window_features"]


def _as_arrays(images: Any, size: int | None) -> np.ndarray:
    """uint8 (n, size, size, 3) from arrays, PIL images or paths (bicubic resize when needed)."""
    from PIL import Image

    if isinstance(images, np.ndarray) and images.ndim == 4:
        if size is None or images.shape[1:3] == (size, size):
            return np.ascontiguousarray(images, dtype=np.uint8)
        images = list(images)
    out = []
    for im in images:
        if isinstance(im, np.ndarray):
            im = Image.fromarray(np.asarray(im, dtype=np.uint8))
        elif not isinstance(im, Image.Image):
            from recgen.catalog.schema import decode_image

            im = decode_image(im)
        im = im.convert("RGB")
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC)
        out.append(np.asarray(im, dtype=np.uint8))
    if not out:
        return np.zeros((0, size or 1, size or 1, 3), np.uint8)
    return np.stack(out)


def _border_colour(im: np.ndarray) -> np.ndarray:
    """The median colour of a picture's edge pixels (its plain background, for a product photo), (3,)."""
    return np.median(np.concatenate([im[0], im[-1], im[:, 0], im[:, -1]]), 0)


def _rgb_to_hsv(x: np.ndarray) -> np.ndarray:
    """float RGB in [0, 1], (..., 3) -> HSV in [0, 1]."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    mx, mn = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)  # (a reduce over 3 is slow)
    d = mx - mn
    h = np.zeros_like(mx)
    nz = d > 1e-6
    rr = nz & (mx == r)
    gg = nz & (mx == g) & ~rr
    bb = nz & ~rr & ~gg
    h[rr] = ((g - b)[rr] / d[rr]) % 6
    h[gg] = (b - r)[gg] / d[gg] + 2
    h[bb] = (r - g)[bb] / d[bb] + 4
    h = h / 6.0
    s = np.where(mx > 1e-6, d / np.maximum(mx, 1e-6), 0.0)
    return np.stack([h, s, mx], -1)


def _opponent(x: np.ndarray) -> np.ndarray:
    """A cheap perceptual colour space: intensity and two opponent channels."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return np.stack([(r + g + b) / 3, (r - g) / 2, (2 * b - r - g) / 4], -1)


def independent_features(images: Any, *, size: int = 64) -> np.ndarray:
    """Pixel-only descriptors, one unit row per image; see the module docstring.

    Returns
    -------
    ndarray of float32, shape (n, 192 + 128 + 128)
    """
    arr = _as_arrays(images, size).astype(np.float32) / 255.0
    n = len(arr)
    if n == 0:
        return np.zeros((0, 448), np.float32)
    # 1. colour layout: 8x8 block means in the opponent space
    s = size // 8
    blocks = arr[:, : s * 8, : s * 8].reshape(n, 8, s, 8, s, 3).mean(axis=(2, 4))
    layout = _opponent(blocks).reshape(n, -1)
    # 2. joint HSV histogram (8 hues x 4 saturations x 4 values)
    hsv = _rgb_to_hsv(arr).reshape(n, -1, 3)
    idx = (np.minimum((hsv[..., 0] * 8).astype(int), 7) * 16 + np.minimum((hsv[..., 1] * 4).astype(int), 3) * 4
           + np.minimum((hsv[..., 2] * 4).astype(int), 3))
    hist = np.bincount((idx + 128 * np.arange(n)[:, None]).ravel(), minlength=128 * n).reshape(n, 128)
    hist = hist.astype(np.float32) / hist.sum(1, keepdims=True)
    # 3. gradient orientations (8 unsigned bins) weighted by magnitude on a 4x4 grid
    gray = arr.mean(-1)
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, :, 1:-1] = gray[:, :, 2:] - gray[:, :, :-2]
    gy[:, 1:-1, :] = gray[:, 2:, :] - gray[:, :-2, :]
    mag = np.hypot(gx, gy)
    ori = np.minimum(((np.arctan2(gy, gx) % np.pi) / np.pi * 8).astype(int), 7)
    c = size // 4
    # magnitude-weighted counts of (image, cell row, cell column, orientation), one bincount
    ys, xs = np.meshgrid(np.arange(4 * c) // c, np.arange(4 * c) // c, indexing="ij")
    bins = ((np.arange(n)[:, None, None] * 16 + ys * 4 + xs) * 8 + ori[:, :4 * c, :4 * c]).ravel()
    hog = np.bincount(bins, weights=mag[:, :4 * c, :4 * c].ravel().astype(np.float64),
                      minlength=n * 128).reshape(n, 128).astype(np.float32)
    hog /= np.maximum(np.linalg.norm(hog, axis=1, keepdims=True), 1e-6)
    parts = []
    for block in (layout, np.sqrt(hist), hog):  # each block carries the same weight
        block = block - block.mean(1, keepdims=True) if block is layout else block
        parts.append(block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-6))
    out = np.concatenate(parts, 1) / np.sqrt(3.0)
    return np.ascontiguousarray(out, dtype=np.float32)


# the 8 neighbours of a local binary pattern on a square ring, clockwise from the top left
_LBP_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def texture_features(images: Any, *, size: int = 64, radii: Sequence[int] = (1, 2),
                     threshold: float = 0.02) -> np.ndarray:
    """Local-binary-pattern histograms of the grey picture, one unit row per image, float32 (n, 256 * len(radii)).

    A square-ring variant of local binary patterns (Ojala et al. 2002 sample a circle and
    interpolate): each pixel's 8 neighbours at distance ``radius`` (the corners and edge midpoints
    of a square) are compared with it, and a neighbour at least ``threshold`` (grey level 0..1)
    brighter sets one bit of an 8-bit code. The histogram of codes over the picture (square-rooted,
    each radius's block unit length) describes its micro-texture wherever the texture is, and
    changes little when the background's colour does: inside the product (a stripe's edge, a dot)
    the codes are the same on any backdrop; only the product's outline may code differently. A
    flat backdrop adds only code 0, a gentle gradient nearly only. Pixel-only, like
    :func:`independent_features`.
    """
    radii = tuple(int(r) for r in radii)
    if not radii or min(radii) < 1 or 2 * max(radii) >= size:
        raise ValueError(f"radii must be positive and below size / 2 = {size / 2:g}; got {radii}")
    arr = _as_arrays(images, size).astype(np.float32) / 255.0
    n = len(arr)
    if n == 0:
        return np.zeros((0, 256 * len(radii)), np.float32)
    gray = arr.mean(-1)
    blocks = []
    for r in radii:
        centre = gray[:, r:size - r, r:size - r]
        code = np.zeros(centre.shape, np.int32)
        for bit, (dy, dx) in enumerate(_LBP_NEIGHBOURS):
            nb = gray[:, r + dy * r:size - r + dy * r, r + dx * r:size - r + dx * r]
            code |= (nb >= centre + threshold).astype(np.int32) << bit
        hist = np.bincount((code + 256 * np.arange(n)[:, None, None]).ravel(), minlength=256 * n).reshape(n, 256)
        block = np.sqrt(hist.astype(np.float32))
        blocks.append(block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-6))
    return np.ascontiguousarray(np.concatenate(blocks, 1) / np.sqrt(len(blocks)), dtype=np.float32)


def window_boxes(scales: Sequence[float] = (1.0, 0.9, 0.8, 0.7, 0.6), aspects: Sequence[float] = (1.0, 2 / 3, 3 / 2),
            steps: int = 5) -> np.ndarray:
    """Sub-windows of an image, ``(w, 4)`` boxes ``(x0, y0, x1, y1)`` as fractions of its side.

    Every window of each scale (the longer side's share) and aspect (width / height), slid over
    ``steps`` positions per axis; the whole image first.
    """
    boxes = [(0.0, 0.0, 1.0, 1.0)]
    for s in scales:
        for a in aspects:
            w, h = (s * a, s) if a < 1 else (s, s / a)
            for y in np.linspace(0.0, 1.0 - h, steps):
                for x in np.linspace(0.0, 1.0 - w, steps):
                    box = (round(float(x), 4), round(float(y), 4), round(float(x + w), 4), round(float(y + h), 4))
                    if box not in boxes:
                        boxes.append(box)
    return np.asarray(boxes, dtype=np.float64)


def window_features(images: Any, *, boxes: np.ndarray | None = None, size: int = 64) -> np.ndarray:
    """:func:`independent_features` of sub-windows of each image, ``(n, w, d)`` (boxes from :func:`window_boxes`).

    Finds an item wherever a picture shows it (a smaller, off-centre or letterboxed photo, a
    second picture beside it): :func:`~recgen.evaluation.generation.identifiability` scores a
    candidate by its best-matching window. Each window is resized to ``size`` square, as the
    candidates' photos are.
    """
    from PIL import Image

    boxes = window_boxes() if boxes is None else np.asarray(boxes, dtype=np.float64)
    arr = _as_arrays(images, None)
    out = []
    for im in arr:
        pil = Image.fromarray(im)
        w, h = pil.size
        crops = [np.asarray(pil.resize((size, size), Image.BICUBIC,
                                       box=(b[0] * w, b[1] * h, b[2] * w, b[3] * h)), dtype=np.uint8) for b in boxes]
        out.append(independent_features(np.stack(crops), size=size))
    if not out:
        return np.zeros((0, len(boxes), 448), np.float32)
    return np.stack(out)


def _hue_histogram(pixels: np.ndarray, bins: int = 12) -> np.ndarray:
    """Normalized hue histogram (``bins`` hues) of float RGB pixels (m, 3), each weighted by its chroma.

    A colour mood is which hues a picture has and how strongly: a light tint and a saturated
    product of the same hue fall in the same bin; greys, whites and blacks weigh nothing.
    """
    if len(pixels) == 0:
        return np.full(bins, 1e-6, np.float32)
    hsv = _rgb_to_hsv(pixels)
    chroma = hsv[:, 1] * hsv[:, 2]
    idx = np.floor(hsv[:, 0] * bins + 0.5).astype(int) % bins  # bins centred on the hues: red does not split
    hist = np.bincount(idx, weights=chroma, minlength=bins).astype(np.float32)
    return hist / max(float(hist.sum()), 1e-6) + 1e-6


def presentation_colours(personal: Any, neutral: Any, histories: Sequence[Any], *, size: int = 64,
                         changed: float = 8 / 255, foreground: float = 24 / 255
                         ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Colours of what personalization changed, and of the products a user had, for
    :func:`~recgen.evaluation.generation.personalization_gain`.

    For each pair, the *presentation* is the set of pixels where the personal and the neutral
    preview differ (more than ``changed`` in some channel): the backdrop, a card, a new crop.
    The two previews are compared at their own resolution (``size`` applies to them only when
    their sizes differ): resampling first lets a pixel that is the same in both (a "generated"
    label drawn on both) take colour from changed neighbours, and its hue then counted as
    presentation.
    Its chroma-weighted hue histogram (its colour mood) is taken in both previews; each history
    photo gives the histogram of its foreground (pixels further than ``foreground`` from the photo's border colour, i.e. the
    product, not its studio background). A positive gain says the personal presentation's
    colours are closer to the colours of what the user had than the neutral one's: a judge of
    the backdrop and card that whole-picture features (dominated by the product, which does not
    change) cannot give.

    Returns
    -------
    personal_hist, neutral_hist : float32 (n, 12)
    history_hists : list of n float32 arrays (h_i, 12)
    """
    try:
        p, q = _as_arrays(personal, None), _as_arrays(neutral, None)
    except ValueError:  # pictures of several sizes: resampled to one
        p, q = _as_arrays(personal, size), _as_arrays(neutral, size)
    if p.shape[1:] != q.shape[1:]:
        p, q = _as_arrays(p, size), _as_arrays(q, size)
    p, q = p.astype(np.float32) / 255.0, q.astype(np.float32) / 255.0
    if p.shape != q.shape:
        raise ValueError(f"personal and neutral must hold the same number of images; got {len(p)} and {len(q)}")
    if len(histories) != len(p):
        raise ValueError(f"histories has {len(histories)} entries for {len(p)} previews")
    mask = np.abs(p - q).max(-1) > changed
    ph = np.stack([_hue_histogram(x[m]) for x, m in zip(p, mask)]) if len(p) else np.zeros((0, 12), np.float32)
    qh = np.stack([_hue_histogram(x[m]) for x, m in zip(q, mask)]) if len(p) else np.zeros((0, 12), np.float32)
    hh = []
    for h in histories:
        arr = _as_arrays(h, size).astype(np.float32) / 255.0
        rows = []
        for im in arr:
            fg = np.linalg.norm(im - _border_colour(im), axis=-1) > foreground
            rows.append(_hue_histogram(im[fg]))
        hh.append(np.stack(rows) if rows else np.zeros((0, 12), np.float32))
    return ph, qh, hh


def sharpness(images: Any, *, size: int | None = None) -> np.ndarray:
    """Variance of the Laplacian of each image's luminance (0..1 scale); higher = more fine detail."""
    arr = _as_arrays(images, size).astype(np.float64) / 255.0
    gray = arr @ np.array([0.299, 0.587, 0.114])
    lap = (-4 * gray[:, 1:-1, 1:-1] + gray[:, :-2, 1:-1] + gray[:, 2:, 1:-1] + gray[:, 1:-1, :-2]
           + gray[:, 1:-1, 2:])
    return lap.reshape(len(arr), -1).var(1)


def sharpness_ratio(previews: Any, reals: Any) -> float:
    """Median Laplacian variance of ``previews`` over that of ``reals`` resized to the previews' size.

    1.0 = as sharp as the photos; a blurred preview scores well below 1.
    """
    p = _as_arrays(previews, None)
    size = p.shape[1]
    return float(np.median(sharpness(p)) / max(np.median(sharpness(reals, size=size)), 1e-12))


def light_backdrops(images: Any, *, seed: int = 0, strength: tuple[float, float] = (0.1, 0.6),
                    foreground: float = 24 / 255) -> np.ndarray:
    """The pictures (all of one size) with their plain background replaced by a random light backdrop,
    uint8 (n, H, W, 3).

    The background is every pixel within ``foreground`` of the picture's border colour (the
    median of its edge pixels); the rest (the product, its outline and shadow) is kept. Each
    backdrop is a random colour ``strength`` (drawn from that range) of the way from white,
    flat or a two-colour gradient (top to bottom or left to right): what a page, or a
    personalized preview, may put behind a product. A judge of the product must read it the
    same on any of them.
    """
    x = _as_arrays(images, None).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty_like(x)
    for j, im in enumerate(x):
        h, w = im.shape[:2]
        keep = np.abs(im - _border_colour(im)).max(-1) > foreground * 255
        k = rng.uniform(*strength)
        first, second = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = np.zeros((h, w, 1), np.float32)
        if rng.random() < 0.5:  # a gradient
            t = np.broadcast_to(np.linspace(0, 1, h)[:, None, None], (h, w, 1)) if rng.random() < 0.5 \
                else np.broadcast_to(np.linspace(0, 1, w)[None, :, None], (h, w, 1))
        backdrop = 255.0 - k * (255.0 - ((1 - t) * first + t * second))
        out[j] = np.where(keep[..., None], im, backdrop)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def visible_difference(a: Any, b: Any, *, size: int = 64) -> np.ndarray:
    """Mean absolute pixel difference (0..1) of paired images; above ~0.03 a person sees it at a glance."""
    x = _as_arrays(a, size).astype(np.float32) / 255.0
    y = _as_arrays(b, size).astype(np.float32) / 255.0
    if x.shape != y.shape:
        raise ValueError(f"a and b must hold the same number of images; got {len(x)} and {len(y)}")
    return np.abs(x - y).reshape(len(x), -1).mean(1)


@dataclass
class AttributeJudge:
    """Reads categorical attributes back from images; trained only on real photos.

    Parameters
    ----------
    attributes : sequence of str
        Attribute keys to judge (e.g. ``("category", "colour", "pattern")``).
    size : int
        Images are described at this size (:func:`independent_features`).
    reframed : int
        Extra copies of each photo, each shrunk (to 60-100 % of its side) and moved on a canvas
        of its border colour: a product is the same product wherever a page puts it, so the
        judge must read it at any framing. 0 keeps only the photos and their mirrors.
    distractors : int
        Extra copies of each photo with another, smaller real photo (20-35 % of the side)
        pasted in a random corner, labelled with the main photo's values: a judge of the *main*
        product on a page that shows something else beside it. 0 (the default) is the strict
        judge, which has only ever seen one product per picture.
    backdrops : int
        Extra copies of each photo, each taken from one of the copies above (the photo, its
        mirror, a reframed copy or one with a second photo) and put on a random light backdrop
        (:func:`light_backdrops`): a judge of the product on a page whose background is not the
        photo's. 0 (the default): the judge has only seen the photos' own backgrounds, and reads
        a tinted backdrop as part of the product (on the sample shop its pattern accuracy on real
        photos on light backdrops falls well below its accuracy on the photos;
        ``benchmarks/RESULTS.md``).
    texture : bool, default True
        Also read :func:`texture_features` (local binary patterns at radii 1 and 2) beside
        :func:`independent_features`. Chosen on real photos only (``benchmarks/bench_judges.py``,
        no generator involved): on the sample shop it reads the pattern of photos it was not
        trained on, plain, on light backdrops and with a second photo in a corner, far more
        often than the colour-layout / HSV / HOG descriptors alone. False is the judge before.
    seed : int

    Attributes
    ----------
    classes_ : dict of str to list of str
    cv_accuracy_ : dict of str to float
        5-fold cross-validated accuracy on the real photos: how far the judge itself can be
        trusted (a judge near chance on real photos says nothing about previews).
    """

    attributes: Sequence[str]
    size: int = 64
    reframed: int = 2
    distractors: int = 0
    backdrops: int = 0
    texture: bool = True
    seed: int = 0
    classes_: dict[str, list[str]] = field(default_factory=dict)
    cv_accuracy_: dict[str, float] = field(default_factory=dict)

    @classmethod
    def for_pages(cls, attributes: Sequence[str], **kwargs: Any) -> "AttributeJudge":
        """The page judge: also trained on copies of the photos as a page or a personal preview shows
        them (``distractors=2``: beside a second photo; ``backdrops=2``: on light backdrops). The
        benchmarks and the demo report it beside the strict judge (``AttributeJudge(attributes)``)."""
        return cls(attributes, **{"distractors": 2, "backdrops": 2, **kwargs})

    def _features(self, images: Any) -> np.ndarray:
        x = _as_arrays(images, self.size)
        base = independent_features(x, size=self.size)
        if not self.texture:
            return base
        # (each classifier standardizes every column, so how the blocks are scaled here does not matter)
        return np.concatenate([base, texture_features(x, size=self.size)], 1)

    def fit(self, images: Any, labels: dict[str, Sequence[str]]) -> "AttributeJudge":
        """Train one classifier per attribute on real photos and their attribute values."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_score
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        real = _as_arrays(images, self.size)
        n_real = len(real)
        x = self._augment(real)
        feats = self._features(x)
        self._models = {}
        for attr in self.attributes:
            y = np.asarray([str(v) for v in labels[attr]], dtype=object)
            if len(y) != n_real:
                raise ValueError(f"labels[{attr!r}] has {len(y)} values for {n_real} images")
            yy = np.concatenate([y] * (len(feats) // n_real))
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))
            folds = min(5, int(min(np.unique(y, return_counts=True)[1])))
            if folds >= 2:  # on the real photos only: the flipped copies would leak across folds
                self.cv_accuracy_[attr] = float(cross_val_score(
                    make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000)),
                    feats[:n_real], y, cv=folds).mean())
            self._models[attr] = model.fit(feats, yy)
            self.classes_[attr] = sorted(set(y))
        return self

    def _augment(self, x: np.ndarray) -> np.ndarray:
        """The photos, their mirror images, ``reframed`` shrunk-and-moved copies, ``distractors`` copies with a
        second photo and ``backdrops`` copies on light backdrops (none changes an attribute); block ``b``
        holds photo ``j`` at row ``b * n + j``."""
        from PIL import Image

        rng = np.random.default_rng(self.seed)
        out = [x, x[:, :, ::-1]]
        s = x.shape[1]
        for _ in range(self.reframed):
            copies = np.empty_like(x)
            for j, im in enumerate(x):
                side = max(8, int(round(s * rng.uniform(0.6, 1.0))))
                canvas = np.empty_like(im)
                canvas[:] = _border_colour(im).astype(np.uint8)
                y0, x0 = rng.integers(0, s - side + 1, size=2)
                canvas[y0:y0 + side, x0:x0 + side] = np.asarray(Image.fromarray(im).resize((side, side), Image.BILINEAR))
                copies[j] = canvas
            out.append(copies)
        for _ in range(self.distractors):
            copies = x.copy()
            for j in range(len(x)):
                other = x[(j + 1 + rng.integers(0, len(x) - 1)) % len(x)] if len(x) > 1 else x[j]
                side = max(4, int(round(s * rng.uniform(0.2, 0.35))))
                y0 = 0 if rng.random() < 0.5 else s - side
                x0 = 0 if rng.random() < 0.5 else s - side
                copies[j, y0:y0 + side, x0:x0 + side] = np.asarray(Image.fromarray(other).resize((side, side),
                                                                                               Image.BILINEAR))
            out.append(copies)
        if self.backdrops:  # each photo's copy from a random block above, on a light backdrop
            n, blocks, pool = len(x), len(out), np.concatenate(out)
            for _ in range(self.backdrops):
                pick = rng.integers(0, blocks, n) * n + np.arange(n)
                out.append(light_backdrops(pool[pick], seed=int(rng.integers(2 ** 31))))
        return np.concatenate(out)

    def predict(self, images: Any) -> dict[str, np.ndarray]:
        feats = self._features(_as_arrays(images, self.size))
        return {a: self._models[a].predict(feats) for a in self.attributes}

    def accuracy(self, images: Any, labels: dict[str, Sequence[str]]) -> dict[str, float]:
        """Share of images whose attribute the judge reads as ``labels`` says, per attribute."""
        pred = self.predict(images)
        return {a: float(np.mean(pred[a] == np.asarray([str(v) for v in labels[a]], dtype=object)))
                for a in self.attributes}
