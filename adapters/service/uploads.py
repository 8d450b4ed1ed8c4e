"""Image uploads of ``POST /search``: decoded within a pixel cap, at a reduced size, a few at a time.

Issue 14: a 194 KB PNG just under recgen's 50-megapixel cap cost ~570 MB per upload (the
full image, then its RGBA, composited and RGB copies), and parallel uploads multiplied it.
The encoder only needs 224 x 224 pixels, so an upload here

* is refused (422) when it would decode to more than ``max_image_pixels`` pixels, checked
  on the header before any pixel is decoded;
* is decoded at a reduced scale when the format allows it (JPEG: Pillow's ``draft`` makes
  libjpeg decode at 1/2, 1/4 or 1/8 scale), so the cap applies to what is decoded;
* is then shrunk at once (box filter, strip by strip, so that no full-size copy is made)
  to at least :data:`DECODE_SIZE` pixels a side, and the full-size image is freed before
  the encoder runs;
* waits for one of ``image_decodes`` slots (:class:`UploadSlots`), so N parallel uploads
  cost ``image_decodes`` decodes, not N.

One upload thus holds at most ``4 * max_image_pixels`` bytes of pixels (4 bytes a pixel is
the widest mode Pillow decodes to), and the service at most ``image_decodes`` times that.
"""
from __future__ import annotations

import asyncio
import io
import weakref
from typing import Any

from recgen.catalog.schema import decode_failure

_RESEND = "re-send the whole file"

__all__ = ["DECODE_SIZE", "UploadSlots", "decode_upload"]

#: Smallest side an upload is shrunk to before encoding: twice the encoder's 224 px input, so
#: its own bicubic resize still has the detail it had from the full image.
DECODE_SIZE = 448

# modes the strip reducer handles as they are; any other is converted strip by strip
_KEPT_MODES = frozenset({"RGB", "RGBA", "L", "LA"})


def decode_upload(data: bytes, *, max_pixels: int, size: int = DECODE_SIZE) -> Any:
    """Decode uploaded image bytes to a small ``PIL.Image`` (RGB, RGBA, L or LA).

    Parameters
    ----------
    data : bytes
        The encoded image.
    max_pixels : int
        Pixels the image may decode to (after any reduced-scale decoding).
    size : int
        Each side is shrunk to no less than ``size`` (or kept, when smaller).

    Returns
    -------
    PIL.Image.Image
        Decoded and shrunk; the full-size decode is already freed.

    Raises
    ------
    ValueError
        Empty, not an image, truncated or corrupt, or over ``max_pixels``; the message says
        which and what to do.
    """
    from PIL import Image

    if not data:
        raise ValueError("image is empty (0 bytes)")
    try:
        im = Image.open(io.BytesIO(data))  # reads the header only
    except Exception as exc:  # noqa: BLE001 - crafted headers make Pillow raise many types
        raise ValueError(decode_failure(exc, truncated_fix=_RESEND)) from None
    with im:
        w, h = im.size
        if w * h == 0:
            raise ValueError(f"image has no pixels ({w}x{h})")
        if im.format == "JPEG":
            im.draft("RGB", (min(w, size), min(h, size)))  # decode at 1/2..1/8 scale, each side >= size
        dw, dh = im.size
        if dw * dh > max_pixels:
            raise ValueError(f"image is {w}x{h} and would decode to {dw * dh} pixels, over this service's cap of "
                             f"{max_pixels} (possible decompression bomb); downscale it")
        try:
            im.load()
            return _shrink(im, size)
        except (Exception, MemoryError) as exc:  # noqa: BLE001 - crafted files make Pillow raise many types
            raise ValueError(decode_failure(exc, truncated_fix=_RESEND)) from None


def _shrink(im: Any, size: int) -> Any:
    """``im`` box-reduced so each side stays >= ``size``, in strips: no full-size copy is made
    (``Image.reduce`` of an RGBA image, and any mode conversion, would copy it whole)."""
    from PIL import Image

    w, h = im.size
    fx, fy = max(1, w // size), max(1, h // size)
    alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    mode = im.mode if im.mode in _KEPT_MODES else ("RGBA" if alpha else "RGB")
    if fx == fy == 1:
        return im.copy() if mode == im.mode else im.convert(mode)
    out = Image.new(mode, (-(-w // fx), -(-h // fy)))
    rows = fy * max(1, 256 // fy)  # a multiple of fy: strips reduce exactly as the whole would
    for top in range(0, h, rows):
        strip = im.crop((0, top, w, min(h, top + rows)))
        if strip.mode != mode:
            strip = strip.convert(mode)
        out.paste(strip.reduce((fx, fy)), (0, top // fy))
    return out


class UploadSlots:
    """At most ``n`` image uploads decoded and encoded at once; the others wait (without
    holding a worker thread) for their turn.

    ``async with slots():`` takes a slot. One ``asyncio.Semaphore`` per event loop, made on
    first use (an app can be served by several loops, e.g. test clients, one after another).
    """

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1; got {n}")
        self.n = n
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
            weakref.WeakKeyDictionary()

    def __call__(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._by_loop.get(loop)
        if slots is None:
            slots = self._by_loop[loop] = asyncio.Semaphore(self.n)
        return slots
