"""The bundled sample catalog: a small synthetic shop made deterministically from a seed.

Every item is a unique (category, colour, pattern) combination with a procedurally drawn
product image, a title, a two-sentence description and a material. Users have known latent
tastes (preferred categories, colours and a pattern); their interactions and reviews are
sampled from those tastes, so tests and the demo can check personalization against ground
truth. Reviews only ever mention the reviewed item's own attributes.

All randomness comes from ``numpy.random.default_rng`` streams derived from the seed: the
same arguments give equal frames and byte-identical PNG files.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

from recgen._io import atomic_write_bytes, atomic_write_json
from recgen.catalog.data import INTERACTION_COLUMNS, ITEM_COLUMNS, REVIEW_COLUMNS, CatalogData

__all__ = [
    "CATEGORIES",
    "COLOURS",
    "PATTERNS",
    "MATERIALS",
    "MATERIALS_BY_CATEGORY",
    "COLOUR_RGB",
    "draw_item_image",
    "make_sample_catalog",
]

# Bump when drawing or generation changes, so cached sample directories are rebuilt.
GENERATOR_VERSION = 1
STAMP_FILE = "sample.json"
COLD_START_FILE = "cold_start_items.txt"
CSV_FILES = ("items.csv", "reviews.csv", "interactions.csv", "users.csv")

CATEGORIES: tuple[str, ...] = ("t-shirt", "mug", "backpack", "lamp", "sneaker", "hat", "vase", "umbrella")
COLOURS: tuple[str, ...] = (
    "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink", "brown", "black",
)
PATTERNS: tuple[str, ...] = ("solid", "striped", "polka-dot", "checkered", "zigzag")

COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (214, 40, 40),
    "orange": (247, 127, 0),
    "yellow": (250, 204, 21),
    "green": (46, 160, 67),
    "teal": (0, 128, 128),
    "blue": (37, 85, 214),
    "purple": (128, 50, 168),
    "pink": (240, 110, 170),
    "brown": (123, 74, 36),
    "black": (28, 28, 28),
}

MATERIALS_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "t-shirt": ("cotton", "wool"),
    "mug": ("ceramic", "glass", "metal"),
    "backpack": ("canvas", "leather"),
    "lamp": ("metal", "glass", "ceramic"),
    "sneaker": ("leather", "canvas"),
    "hat": ("wool", "cotton", "canvas"),
    "vase": ("ceramic", "glass"),
    "umbrella": ("nylon", "plastic"),
}
MATERIALS: tuple[str, ...] = tuple(sorted({m for ms in MATERIALS_BY_CATEGORY.values() for m in ms}))

# Made-up product-line names; none is a colour, material, pattern or category word.
PRODUCT_NAMES: tuple[str, ...] = (
    "Nordic", "Breeze", "Aurora", "Harbor", "Juniper", "Meadow", "Summit", "Willow", "Atlas",
    "Cascade", "Pioneer", "Solstice", "Tundra", "Lumen", "Orbit", "Haven", "Drift", "Kestrel",
    "Marlow", "Fjord", "Sierra", "Canyon", "Zephyr", "Alder", "Beacon", "Cove", "Dune", "Everly",
)

# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------

_SUPERSAMPLE = 2  # draw at 2x and downsample: antialiased edges without per-primitive AA
_OUTLINE = (55, 55, 55)
_SECONDARY = (250, 250, 248)


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(max(0, min(255, round(c * factor)))) for c in rgb)  # type: ignore[return-value]


@dataclass
class _Pen:
    """Maps unit coordinates (0..1, y down) of a shape onto the canvas, with jitter."""

    size: int
    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    def p(self, x: float, y: float) -> tuple[float, float]:
        s = self.size
        return ((0.5 + (x - 0.5) * self.scale + self.dx) * s, (0.5 + (y - 0.5) * self.scale + self.dy) * s)

    def pts(self, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [self.p(x, y) for x, y in points]

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        a, b = self.p(x0, y0), self.p(x1, y1)
        return [a[0], a[1], b[0], b[1]]

    def w(self, v: float) -> int:
        return max(1, int(round(v * self.size * self.scale)))


# Each shape draws onto three masks: ``main`` (filled with the item's colour and pattern),
# ``accent`` (a solid part: handle, sole, stem; its colour comes from _ACCENT) and ``detail``
# (dark lines and small areas drawn on top: seams, laces, the inside of a mug).
_Shape = Callable[[_Pen, ImageDraw.ImageDraw, ImageDraw.ImageDraw, ImageDraw.ImageDraw], None]


def _tshirt(pen: _Pen, main, accent, detail) -> None:
    main.polygon(pen.pts([
        (0.36, 0.14), (0.44, 0.14), (0.47, 0.19), (0.50, 0.205), (0.53, 0.19), (0.56, 0.14),
        (0.64, 0.14), (0.89, 0.31), (0.80, 0.45), (0.70, 0.38), (0.70, 0.88), (0.30, 0.88),
        (0.30, 0.38), (0.20, 0.45), (0.11, 0.31),
    ]), fill=255)
    lw = pen.w(0.018)
    detail.line(pen.pts([(0.43, 0.14), (0.47, 0.205), (0.50, 0.225), (0.53, 0.205), (0.57, 0.14)]), fill=255, width=lw)
    detail.line(pen.pts([(0.30, 0.38), (0.33, 0.19)]), fill=255, width=max(1, lw // 2))
    detail.line(pen.pts([(0.70, 0.38), (0.67, 0.19)]), fill=255, width=max(1, lw // 2))


def _mug(pen: _Pen, main, accent, detail) -> None:
    accent.ellipse(pen.box(0.52, 0.34, 0.86, 0.76), fill=255)
    accent.ellipse(pen.box(0.61, 0.44, 0.78, 0.66), fill=0)
    main.rounded_rectangle(pen.box(0.18, 0.24, 0.64, 0.86), radius=pen.w(0.07), fill=255)
    main.ellipse(pen.box(0.18, 0.18, 0.64, 0.30), fill=255)
    detail.ellipse(pen.box(0.21, 0.195, 0.61, 0.285), fill=255)


def _backpack(pen: _Pen, main, accent, detail) -> None:
    accent.ellipse(pen.box(0.38, 0.08, 0.62, 0.32), fill=255)
    accent.ellipse(pen.box(0.43, 0.13, 0.57, 0.27), fill=0)
    accent.rounded_rectangle(pen.box(0.17, 0.32, 0.27, 0.82), radius=pen.w(0.04), fill=255)
    accent.rounded_rectangle(pen.box(0.73, 0.32, 0.83, 0.82), radius=pen.w(0.04), fill=255)
    main.rounded_rectangle(pen.box(0.24, 0.20, 0.76, 0.90), radius=pen.w(0.15), fill=255)
    lw = pen.w(0.016)
    detail.rounded_rectangle(pen.box(0.32, 0.56, 0.68, 0.84), radius=pen.w(0.06), outline=255, width=lw)
    detail.arc(pen.box(0.28, 0.28, 0.72, 0.62), start=195, end=345, fill=255, width=lw)
    detail.rectangle(pen.box(0.47, 0.53, 0.53, 0.61), fill=255)


def _lamp(pen: _Pen, main, accent, detail) -> None:
    accent.rectangle(pen.box(0.47, 0.44, 0.53, 0.82), fill=255)
    accent.rounded_rectangle(pen.box(0.28, 0.80, 0.72, 0.89), radius=pen.w(0.03), fill=255)
    main.polygon(pen.pts([(0.35, 0.12), (0.65, 0.12), (0.81, 0.47), (0.19, 0.47)]), fill=255)
    detail.line(pen.pts([(0.63, 0.47), (0.63, 0.60)]), fill=255, width=pen.w(0.01))
    detail.ellipse(pen.box(0.615, 0.59, 0.645, 0.62), fill=255)


def _sneaker(pen: _Pen, main, accent, detail) -> None:
    main.polygon(pen.pts([
        (0.10, 0.70), (0.09, 0.46), (0.12, 0.38), (0.22, 0.42), (0.34, 0.44), (0.40, 0.32),
        (0.47, 0.26), (0.54, 0.28), (0.56, 0.36), (0.68, 0.44), (0.82, 0.50), (0.90, 0.55),
        (0.93, 0.62), (0.93, 0.70),
    ]), fill=255)
    accent.rounded_rectangle(pen.box(0.07, 0.67, 0.96, 0.79), radius=pen.w(0.05), fill=255)
    lw = pen.w(0.014)
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = 0.47 + 0.20 * t, 0.34 + 0.10 * t
        detail.line(pen.pts([(x - 0.035, y + 0.045), (x + 0.035, y - 0.045)]), fill=255, width=lw)
    detail.line(pen.pts([(0.12, 0.40), (0.22, 0.45), (0.34, 0.47)]), fill=255, width=lw)
    detail.line(pen.pts([(0.07, 0.725), (0.96, 0.725)]), fill=255, width=max(1, lw // 2))


def _hat(pen: _Pen, main, accent, detail) -> None:
    main.ellipse(pen.box(0.06, 0.54, 0.94, 0.76), fill=255)
    main.polygon(pen.pts([
        (0.29, 0.64), (0.31, 0.36), (0.35, 0.26), (0.42, 0.22), (0.50, 0.27), (0.58, 0.22),
        (0.65, 0.26), (0.69, 0.36), (0.71, 0.64),
    ]), fill=255)
    detail.polygon(pen.pts([(0.302, 0.50), (0.698, 0.50), (0.705, 0.60), (0.295, 0.60)]), fill=255)
    detail.arc(pen.box(0.29, 0.52, 0.71, 0.68), start=0, end=180, fill=255, width=pen.w(0.012))


def _vase_outline() -> list[tuple[float, float]]:
    # (y, half width) control points of the profile, smoothed with cosine interpolation.
    ctrl = [(0.10, 0.13), (0.14, 0.10), (0.28, 0.075), (0.42, 0.19), (0.58, 0.25), (0.76, 0.19),
            (0.86, 0.11), (0.90, 0.14)]
    ys, hs = [], []
    for (y0, h0), (y1, h1) in zip(ctrl[:-1], ctrl[1:]):
        for t in np.linspace(0, 1, 12, endpoint=False):
            u = (1 - np.cos(np.pi * t)) / 2
            ys.append(y0 + (y1 - y0) * t)
            hs.append(h0 + (h1 - h0) * u)
    ys.append(ctrl[-1][0])
    hs.append(ctrl[-1][1])
    right = [(0.5 + h, y) for y, h in zip(ys, hs)]
    left = [(0.5 - h, y) for y, h in zip(reversed(ys), reversed(hs))]
    return right + left


_VASE = _vase_outline()


def _vase(pen: _Pen, main, accent, detail) -> None:
    main.polygon(pen.pts(_VASE), fill=255)
    main.ellipse(pen.box(0.37, 0.08, 0.63, 0.13), fill=255)
    detail.ellipse(pen.box(0.40, 0.09, 0.60, 0.12), fill=255)


def _umbrella(pen: _Pen, main, accent, detail) -> None:
    accent.rectangle(pen.box(0.488, 0.06, 0.512, 0.16), fill=255)
    accent.rectangle(pen.box(0.488, 0.50, 0.512, 0.84), fill=255)
    accent.arc(pen.box(0.39, 0.76, 0.51, 0.92), start=0, end=180, fill=255, width=pen.w(0.024))
    main.pieslice(pen.box(0.06, 0.14, 0.94, 1.02), start=180, end=360, fill=255)
    n = 4
    width = 0.88 / n
    for i in range(n):
        x0 = 0.06 + i * width
        main.ellipse(pen.box(x0, 0.535, x0 + width, 0.625), fill=0)
    lw = pen.w(0.012)
    for i in range(1, n):
        x = 0.06 + i * width
        detail.line(pen.pts([(0.5, 0.15), ((0.5 + x) / 2 + (x - 0.5) * 0.25, 0.34), (x, 0.55)]), fill=255, width=lw)


_SHAPES: dict[str, _Shape] = {
    "t-shirt": _tshirt,
    "mug": _mug,
    "backpack": _backpack,
    "lamp": _lamp,
    "sneaker": _sneaker,
    "hat": _hat,
    "vase": _vase,
    "umbrella": _umbrella,
}


def _accent_colour(category: str, rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    if category == "mug":
        return rgb
    if category == "backpack":
        return _shade(rgb, 0.7) if rgb != COLOUR_RGB["black"] else (70, 70, 70)
    if category == "sneaker":
        return (238, 238, 236)
    return (92, 92, 96)  # lamp stem and base, umbrella shaft and handle


def _pattern_fill(pattern: str, size: int, rgb: tuple[int, int, int], second: tuple[int, int, int],
                  phase: tuple[float, float]) -> Image.Image:
    img = Image.new("RGB", (size, size), rgb)
    if pattern == "solid":
        return img
    d = ImageDraw.Draw(img)
    ox, oy = phase[0] * size, phase[1] * size
    if pattern == "striped":
        period = 0.11 * size
        y = -period + oy % period
        while y < size:
            d.rectangle([0, y, size, y + 0.45 * period], fill=second)
            y += period
    elif pattern == "polka-dot":
        step, r = 0.11 * size, 0.028 * size
        row = 0
        y = -step + oy % step
        while y < size + step:
            x = -step + ox % step + (step / 2 if row % 2 else 0)
            while x < size + step:
                d.ellipse([x - r, y - r, x + r, y + r], fill=second)
                x += step
            y += step
            row += 1
    elif pattern == "checkered":
        cell = 0.09 * size
        x0, y0 = -2 * cell + ox % (2 * cell), -2 * cell + oy % (2 * cell)
        i = 0
        y = y0
        while y < size:
            j = 0
            x = x0
            while x < size:
                if (i + j) % 2 == 0:
                    d.rectangle([x, y, x + cell, y + cell], fill=second)
                x += cell
                j += 1
            y += cell
            i += 1
    elif pattern == "zigzag":
        period, amp, wave = 0.14 * size, 0.035 * size, 0.10 * size
        width = max(1, int(round(0.035 * size)))
        y = -period + oy % period
        while y < size + period:
            pts, x, k = [], -wave + ox % wave, 0
            while x < size + wave:
                pts.append((x, y + (amp if k % 2 else -amp)))
                x += wave / 2
                k += 1
            d.line(pts, fill=second, width=width, joint="curve")
            y += period
    else:  # pragma: no cover - guarded by draw_item_image
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    return img


def _check_choice(name: str, value: object, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")


def draw_item_image(category: str, colour: str, pattern: str, *, size: int = 96,
                    rng: np.random.Generator | int | None = None) -> Image.Image:
    """Draw one product image: the category's silhouette filled with colour and pattern.

    Parameters
    ----------
    category : str
        One of :data:`CATEGORIES`; decides the silhouette (a t-shirt, a mug, ...).
    colour : str
        One of :data:`COLOURS`; the item's main colour.
    pattern : str
        One of :data:`PATTERNS`; drawn inside the silhouette in the main colour and an
        off-white secondary colour.
    size : int
        Width and height in pixels (at least 16).
    rng : numpy.random.Generator, int or None
        Source of small jitter (position, scale, rotation by a few degrees, background tint,
        pattern phase). ``None`` draws the canonical, centred image without jitter.

    Returns
    -------
    PIL.Image.Image
        RGB image of shape ``(size, size)`` on a near-white background.
    """
    _check_choice("category", category, CATEGORIES)
    _check_choice("colour", colour, COLOURS)
    _check_choice("pattern", pattern, PATTERNS)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    size = int(size)
    if rng is not None and not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)

    if rng is None:
        scale, dx, dy, angle = 0.92, 0.0, 0.0, 0.0
        bg = (248, 248, 246)
        phase = (0.0, 0.0)
    else:
        scale = float(rng.uniform(0.84, 0.96))
        dx, dy = (float(v) for v in rng.uniform(-0.035, 0.035, size=2))
        angle = float(rng.uniform(-6.0, 6.0))
        # a lighter or darker off-white with only a faint colour cast
        bg = tuple(int(v) for v in np.clip(rng.integers(240, 253) + rng.integers(-3, 4, size=3), 230, 255))
        phase = (float(rng.uniform()), float(rng.uniform()))

    big = size * _SUPERSAMPLE
    pen = _Pen(big, scale, dx, dy)
    masks = {k: Image.new("L", (big, big), 0) for k in ("main", "accent", "detail")}
    _SHAPES[category](pen, *(ImageDraw.Draw(masks[k]) for k in ("main", "accent", "detail")))

    rgb = COLOUR_RGB[colour]
    body = Image.new("L", (big, big), 0)
    body.paste(255, mask=masks["main"])
    body.paste(255, mask=masks["accent"])
    # Dilate the silhouette for the outline: box blur + threshold is O(pixels) for any radius.
    radius = max(1, int(round(0.012 * big)))
    outline = body.filter(ImageFilter.BoxBlur(radius)).point(lambda v: 255 if v > 8 else 0)

    layer = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    layer.paste(_OUTLINE + (255,), mask=outline)
    layer.paste(_accent_colour(category, rgb) + (255,), mask=masks["accent"])
    layer.paste(_pattern_fill(pattern, big, rgb, _SECONDARY, phase), mask=masks["main"])
    detail_rgb = (150, 150, 150) if colour == "black" else (45, 45, 45)
    layer.paste(detail_rgb + (255,), mask=masks["detail"])
    if angle:
        layer = layer.rotate(angle, resample=Image.Resampling.BILINEAR, center=(big / 2, big / 2))

    canvas = Image.new("RGBA", (big, big), bg + (255,))
    shadow = Image.new("L", (big, big), 0)
    ImageDraw.Draw(shadow).ellipse(pen.box(0.2, 0.88, 0.8, 0.95), fill=40)
    canvas.paste((0, 0, 0, 255), mask=shadow)
    canvas.alpha_composite(layer)
    return canvas.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)


# ---------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------

_PATTERN_ADJ = {"solid": "solid", "striped": "striped", "polka-dot": "polka-dot", "checkered": "checkered",
                "zigzag": "zigzag"}
_PATTERN_DESC = {"solid": "solid finish", "striped": "striped pattern", "polka-dot": "polka-dot pattern",
                 "checkered": "checkered pattern", "zigzag": "zigzag pattern"}
# What a reviewer calls the pattern ("the teal stripes").
_PATTERN_NOUN = {"solid": "solid finish", "striped": "stripes", "polka-dot": "polka dots",
                 "checkered": "checkered pattern", "zigzag": "zigzag pattern"}
_USE = {
    "t-shirt": "comfortable for everyday wear",
    "mug": "just right for morning coffee or tea",
    "backpack": "roomy enough for a laptop and books",
    "lamp": "casts a warm glow on a desk or bedside table",
    "sneaker": "ready for long daily walks",
    "hat": "keeps the sun off your face",
    "vase": "holds a generous bunch of fresh flowers",
    "umbrella": "keeps you dry on rainy days",
}
_DEFECT = {
    "cotton": "shrank", "wool": "pilled", "ceramic": "chipped", "glass": "cracked", "metal": "dented",
    "leather": "scuffed", "canvas": "frayed", "plastic": "cracked", "nylon": "tore",
}

_DESC_FIRST = (
    "The {Name} {category} comes in {colour} with a {pattern_desc}.",
    "Meet the {Name}: {a_colour} {category} with a {pattern_desc}.",
    "{A_colour} {adj} {category} from the {Name} line.",
)
_DESC_SECOND = (
    "It is made of {material} and {use}.",
    "Made from {material}, it {use_s}.",
    "The {material} build is sturdy, and it {use_s}.",
)
_REVIEW_POSITIVE = (
    "Love the {colour} {pattern_noun}, the {material} feels sturdy.",
    "Great {category}! The {colour} is exactly as pictured and the {material} is good quality.",
    "Really happy with this {category}. Great {pattern_noun} in {colour}.",
    "The {material} is well made and I like the {colour} {pattern_noun}. Would buy this {category} again.",
)
_REVIEW_NEUTRAL = (
    "The {colour} {category} is fine, though the {material} is a bit thinner than I expected.",
    "Decent {category}. I like the {pattern_noun}, but the {colour} is duller than in the photo.",
    "It is an okay {category}; the {material} does the job and the {colour} is as described.",
)
_REVIEW_NEGATIVE = (
    "The {category}'s {material} {defect} quickly, disappointed.",
    "Not what I hoped for: the {colour} faded and the {pattern_noun} came out blotchy.",
    "Returned it. The {material} feels flimsy for a {category}.",
)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _use_s(use: str) -> str:
    # "keeps you dry" is already a verb phrase; "ready for ..." needs "is".
    return use if use.split()[0] in ("casts", "keeps", "holds") else f"is {use}"


def _fields(category: str, colour: str, pattern: str, material: str, name: str) -> dict[str, str]:
    use = _USE[category]
    a_colour = f"{_article(colour)} {colour}"
    return {
        "Name": name, "category": category, "colour": colour, "adj": _PATTERN_ADJ[pattern],
        "pattern_desc": _PATTERN_DESC[pattern], "pattern_noun": _PATTERN_NOUN[pattern],
        "material": material, "use": use, "use_s": _use_s(use), "a_colour": a_colour,
        "A_colour": a_colour[0].upper() + a_colour[1:], "defect": _DEFECT[material],
    }


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------

# Temperature of the softmax over affinities: ~75% of a user's interactions match a preferred
# category or colour (40% would by chance), the rest are exploratory.
TEMPERATURE = 1.25
AFFINITY_WEIGHTS = {"category": 2.0, "colour": 1.5, "pattern": 0.5}
COLD_START_FRACTION = 0.10
REVIEW_FRACTION = 0.40
START_TIME = 1_700_000_000


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


@dataclass
class _Generated:
    items: pd.DataFrame  # image_path still relative ("images/SKU-0001.png")
    reviews: pd.DataFrame
    interactions: pd.DataFrame
    users: pd.DataFrame
    cold_start: list[str]
    specs: list[tuple[str, str, str]]  # (category, colour, pattern) per item
    image_seeds: list[np.random.SeedSequence]


def _generate(n_items: int, n_users: int, seed: int) -> _Generated:
    ss_items, ss_users, ss_inter, ss_reviews, ss_images = np.random.SeedSequence(seed).spawn(5)
    rng = np.random.default_rng(ss_items)
    n_cat, n_col, n_pat = len(CATEGORIES), len(COLOURS), len(PATTERNS)
    codes = rng.choice(n_cat * n_col * n_pat, size=n_items, replace=False)
    cat_idx, rest = np.divmod(codes, n_col * n_pat)
    col_idx, pat_idx = np.divmod(rest, n_pat)

    ids = [f"SKU-{i + 1:04d}" for i in range(n_items)]
    rows, specs, materials, names = [], [], [], []
    for i in range(n_items):
        category, colour, pattern = CATEGORIES[cat_idx[i]], COLOURS[col_idx[i]], PATTERNS[pat_idx[i]]
        options = MATERIALS_BY_CATEGORY[category]
        material = options[int(rng.integers(len(options)))]
        name = PRODUCT_NAMES[int(rng.integers(len(PRODUCT_NAMES)))]
        f = _fields(category, colour, pattern, material, name)
        first = _DESC_FIRST[int(rng.integers(len(_DESC_FIRST)))].format(**f)
        second = _DESC_SECOND[int(rng.integers(len(_DESC_SECOND)))].format(**f)
        rows.append({
            "item_id": ids[i],
            "title": f"{colour.capitalize()} {_PATTERN_ADJ[pattern]} {category}",
            "description": f"{first} {second}",
            "attributes": {"category": category, "colour": colour, "pattern": pattern, "material": material},
            "image_path": f"images/{ids[i]}.png",
        })
        specs.append((category, colour, pattern))
        materials.append(material)
        names.append(name)
    items = pd.DataFrame(rows, columns=list(ITEM_COLUMNS))

    n_cold = int(round(COLD_START_FRACTION * n_items))
    n_cold = min(n_cold, n_items - 1)  # keep at least one item users can interact with
    cold_pos = np.sort(rng.choice(n_items, size=n_cold, replace=False))
    cold_start = [ids[i] for i in cold_pos]
    warm = np.setdiff1d(np.arange(n_items), cold_pos)

    # Users and their latent tastes.
    urng = np.random.default_rng(ss_users)
    user_ids = [f"U{u + 1:04d}" for u in range(n_users)]
    taste_cat = [np.sort(urng.choice(n_cat, size=2, replace=False)) for _ in range(n_users)]
    taste_col = [np.sort(urng.choice(n_col, size=2, replace=False)) for _ in range(n_users)]
    taste_pat = [np.sort(urng.choice(n_pat, size=1, replace=False)) for _ in range(n_users)]
    users = pd.DataFrame({
        "user_id": user_ids,
        "taste_categories": [[CATEGORIES[c] for c in t] for t in taste_cat],
        "taste_colours": [[COLOURS[c] for c in t] for t in taste_col],
        "taste_patterns": [[PATTERNS[c] for c in t] for t in taste_pat],
    })

    # Interactions: sampled without replacement with p ∝ exp(affinity / T) (Gumbel top-k),
    # in draw order, which becomes time order.
    irng = np.random.default_rng(ss_inter)
    w = AFFINITY_WEIGHTS
    inter_u, inter_i, inter_t, inter_r, inter_e, inter_a = [], [], [], [], [], []
    for u in range(n_users):
        aff = (w["category"] * np.isin(cat_idx[warm], taste_cat[u])
               + w["colour"] * np.isin(col_idx[warm], taste_col[u])
               + w["pattern"] * np.isin(pat_idx[warm], taste_pat[u])
               + irng.normal(0.0, 0.3, size=len(warm)))
        k = min(int(irng.integers(15, 41)), len(warm))
        keys = aff / TEMPERATURE + irng.gumbel(size=len(warm))
        order = np.argsort(-keys, kind="stable")[:k]
        gaps = irng.integers(3600, 4 * 86400, size=k)
        times = START_TIME + np.cumsum(gaps)
        a = aff[order]
        ratings = np.clip(np.rint(2.4 + 0.8 * a + irng.normal(0.0, 0.7, size=k)), 1, 5)
        buy = irng.random(k) < np.clip(0.15 + 0.15 * a, 0.1, 0.7)
        inter_u += [user_ids[u]] * k
        inter_i += [int(warm[j]) for j in order]
        inter_t.append(times)
        inter_r.append(ratings)
        inter_e += ["purchase" if b else "view" for b in buy]
        inter_a.append(a)
    timestamps = np.concatenate(inter_t).astype(np.int64) if inter_t else np.zeros(0, np.int64)
    ratings = np.concatenate(inter_r).astype(np.float64) if inter_r else np.zeros(0)
    interactions = pd.DataFrame({
        "user_id": inter_u,
        "item_id": [ids[i] for i in inter_i],
        "timestamp": timestamps,
        "rating": ratings,
        "event": inter_e,
    }, columns=list(INTERACTION_COLUMNS))

    # Reviews for ~40% of interactions, written from the item's real attributes.
    rrng = np.random.default_rng(ss_reviews)
    chosen = np.flatnonzero(rrng.random(len(interactions)) < REVIEW_FRACTION)
    rev_rows = []
    for j in chosen:
        i = inter_i[j]
        category, colour, pattern = specs[i]
        rating = float(ratings[j])
        bank = _REVIEW_POSITIVE if rating >= 4 else _REVIEW_NEUTRAL if rating >= 3 else _REVIEW_NEGATIVE
        text = bank[int(rrng.integers(len(bank)))].format(**_fields(category, colour, pattern, materials[i], names[i]))
        rev_rows.append({
            "item_id": ids[i],
            "user_id": inter_u[j],
            "rating": rating,
            "text": text[0].upper() + text[1:],
            "timestamp": int(timestamps[j]) + int(rrng.integers(1, 72)) * 3600,
        })
    reviews = pd.DataFrame(rev_rows, columns=list(REVIEW_COLUMNS))
    reviews["timestamp"] = reviews["timestamp"].astype(np.int64)
    reviews["rating"] = reviews["rating"].astype(np.float64)

    image_seeds = ss_images.spawn(n_items)
    return _Generated(items, reviews, interactions, users, cold_start, specs, image_seeds)


def _png_bytes(img: Image.Image) -> bytes:
    buf = BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


_SKU_PNG = re.compile(r"^SKU-\d+\.png$")


def make_sample_catalog(directory: str | os.PathLike[str] | None = None, *, n_items: int = 240,
                        n_users: int = 120, seed: int = 0, image_size: int = 96) -> CatalogData:
    """Make (or reuse) the bundled sample shop catalog.

    Parameters
    ----------
    directory : str, os.PathLike or None
        Folder to write ``images/{item_id}.png``, ``items.csv``, ``reviews.csv``,
        ``interactions.csv``, ``users.csv``, ``cold_start_items.txt`` and the ``sample.json``
        stamp to. ``None`` uses ``recgen-sample-{seed}-{n_items}-{n_users}-{image_size}``
        under :func:`tempfile.gettempdir`. A folder whose stamp matches these arguments is
        reused without drawing again.
    n_items : int
        Number of items; each is a unique (category, colour, pattern) combination, so at
        most ``len(CATEGORIES) * len(COLOURS) * len(PATTERNS)`` (400).
    n_users : int
        Number of users with latent tastes.
    seed : int
        Seed of every random choice; equal arguments give equal frames and identical PNGs.
    image_size : int
        Width and height of the product images in pixels.

    Returns
    -------
    CatalogData
        ``name="sample"``, ``image_root=directory/"images"``, absolute ``image_path``s and
        ``users`` with columns ``user_id``, ``taste_categories``, ``taste_colours``,
        ``taste_patterns`` (lists of str). ``items.attrs["cold_start_item_ids"]`` lists the
        ~10% of items no user interacted with.

    Raises
    ------
    ValueError
        If ``n_items`` exceeds the number of unique combinations, or an argument is out of range.
    """
    n_items = _check_int("n_items", n_items, 1)
    n_users = _check_int("n_users", n_users, 1)
    seed = _check_int("seed", seed, 0)
    image_size = _check_int("image_size", image_size, 16)
    maximum = len(CATEGORIES) * len(COLOURS) * len(PATTERNS)
    if n_items > maximum:
        raise ValueError(
            f"n_items={n_items} is more than the sample catalog can make: each item is a unique "
            f"(category, colour, pattern) combination and there are at most {maximum}"
        )
    if directory is None:
        directory = Path(tempfile.gettempdir()) / f"recgen-sample-{seed}-{n_items}-{n_users}-{image_size}"
    root = Path(directory).expanduser().resolve()
    image_root = root / "images"

    gen = _generate(n_items, n_users, seed)
    ids = gen.items["item_id"].tolist()

    stamp = {"generator": "recgen.datasets.shop", "version": GENERATOR_VERSION, "n_items": n_items,
             "n_users": n_users, "seed": seed, "image_size": image_size}
    if not _is_current(root, stamp, ids):
        _write(root, gen, image_size)
        atomic_write_json(root / STAMP_FILE, stamp)  # last: its presence means the folder is complete

    items = gen.items.copy()
    items["image_path"] = [str(image_root / f"{i}.png") for i in ids]
    items.attrs["cold_start_item_ids"] = list(gen.cold_start)
    return CatalogData(items, gen.reviews, gen.interactions, name="sample", image_root=image_root,
                       users=gen.users)


def _is_current(root: Path, stamp: dict, ids: list[str]) -> bool:
    path = root / STAMP_FILE
    try:
        if json.loads(path.read_text()) != stamp:
            return False
    except (OSError, ValueError):
        return False
    needed = [root / f for f in (*CSV_FILES, COLD_START_FILE)] + [root / "images" / f"{i}.png" for i in ids]
    return all(p.is_file() for p in needed)


def _write(root: Path, gen: _Generated, image_size: int) -> None:
    image_root = root / "images"
    image_root.mkdir(parents=True, exist_ok=True)
    stale = root / STAMP_FILE
    if stale.exists():  # a half-rewritten folder must not look complete
        stale.unlink()
    ids = gen.items["item_id"].tolist()
    keep = {f"{i}.png" for i in ids}
    for old in image_root.iterdir():
        if _SKU_PNG.match(old.name) and old.name not in keep:
            old.unlink()
    for item_id, (category, colour, pattern), ss in zip(ids, gen.specs, gen.image_seeds):
        img = draw_item_image(category, colour, pattern, size=image_size, rng=np.random.default_rng(ss))
        atomic_write_bytes(image_root / f"{item_id}.png", _png_bytes(img))

    items = gen.items.copy()
    items["attributes"] = [json.dumps(a) for a in items["attributes"]]
    users = gen.users.copy()
    for col in ("taste_categories", "taste_colours", "taste_patterns"):
        users[col] = [json.dumps(v) for v in users[col]]
    atomic_write_bytes(root / "items.csv", _csv_bytes(items))
    atomic_write_bytes(root / "reviews.csv", _csv_bytes(gen.reviews))
    atomic_write_bytes(root / "interactions.csv", _csv_bytes(gen.interactions))
    atomic_write_bytes(root / "users.csv", _csv_bytes(users))
    atomic_write_bytes(root / COLD_START_FILE, "".join(f"{i}\n" for i in gen.cold_start).encode())
