"""Decoding for display, run in worker threads only (never call these from the GUI thread).

Thumbnails are decoded downscaled (JPEG ``draft``), upright (EXIF orientation), with a header check
against the engine's pixel limit first, so a huge or broken file costs little and says why. Display
images are capped in size and carry a downscaled copy for zoomed-out painting.

The heavy pixel work is done by Pillow and numpy, which release the GIL, and the QImages share
those buffers instead of copying them: PySide keeps the GIL for the whole of a Qt call, so a
``QImage.scaled()`` or ``.copy()`` of a 40-megapixel image in a worker would freeze the window for
a third of a second.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps
from PySide6.QtGui import QImage, QImageReader

from imgtrans.imageio import DEFAULT_MAX_PIXELS, ImageReadError, read_image

#: Images shown in the compare view are capped at this many pixels (a 4x SR output of a 24 MP photo
#: would otherwise need GBs); beyond it the preview is a downscaled copy.
DISPLAY_MAX_PIXELS = 48_000_000
#: Long edge of the zoomed-out copy painted when the view shows the whole image.
SMALL_EDGE = 2048
_PIL_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "La", "RGBa"}


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


def header_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the file header, without decoding pixels (None if Qt cannot tell)."""
    reader = QImageReader(str(path))
    size = reader.size()
    if not size.isValid():
        return None
    return size.width(), size.height()


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
    if result.file_bytes == 0:
        result.error = "empty file (0 bytes)"
        return result
    dims = header_size(path)
    if dims and dims[0] * dims[1] > max_pixels:
        result.width, result.height = dims
        result.error = _too_big(dims[0], dims[1], max_pixels)
        return result
    thumb = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PILImage.open(path) as im:
                if im.mode not in _PIL_MODES:
                    raise ValueError(f"mode {im.mode} goes through the full decoder")
                w, h = im.size
                if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    w, h = h, w
                im.draft("RGB", (thumb_px * 2, thumb_px * 2))
                thumb = ImageOps.exif_transpose(im)
                thumb.thumbnail((thumb_px, thumb_px), PILImage.Resampling.BILINEAR)
                result.width, result.height = w, h
    except Exception:  # noqa: BLE001 - the engine's decoder has the last word, below
        thumb = None
    if thumb is None:
        try:
            img = read_image(path, max_pixels=max_pixels)
        except ImageReadError as exc:
            result.error = str(exc).replace(" (raise --max-pixels)", "")  # a command-line hint
            return result
        result.width, result.height = img.width, img.height
        thumb = to_pil(img.pixels, img.alpha)
        thumb.thumbnail((thumb_px, thumb_px), PILImage.Resampling.BILINEAR)
    q, _data = _wrap(_rgb(thumb))
    result.thumb = q.copy()  # small: an owned copy is simplest
    return result


def load_display(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> DisplayImage:
    """Decode a file for the compare view (upright, 8-bit, capped). Raises ImageReadError."""
    dims = header_size(path)
    if dims and dims[0] * dims[1] > max_pixels:
        raise ImageReadError(_too_big(dims[0], dims[1], max_pixels), path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PILImage.open(path) as im:
                if im.mode not in _PIL_MODES:
                    raise ValueError(im.mode)
                w, h = im.size
                if w * h > DISPLAY_MAX_PIXELS * 4:
                    im.draft("RGB", (w // 2, h // 2))  # JPEG: decode at half size straight away
                orientation = im.getexif().get(0x0112, 1)
                im.load()
                upright = ImageOps.exif_transpose(im) if orientation in range(2, 9) else im  # no needless copy
                return display_from_pil(upright, *((h, w) if orientation in (5, 6, 7, 8) else (w, h)))
    except Exception:  # noqa: BLE001 - fall back to the engine's decoder (16-bit, odd modes)
        pass
    img = read_image(path, max_pixels=max_pixels)
    return display_from_array(img.pixels, img.alpha)
