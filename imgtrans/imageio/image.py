"""The decoded image, its errors, and the pixel helpers every part of imgtrans shares.

:class:`Image` is what reading gives and writing takes: float32 pixels in ``[0, 1]`` shaped
``(H, W, C)`` (C = 1 grey or 3 RGB), an optional ``(H, W)`` alpha plane and the metadata worth
carrying to the output. Errors are :class:`ImageReadError` / :class:`ImageWriteError`, whose
``str()`` is one human-readable line (the reason); the offending path is in ``path``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

from imgtrans.atomic import os_error_reason

#: Default decompression-bomb guard: refuse images with more pixels than this.
DEFAULT_MAX_PIXELS = 200_000_000


class ImageReadError(Exception):
    """A file could not be read as an image; ``str(e)`` is the one-line reason."""

    def __init__(self, reason: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the reader was allowed (the decompression-bomb guard), as the
    header says; nothing was decoded. ``width``/``height`` are the size as stored."""

    def __init__(self, width: int, height: int, max_pixels: int, path: str | os.PathLike[str] | None = None) -> None:
        pixels = width * height
        super().__init__(f"image is {width}x{height} = {pixels} pixels, over the limit of {max_pixels} "
                         "(raise --max-pixels)", path)
        self.width, self.height, self.max_pixels = width, height, max_pixels


class ImageWriteError(Exception):
    """An image could not be written; ``str(e)`` is the one-line reason.

    ``errno`` is the OS error number when the cause was an OSError (e.g.
    ``errno.ENOSPC`` for a full disk), else None, so callers can tell a full
    disk, which will fail every later write too, from a problem with one image.
    """

    def __init__(self, reason: str, path: str | os.PathLike[str] | None = None, errno: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path
        self.errno = errno


@dataclass
class Image:
    """A decoded image plus the metadata worth carrying to the output.

    Attributes:
        pixels: (H, W, C) float32 in [0, 1]; C == 1 (grey) or 3 (RGB), straight
            (not premultiplied) colour.  EXIF orientation is already applied.
        alpha: (H, W) float32 in [0, 1] (1 = opaque), or None.
        bit_depth: source precision per channel, 8 or 16.  Writers use 16 bits
            for PNG/TIFF when this is 16.
        icc_profile: ICC profile of ``pixels``' colour space (RGB profile for
            C == 3, grey profile for C == 1), or None (assume sRGB).
        exif: EXIF block (``b"Exif\\0\\0"`` + TIFF structure, as Pillow's
            ``exif=`` expects) with Orientation reset to 1, or None.
        source_format: Pillow format name of the source ("PNG", "JPEG",
            "WEBP", "TIFF", "BMP", "GIF", ...).  Multi-picture JPEGs ("MPO")
            are reported as "JPEG".
        dpi: (x, y) dots per inch, or None.
        xmp: the source's XMP packet (UTF-8 XML bytes: ratings, keywords,
            captions ...) with any ``tiff:Orientation`` set to 1, or None.
        frames: number of frames in the source (animated GIF/WebP/PNG, multi-page
            TIFF); only the first is decoded.
        jpeg_quality: for a JPEG source, the IJG quality (1-100) its luma
            quantisation table corresponds to (how much of the picture's fine
            detail and noise the compression removed), else None.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    icc_profile: bytes | None
    exif: bytes | None
    source_format: str
    dpi: tuple[float, float] | None = None
    xmp: bytes | None = None
    frames: int = 1
    jpeg_quality: int | None = None

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def is_gray(self) -> bool:
        return self.pixels.ndim == 2 or self.pixels.shape[2] == 1

    @property
    def has_alpha(self) -> bool:
        return self.alpha is not None


# ----------------------------------------------------------------------------------- pixels

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 1) or (H, W) grey -> (H, W, 3) float32; (H, W, 3) is returned as float32 unchanged."""
    px = np.asarray(pixels, dtype=np.float32)
    if px.ndim == 2:
        px = px[:, :, None]
    if px.ndim != 3 or px.shape[2] not in (1, 3):
        raise ValueError(f"expected (H, W, 1) or (H, W, 3) pixels, got shape {px.shape}")
    if px.shape[2] == 3:
        return px
    return np.repeat(px, 3, axis=2)


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W, 1) float32 grey using Rec.601 luma (0.299, 0.587, 0.114).

    (H, W, 1) or (H, W) input is returned as (H, W, 1) float32.
    """
    px = np.asarray(pixels, dtype=np.float32)
    if px.ndim == 2:
        return px[:, :, None]
    if px.ndim != 3 or px.shape[2] not in (1, 3):
        raise ValueError(f"expected (H, W, 1) or (H, W, 3) pixels, got shape {px.shape}")
    if px.shape[2] == 1:
        return px
    return (px @ _LUMA)[:, :, None]


def _resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) float32 -> (height, width) float32 with Pillow's Lanczos, clipped to [0, 1]."""
    if plane.shape == (height, width):
        return np.clip(plane, 0.0, 1.0)
    im = PILImage.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # mode "F"
    out = np.asarray(im.resize((width, height), PILImage.Resampling.LANCZOS), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def _check_size(height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise ValueError(f"invalid target size {height}x{width}")


def resize_alpha(alpha: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an (H, W) alpha plane to (height, width) with Lanczos, clipped to [0, 1].

    Used to give super-resolved outputs an alpha plane of matching size.
    Pillow's Lanczos filter widens its support when shrinking, so this is
    alias-free in both directions.  Returns float32.
    """
    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"expected an (H, W) alpha plane, got shape {a.shape}")
    _check_size(height, width)
    return _resize_plane(a, height, width)


def resize_pixels(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (H, W, C) float in [0, 1] to (height, width, C) float32 in [0, 1], Lanczos per
    channel (alias-free when shrinking, as :func:`resize_alpha`)."""
    p = np.asarray(pixels, dtype=np.float32)
    if p.ndim != 3:
        raise ValueError(f"expected (H, W, C) pixels, got shape {p.shape}")
    _check_size(height, width)
    planes = [_resize_plane(p[:, :, c], height, width) for c in range(p.shape[2])]
    return np.ascontiguousarray(np.stack(planes, axis=2))


# ----------------------------------------------------------------------------------- reasons

_OBJECT_REPR = re.compile(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (the name of its type if it has none), for a reason."""
    text = _OBJECT_REPR.sub("the data", " ".join(str(exc).split()))
    return text if text else type(exc).__name__


def os_reason(exc: OSError) -> str:
    """Map an OSError to a short human reason (:func:`imgtrans.atomic.os_error_reason`)."""
    return os_error_reason(exc, one_line)
