"""Reading image files: :func:`read_image` for conversion, :func:`read_preview` for display.

Reading checks the file (exists, regular, not empty), guards against decompression bombs from the
header before any pixel is decoded (:data:`DEFAULT_MAX_PIXELS`), decodes with Pillow (OpenCV for
16-bit colour, see :mod:`imgtrans.imageio.samples`), applies the orientation the file states (EXIF,
else XMP, or the TIFF tag) to pixels and alpha, and keeps the metadata worth carrying to the output
(ICC, EXIF, XMP, DPI). Every failure is an :class:`ImageReadError` with a one-line reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image as PILImage

from imgtrans import _pngchunks
from imgtrans.imageio._pillow import Decoded, open_and_load
from imgtrans.imageio.exif import extract_exif
from imgtrans.imageio.icc import icc_is_usable
from imgtrans.imageio.image import DEFAULT_MAX_PIXELS, Image, ImageReadError, one_line, os_reason
from imgtrans.imageio.samples import Samples, samples_from_pil
from imgtrans.imageio.xmp import extract_xmp

_log = logging.getLogger(__name__)
T = TypeVar("T")

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


def _read_error(e: OSError, path: Path) -> ImageReadError:
    return ImageReadError("permission denied" if isinstance(e, PermissionError) else os_reason(e), path)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; ImageReadError if it is missing, not a regular file, empty or unreadable."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageReadError("file not found", path) from None
    except OSError as e:
        raise _read_error(e, path) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError("is a directory, not an image file", path)
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError("not a regular file", path)
    if st.st_size == 0:
        raise ImageReadError("empty file (0 bytes)", path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except MemoryError:
        raise ImageReadError("not enough memory to read the file", path) from None
    except OSError as e:
        raise _read_error(e, path) from None
    if not data:
        raise ImageReadError("empty file (0 bytes)", path)
    return data


def _sniff(data: bytes) -> str | None:
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


_IJG_LUMA_SUM = 3688  # the sum of the JPEG standard's luma quantisation table (quality 50)


def _jpeg_quality(im) -> int | None:
    """The IJG quality (1-100) of a JPEG's luma quantisation table, or None (not a JPEG, no table).
    IJG scales the standard table by 5000/q % below quality 50 and by (200 - 2q) % above."""
    tables = getattr(im, "quantization", None)
    if not tables or im.format not in ("JPEG", "MPO"):
        return None
    table = tables.get(0) if isinstance(tables, dict) else None
    if not table:
        return None
    scale = 100.0 * sum(table) / _IJG_LUMA_SUM
    quality = 5000.0 / scale if scale > 100 else 100.0 - scale / 2
    return int(min(100, max(1, round(quality))))


def _decode(data: bytes, max_pixels: int | None, path: Path, min_pixels: int | None = None) -> Decoded:
    """Pillow-decode *data*, translating every failure into ImageReadError.

    A PNG whose only problem is a broken metadata chunk (bad CRC, corrupt
    iCCP, ...) is decoded again without its metadata chunks.
    """
    kind = _sniff(data)
    try:
        return open_and_load(data, max_pixels, path, min_pixels)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError("not enough memory to decode the image", path) from None
    except Exception as first:  # noqa: BLE001 - any decoder failure: retried below for PNG, else reported
        error = first
    if kind == "PNG":
        with contextlib.suppress(ValueError):
            stripped = _pngchunks.strip_chunks(data)
            if stripped != data:
                try:
                    decoded = open_and_load(stripped, max_pixels, path, min_pixels)
                except ImageReadError:
                    raise
                except Exception:  # noqa: BLE001 - the retry failed too: the first error is reported
                    pass
                else:
                    _log.warning("%s: ignored broken PNG metadata (%s)", path, one_line(error))
                    return decoded
    if isinstance(error, PILImage.UnidentifiedImageError) and kind is None:
        raise ImageReadError("not an image (unrecognised format)", path) from None
    detail = one_line(error)
    if isinstance(error, PILImage.UnidentifiedImageError) or len(detail) > 100:
        detail = ""
    what = kind or "image"
    raise ImageReadError(f"truncated or corrupt {what} data" + (f" ({detail})" if detail else ""), path) from None


def _extract_dpi(im: PILImage.Image) -> tuple[float, float] | None:
    dpi = im.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    if not (np.isfinite(x) and np.isfinite(y) and x > 0 and y > 0):
        return None
    return (x, y)


def _usable_icc(im: PILImage.Image) -> bytes | None:
    icc = im.info.get("icc_profile") or None
    return icc if icc is not None and icc_is_usable(icc) else None


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Transform an (H, W, ...) array from EXIF *orientation* to upright (like ImageOps.exif_transpose)."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = arr[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


def _upright(arr: np.ndarray, dec: Decoded, samples: Samples, orientation: int) -> np.ndarray:
    """``arr`` (H, W, ...) of ``samples`` turned upright. ``orientation`` relates the stored pixels
    to upright; Pillow may already have applied it (TIFF), OpenCV output never has."""
    remaining = 1 if dec.pillow_oriented and not samples.via_opencv else orientation
    return arr if remaining == 1 else apply_orientation(arr, remaining)


def _decoded(path: Path, max_pixels: int | None, convert: Callable[[Decoded], T], min_pixels: int | None = None,
             data: bytes | None = None) -> T:
    """``convert`` of the decoded file (or of ``data``, named ``path`` in messages), every failure an
    ImageReadError; the image is closed after."""
    dec = _decode(_read_bytes(path) if data is None else data, max_pixels, path, min_pixels)
    im = dec.im
    try:
        # Pillow's warnings about odd metadata are filtered once for the process (imageio._pillow).
        return convert(dec)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError("not enough memory to decode the image", path) from None
    except Exception as e:  # noqa: BLE001 - a bad file is reported, never a crash
        raise ImageReadError(f"cannot convert {im.format} image in mode {im.mode}: {one_line(e)}", path) from None
    finally:
        im.close()


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image:
    """Read an image file into an :class:`Image` (see its docs for shapes and ranges).

    Supports PNG, JPEG, WebP, TIFF, BMP, GIF (first frame) and a few more
    raster formats Pillow reads; 8- and 16-bit data; modes 1, L, LA, P (with
    transparency), RGB(A), I;16, I, F, CMYK, YCbCr and LAB (converted to RGB).
    EXIF orientation is applied to pixels and alpha.

    The pixel count is checked against *max_pixels* (None = no limit) from
    the header, before any pixel data is decoded.

    Raises:
        ImageReadError: for every failure (missing file, directory, permission,
            empty/truncated/corrupt data, unknown format, too many pixels
            (:class:`ImageTooLargeError`), ...). Broken ICC/EXIF metadata that
            does not prevent decoding is dropped silently instead.
    """

    def convert(dec: Decoded) -> Image:
        im = dec.im
        icc = _usable_icc(im)
        exif, orientation = extract_exif(im, dec.tiff_orientation)
        xmp = extract_xmp(im)
        dpi = _extract_dpi(im)
        if dpi is not None and orientation >= 5:
            dpi = (dpi[1], dpi[0])
        frames = max(1, int(getattr(im, "n_frames", 1) or 1))
        samples = samples_from_pil(dec, icc)
        pixels = _upright(samples.float_pixels(), dec, samples, orientation)
        alpha = samples.float_alpha()
        if alpha is not None:
            alpha = np.ascontiguousarray(_upright(alpha, dec, samples, orientation), dtype=np.float32)
        return Image(
            pixels=np.ascontiguousarray(pixels, dtype=np.float32),
            alpha=alpha,
            bit_depth=samples.bit_depth,
            icc_profile=samples.icc,
            exif=exif,
            source_format="JPEG" if im.format == "MPO" else (im.format or "UNKNOWN"),
            dpi=dpi,
            xmp=xmp,
            frames=frames,
            jpeg_quality=_jpeg_quality(im),
        )

    return _decoded(Path(path), max_pixels, convert)


#: EXIF orientation -> the Pillow transpose that makes it upright (as :func:`apply_orientation`).
_TRANSPOSE = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT, 3: PILImage.Transpose.ROTATE_180, 4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE, 6: PILImage.Transpose.ROTATE_270, 7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}


@dataclass
class Preview:
    """An image decoded for display.

    Attributes:
        image: an RGB or RGBA (straight alpha) 8-bit Pillow image, upright; grey is repeated as RGB.
            A JPEG decoded at a reduced scale is smaller than the image.
        width, height: the size of the whole image, upright (what :func:`read_image` gives).
    """

    image: PILImage.Image
    width: int
    height: int


def read_preview(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 min_pixels: int | None = None, data: bytes | None = None) -> Preview:
    """Read an image file for display (thumbnails, the app's compare view).

    The file goes through what :func:`read_image` does (checks, pixel limit, decoding, colour
    conversions, orientation from EXIF, XMP or the TIFF tag), giving the same pixels rounded to
    8 bits, without a float copy and without the metadata; Pillow turns it upright (several times
    faster than numpy on 8-bit RGB). With *min_pixels*, a JPEG is decoded at 1/2, 1/4 or 1/8 scale
    (several times faster) when at least that many pixels remain. With *data*, those bytes are decoded
    instead of the file (an image kept inside another file, e.g. a style model's painting thumbnail;
    *path* then only names it in messages).

    Raises:
        ImageReadError: as :func:`read_image`.
    """

    def convert(dec: Decoded) -> Preview:
        _exif, orientation = extract_exif(dec.im, dec.tiff_orientation)
        samples = samples_from_pil(dec, _usable_icc(dec.im))
        image = PILImage.fromarray(samples.rgb8())
        remaining = 1 if dec.pillow_oriented and not samples.via_opencv else orientation
        if remaining in _TRANSPOSE:
            image = image.transpose(_TRANSPOSE[remaining])
        width, height = image.size
        if dec.reduced_from is not None:  # the size as stored, turned as the pixels were
            width, height = dec.reduced_from[::-1] if orientation >= 5 else dec.reduced_from
        return Preview(image, width, height)

    return _decoded(Path(path), max_pixels, convert, min_pixels, data)
