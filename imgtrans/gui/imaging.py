"""Images for display, decoded in worker threads only (never call these from the GUI thread).

Files are decoded by the core's reader (:func:`imgtrans.imageio.read_preview`): the same checks,
pixel limit, colour conversions and orientation (EXIF, XMP, TIFF) as a conversion, as 8-bit RGB(A).
Thumbnails and previews of huge photos decode JPEGs at a reduced scale (DCT scaling), so a large
or broken file costs little and says why. Display images are capped in size and carry a downscaled
copy for zoomed-out painting.

The heavy pixel work is done by Pillow and numpy, which release the GIL, and the QImages share
those buffers instead of copying them: PySide keeps the GIL for the whole of a Qt call, so a
``QImage.scaled()`` or ``.copy()`` of a 40-megapixel image in a worker would freeze the window for
a third of a second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PySide6.QtGui import QImage

from imgtrans.imageio import DEFAULT_MAX_PIXELS, ImageReadError, ImageTooLargeError, read_preview

#: Images shown in the compare view are capped at this many pixels (a 4x SR output of a 24 MP photo
#: would otherwise need GBs); beyond it the preview is a downscaled copy.
DISPLAY_MAX_PIXELS = 48_000_000
#: Long edge of the zoomed-out copy painted when the view shows the whole image.
SMALL_EDGE = 2048


@dataclass
class Probe:
    """What the queue shows for one file."""

    width: int = 0
    height: int = 0
    file_bytes: int = 0
    thumb: QImage | None = None
    error: str = ""  # the file cannot be converted, and why


@dataclass
class DisplayImage:
    """An image for the compare view: ``full`` (capped), ``small`` (zoomed-out copy) and the size of
    the image it stands for (the real file's size, even when ``full`` is a reduced copy). ``keep``
    holds the pixel buffers the QImages point into."""

    full: QImage
    small: QImage
    width: int
    height: int
    reduced: bool = False
    keep: tuple = field(default=(), repr=False)


def _rgb(im: PILImage.Image) -> PILImage.Image:
    if im.mode in ("RGB", "RGBA"):
        return im
    has_alpha = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info)
    return im.convert("RGBA" if has_alpha else "RGB")


def _wrap(im: PILImage.Image) -> tuple[QImage, bytes]:
    """A QImage over the bytes of an RGB/RGBA Pillow image (no copy: keep the bytes alive)."""
    data = im.tobytes()  # encoded in chunks by a Python loop: other threads get the GIL meanwhile
    channels = 4 if im.mode == "RGBA" else 3
    fmt = QImage.Format.Format_RGBA8888 if channels == 4 else QImage.Format.Format_RGB888
    return QImage(data, im.width, im.height, im.width * channels, fmt), data


def _fit(im: PILImage.Image, max_pixels: int | None = None, edge: int | None = None) -> PILImage.Image:
    w, h = im.size
    f = 1.0
    if max_pixels and w * h > max_pixels:
        f = (max_pixels / (w * h)) ** 0.5
    if edge and max(w, h) * f > edge:
        f = edge / max(w, h)
    if f >= 1.0:
        return im
    return im.resize((max(1, int(w * f)), max(1, int(h * f))), PILImage.Resampling.BILINEAR, reducing_gap=2.0)


def display_from_pil(im: PILImage.Image, width: int | None = None, height: int | None = None) -> DisplayImage:
    """A display image from a decoded Pillow image (``width``/``height``: the size it stands for)."""
    im = _rgb(im)
    full = _fit(im, max_pixels=DISPLAY_MAX_PIXELS)
    small = _fit(full, edge=SMALL_EDGE)
    q_full, b_full = _wrap(full)
    q_small, b_small = (q_full, b_full) if small is full else _wrap(small)
    w, h = width or im.width, height or im.height
    return DisplayImage(q_full, q_small, w, h, full.size != (w, h), (b_full, b_small))


def to_pil(pixels: np.ndarray, alpha: np.ndarray | None = None) -> PILImage.Image:
    """Float (H,W,C) in [0,1] (C 1 or 3) plus optional (H,W) alpha -> an 8-bit RGB(A) Pillow image."""
    px = pixels if pixels.ndim == 3 else pixels[:, :, None]
    if px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    if alpha is not None:
        px = np.concatenate([px, alpha[:, :, None]], axis=2)
    scaled = np.clip(px, 0.0, 1.0)  # a new array: scaled in place below
    scaled *= 255.0
    scaled += 0.5
    return PILImage.fromarray(scaled.astype(np.uint8))


def display_from_array(pixels: np.ndarray, alpha: np.ndarray | None = None, width: int | None = None,
                       height: int | None = None) -> DisplayImage:
    return display_from_pil(to_pil(pixels, alpha), width, height)


def _too_big(w: int, h: int, max_pixels: int) -> str:
    return f"image is {w}x{h} = {w * h / 1e6:.0f} megapixels, over the limit of {max_pixels / 1e6:.0f} megapixels"


def probe(path: Path, thumb_px: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Probe:
    """Size, file size and a thumbnail (long edge ``thumb_px``) of one file, or why it cannot be used."""
    result = Probe()
    try:
        result.file_bytes = os.stat(path).st_size
    except OSError as exc:
        result.error = exc.strerror or str(exc)
        return result
    try:
        preview = read_preview(path, max_pixels=max_pixels, min_pixels=(2 * thumb_px) ** 2)
    except ImageTooLargeError as exc:
        result.width, result.height = exc.width, exc.height
        result.error = _too_big(exc.width, exc.height, max_pixels)
        return result
    except ImageReadError as exc:
        result.error = str(exc).replace(" (raise --max-pixels)", "")  # a command-line hint
        return result
    result.width, result.height = preview.width, preview.height
    thumb = preview.image
    thumb.thumbnail((thumb_px, thumb_px), PILImage.Resampling.BILINEAR)
    q, _data = _wrap(thumb)
    result.thumb = q.copy()  # small: an owned copy is simplest
    return result


def load_display(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DisplayImage:
    """Decode a file for the compare view (upright, 8-bit, capped). Raises ImageReadError."""
    try:
        # a JPEG over 4x the display cap is decoded at half size straight away
        preview = read_preview(path, max_pixels=max_pixels, min_pixels=DISPLAY_MAX_PIXELS)
    except ImageTooLargeError as exc:
        raise ImageReadError(_too_big(exc.width, exc.height, max_pixels), path) from None
    return display_from_pil(preview.image, preview.width, preview.height)
