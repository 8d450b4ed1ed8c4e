"""The generators' contract: the two protocols, their output dataclasses, PNG helpers.

A generator is one of two kinds, looked up by name in :mod:`recgen.generators.registry`:

* :class:`PreviewGenerator` (``kind = "preview"``) returns :class:`PreviewOutput`;
* :class:`BlurbGenerator` (``kind = "blurb"``) returns :class:`BlurbOutput`.

Both train on, and condition on, a :class:`~recgen.generators.context.GenerationContext`
(the fitted model, plus the catalog for ``fit``). Rules every implementation keeps (the
shared test ``tests/test_generator_contract.py`` checks them for every registered name):

* ``__init__(config=None)`` stores a copy of the config dataclass; ``fit`` returns ``self``;
  ``generate``, ``save`` before ``fit`` raise :class:`~recgen.errors.NotFittedError`.
* ``generate(context, item_ids, user_ids, *, seed=0)``: one output row per pair, in order;
  a ``None`` (or unknown) user is the neutral user; an item the model does not know raises
  :class:`~recgen.errors.UnknownIdError` naming it; the same seed gives the same output, and a
  row's output never depends on the other rows of the call (services and caches rely on it).
* ``save(directory)`` writes an atomic, checksummed, pickle-free directory and does not
  change the generator; ``load(directory, *, verify=True, device=None)`` reads it back (the
  keywords of every recgen loader), raising :class:`~recgen.errors.ArtifactError` on a
  tampered or incomplete directory.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from recgen.generators.context import GenerationContext


@dataclass
class PreviewOutput:
    """Generated preview images.

    Attributes
    ----------
    images : ndarray of uint8, shape (n, H, W, 3)
        RGB previews, one per requested (user, item) pair, in request order.
    user_ids, item_ids : list of str
        The pairs, in the same order (``""`` for the neutral user).
    anchors : list of (str or None)
        For generators that show an item of the user's history beside the product (``studio``):
        that item's id per row, None where none is shown; empty for the others.
    generated : list of bool
        Whether each preview was made without the item's own photo (it must then be shown
        marked as generated); empty for generators where every preview is generated.
    """

    images: np.ndarray
    user_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    anchors: list[str | None] = field(default_factory=list)
    generated: list[bool] = field(default_factory=list)


@dataclass
class BlurbOutput:
    """Generated blurbs ("why you may like it").

    Attributes
    ----------
    texts : list of str
        One blurb per requested pair.
    sources : list of list of str
        For each blurb, where each of its clauses comes from (e.g. ``"description"``,
        ``"review:<review_id>"``, ``"history:<item_id>:<attribute>"``); empty lists for
        generators that do not track provenance.
    user_ids, item_ids : list of str
    anchors : list of (str or None)
        For each blurb, the user's history item it names ("You picked ..."), or ``None``;
        empty for generators that never name one.
    """

    texts: list[str]
    sources: list[list[str]] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    anchors: list[str | None] = field(default_factory=list)


@runtime_checkable
class PreviewGenerator(Protocol):
    """Makes preview images for (item, user) pairs (``kind = "preview"``)."""

    kind: ClassVar[str]
    config: Any

    def fit(self, context: "GenerationContext", *, progress: bool = False) -> "PreviewGenerator":
        """Train on ``context.catalog`` with ``context.model``'s vectors; returns self."""
        ...

    def generate(self, context: "GenerationContext", item_ids: Sequence[str], user_ids: Sequence[str | None], *,
                 seed: int = 0) -> PreviewOutput:
        """One preview per (item, user) pair: ``images`` uint8 (n, H, W, 3)."""
        ...

    def save(self, directory: str | Path) -> Path:
        """Save atomically to ``directory``; returns it."""
        ...

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True, device: str | None = None) -> "PreviewGenerator":
        """Load what :meth:`save` wrote (checksums checked when ``verify``; onto ``device``)."""
        ...


@runtime_checkable
class BlurbGenerator(Protocol):
    """Writes blurbs ("why you may like it") for (item, user) pairs (``kind = "blurb"``)."""

    kind: ClassVar[str]
    config: Any

    def fit(self, context: "GenerationContext", *, progress: bool = False) -> "BlurbGenerator":
        """Train on ``context.catalog`` with ``context.model``'s vectors; returns self."""
        ...

    def generate(self, context: "GenerationContext", item_ids: Sequence[str], user_ids: Sequence[str | None], *,
                 seed: int = 0) -> BlurbOutput:
        """One non-empty blurb per (item, user) pair."""
        ...

    def save(self, directory: str | Path) -> Path:
        """Save atomically to ``directory``; returns it."""
        ...

    @classmethod
    def load(cls, directory: str | Path, *, verify: bool = True, device: str | None = None) -> "BlurbGenerator":
        """Load what :meth:`save` wrote (checksums checked when ``verify``; onto ``device``)."""
        ...


#: the protocol of each generator kind (``cls.kind``). ``isinstance`` against a runtime-checkable
#: protocol checks that the members exist; the two kinds have the same members, so ``kind`` is
#: what tells a preview generator from a blurb generator.
PROTOCOLS: dict[str, type] = {"preview": PreviewGenerator, "blurb": BlurbGenerator}


def png_bytes(image: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """Encode one uint8 (H, W, 3) RGB image as PNG bytes, with optional ``tEXt`` chunks (``text``)."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    buf = io.BytesIO()
    info = None
    if text:
        info = PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
    Image.fromarray(image).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def png_text(data: bytes) -> dict[str, str]:
    """The ``tEXt`` chunks of PNG bytes written by :func:`png_bytes` (no pixel is decoded)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return dict(getattr(im, "text", {}) or {})


def png_array(data: bytes) -> np.ndarray:
    """Decode PNG bytes written by :func:`png_bytes` into a uint8 (H, W, 3) RGB array."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


_ARTICLE_LAST = re.compile(r"^(?P<name>.+?),\s*(?P<article>The|A|An|Les|La|Le|L'|Il|Der|Die|Das|El)$", re.IGNORECASE)
_YEAR_LAST = re.compile(r"^(?P<name>.*?)\s*\((?P<year>\d{4})\)\s*$")


def title_parts(title: str) -> tuple[str, str]:
    """A catalog title as a cover shows it: ``(name, year)``.

    A trailing ``(1995)`` becomes the year and a library-style trailing article moves to the
    front: ``"Usual Suspects, The (1995)"`` -> ``("The Usual Suspects", "1995")``.
    """
    title = " ".join(str(title or "").split())
    m = _YEAR_LAST.match(title)
    name, year = (m["name"], m["year"]) if m and m["name"] else (title, "")
    m = _ARTICLE_LAST.match(name)
    if m:
        name = f"{m['article']}{'' if m['article'].endswith(chr(39)) else ' '}{m['name']}"
    return name, year
