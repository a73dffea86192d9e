"""Image input/output that loses nothing.

Reading turns any supported file into an :class:`Image`: float32 pixels in
``[0, 1]`` shaped ``(H, W, C)`` (C = 1 grey or 3 RGB) plus an optional
``(H, W)`` alpha plane, already rotated upright according to EXIF, together
with the metadata worth carrying to the output (ICC profile, EXIF, XMP, DPI)
and the source precision (8 or 16 bits per channel).

Writing does the reverse, atomically: the file is encoded in memory, written
to ``.<name>.<random>.part`` in the destination directory, fsynced and renamed
over the final path, so a crash or a full disk never leaves a half-written
image behind.

Pillow decodes and encodes almost everything.  OpenCV is used only where
Pillow loses precision: decoding 16-bit multi-channel PNG/TIFF data and
encoding 16-bit PNGs (metadata chunks are then added by
:mod:`imgtrans._pngchunks`).  16-bit TIFFs are written by a small encoder here
that reuses Pillow's TIFF tag serialiser.

Errors are reported as :class:`ImageReadError` / :class:`ImageWriteError`
whose ``str()`` is one human-readable line (the reason); the offending path is
in the ``path`` attribute.
"""

from __future__ import annotations

import contextlib
import errno
import html
import io
import json
import logging
import os
import re
import stat
import struct
import tempfile
import threading
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image as PILImage
from PIL import ImageFile

from imgtrans import _pngchunks

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Image",
    "ImageReadError",
    "ImageWriteError",
    "output_format_for",
    "read_image",
    "read_provenance",
    "resize_alpha",
    "sweep_stale_temp_files",
    "to_gray",
    "to_rgb",
    "write_bytes_atomic",
    "write_image",
]

_log = logging.getLogger(__name__)

#: Default decompression-bomb guard: refuse images with more pixels than this.
DEFAULT_MAX_PIXELS = 200_000_000

_ORIENTATION = 0x0112
_IMAGE_DESCRIPTION = 0x010E
_SOFTWARE = 0x0131
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_INTEROP_IFD = 0xA005  # inside the Exif sub-IFD
_EXIF_HEADER = b"Exif\x00\x00"
#: Exif sub-IFD PixelXDimension, PixelYDimension: the image's size, kept equal to the output's.
_PIXEL_DIMENSIONS = (0xA002, 0xA003)
#: XMP: imgtrans's own namespace (the provenance record) and those it reads.
_XMP_NS = b"http://ns.imgtrans.invalid/xmp/1.0/"
_XMP_TIFF_NS = b"http://ns.adobe.com/tiff/1.0/"
_XMP_EXIF_NS = b"http://ns.adobe.com/exif/1.0/"
_XMP_RDF_NS = b"http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_PNG_XMP_KEY = "XML:com.adobe.xmp"
#: Largest XMP packet one JPEG APP1 segment holds (65533 minus the namespace header).
_JPEG_XMP_LIMIT = 65533 - len(b"http://ns.adobe.com/xap/1.0/\x00")
#: Descriptive IFD0 tags carried between formats; TIFF layout tags
#: (strip offsets, bits per sample, ...) must never be copied.
_EXIF_IFD0_TAGS = (0x010D, 0x010E, 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B, 0x013C, 0x8298)

#: Formats read_image accepts (Pillow names).  Deliberately excludes formats
#: that run external programs (EPS) or are not raster photos.
_READ_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "DIB", "GIF", "PPM", "TGA", "AVIF", "JPEG2000", "QOI")
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
#: Output extension -> Pillow format name.
_WRITE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF", "bmp": "BMP"}
#: Source format -> extension kept by output_format_for(..., "same").
_SAME_FORMAT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tiff"}

# Pillow's decompression-bomb limit and truncated-image switch are process
# globals; they are overridden only while this lock is held.
_PIL_LOCK = threading.Lock()

# Pillow warns (UserWarning) about every odd metadata field it skips, also while
# *writing* EXIF it re-parses.  Broken metadata is dropped by design, so these
# are noise on the CLI's stderr.  A module filter rather than
# warnings.catch_warnings(): that swaps the process-wide filter list and is not
# thread-safe (reads and writes run in I/O threads), so concurrent blocks leak
# warnings or can leave every warning in the process silenced.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"PIL\.")


def _silence_libtiff() -> None:
    """Stop libtiff printing to stderr.

    libtiff's default handlers write straight to file descriptor 2 from the
    I/O threads ("ZIPDecode: Decoding error ...", "tempfile.tif: Using code not
    yet in table."), which lands in the middle of the CLI's own lines.  Pillow
    turns the same failures into exceptions, so nothing is lost.  Linux only
    (the loaded copy of libtiff is found in /proc/self/maps); elsewhere a no-op.
    """
    try:
        import ctypes

        from PIL import _imaging  # noqa: F401 - loads libtiff

        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            paths = {line.split(None, 5)[5].strip() for line in fh if "libtiff" in line and len(line.split(None, 5)) == 6}
        for lib_path in paths:
            lib = ctypes.CDLL(lib_path)
            lib.TIFFSetWarningHandler.restype = ctypes.c_void_p
            lib.TIFFSetErrorHandler.restype = ctypes.c_void_p
            lib.TIFFSetWarningHandler(None)
            lib.TIFFSetErrorHandler(None)
    except Exception:  # no /proc, no libtiff, symbols missing: keep libtiff's defaults
        _log.debug("could not silence libtiff", exc_info=True)


_silence_libtiff()


class ImageReadError(Exception):
    """A file could not be read as an image; ``str(e)`` is the one-line reason."""

    def __init__(self, reason: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


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


# --------------------------------------------------------------------------
# Small public helpers
# --------------------------------------------------------------------------

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


def output_format_for(source_format: str, requested: str) -> str:
    """Output file extension (no dot) for a requested output format.

    ``requested`` is one of "same", "png", "jpg", "webp", "tiff" (also
    accepted: "jpeg", "tif", "bmp", any case).  "same" keeps the source's
    format when it can be written without surprise: JPEG -> "jpg", PNG ->
    "png", WEBP -> "webp", TIFF -> "tiff"; everything else (BMP, GIF, ...)
    -> "png", which is lossless and keeps alpha.
    """
    req = requested.strip().lower().lstrip(".")
    req = {"jpeg": "jpg", "tif": "tiff"}.get(req, req)
    if req == "same":
        return _SAME_FORMAT.get(source_format.strip().upper(), "png")
    if req in ("png", "jpg", "webp", "tiff", "bmp"):
        return req
    raise ValueError(f"unknown output format {requested!r} (choose same, png, jpg, webp or tiff)")


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


_OBJECT_REPR = re.compile(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


def _one_line(exc: BaseException) -> str:
    text = _OBJECT_REPR.sub("the data", " ".join(str(exc).split()))
    return text if text else type(exc).__name__


def _os_reason(exc: OSError) -> str:
    """Map an OSError to a short human reason."""
    reasons = {
        errno.ENOENT: "file or directory not found",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "disk full",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "read-only file system",
        errno.EISDIR: "is a directory",
        errno.ENOTDIR: "a parent of the path is not a directory",
        errno.ENAMETOOLONG: "file name too long",
        errno.EIO: "input/output error",
    }
    return reasons.get(exc.errno, exc.strerror or _one_line(exc))


def _icc_colour_space(icc: bytes | None) -> bytes | None:
    """The ICC header's data colour space (b"RGB ", b"GRAY", b"CMYK", ...), or None if not a profile."""
    if not icc or len(icc) < 128 or icc[36:40] != b"acsp":
        return None
    return bytes(icc[16:20])


def _icc_is_usable(icc: bytes) -> bool:
    if _icc_colour_space(icc) is None:
        return False
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without LittleCMS: trust the header
        return True
    try:
        ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except Exception:
        return False
    return True


def _icc_for(icc: bytes | None, gray: bool) -> bytes | None:
    """Return *icc* if it is a valid profile for the output's colour space, else None."""
    if not icc:
        return None
    want = b"GRAY" if gray else b"RGB "
    if _icc_colour_space(icc) != want or not _icc_is_usable(icc):
        return None
    return bytes(icc)


def _ifd_entries(buf: bytearray, endian: str, base: int, ifd: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, type, count, entry offset) of each entry of the IFD at ``buf[base + ifd:]``."""
    (count,) = struct.unpack_from(endian + "H", buf, base + ifd)
    for i in range(count):
        entry = base + ifd + 2 + 12 * i
        tag, typ, n = struct.unpack_from(endian + "HHI", buf, entry)
        yield tag, typ, n, entry


def _set_int_entry(buf: bytearray, endian: str, entry: int, typ: int, n: int, value: int) -> None:
    """Store ``value`` in a one-value SHORT (3) or LONG (4) entry, in place; ValueError if it cannot."""
    if n != 1 or typ not in (3, 4) or (typ == 3 and value > 0xFFFF):
        raise ValueError("unexpected tag type")
    if typ == 3:
        struct.pack_into(endian + "HH", buf, entry + 8, value, 0)
    else:
        struct.pack_into(endian + "I", buf, entry + 8, value)


def _patch_exif_in_place(buf: bytearray, base: int = 0, size: tuple[int, int] | None = None,
                         drop_thumbnail: bool = False) -> None:
    """Set the IFD0 Orientation tag of the TIFF structure at ``buf[base:]`` to 1, and with ``size``
    (width, height) the Exif sub-IFD's PixelXDimension/PixelYDimension to it, in place. With
    ``drop_thumbnail`` (EXIF blocks, never TIFF files) IFD0's link to IFD1 is cut: IFD1 is the
    camera's thumbnail, which shows the source (unrotated), not the output.

    Works for TIFF files (base 0) and EXIF blocks (base 6, after ``Exif\0\0``).
    Every other byte is left alone, which keeps maker notes and other
    offset-sensitive data intact.  Raises ValueError/struct.error if the
    structure is malformed or a tag has an unexpected type.
    """
    endian = {b"II": "<", b"MM": ">"}.get(bytes(buf[base : base + 2]))
    if endian is None:
        raise ValueError("bad TIFF byte order")
    magic, ifd = struct.unpack_from(endian + "HI", buf, base + 2)
    if magic != 42:
        raise ValueError("bad TIFF magic")
    exif_ifd = None
    for tag, typ, n, entry in _ifd_entries(buf, endian, base, ifd):
        if tag == _ORIENTATION:
            _set_int_entry(buf, endian, entry, typ, n, 1)
        elif tag == _EXIF_IFD and n == 1 and typ in (4, 13):
            (exif_ifd,) = struct.unpack_from(endian + "I", buf, entry + 8)
    if drop_thumbnail:
        (count,) = struct.unpack_from(endian + "H", buf, base + ifd)
        struct.pack_into(endian + "I", buf, base + ifd + 2 + 12 * count, 0)
    if size is None or exif_ifd is None:
        return
    for tag, typ, n, entry in _ifd_entries(buf, endian, base, exif_ifd):
        if tag in _PIXEL_DIMENSIONS:
            _set_int_entry(buf, endian, entry, typ, n, size[_PIXEL_DIMENSIONS.index(tag)])


def _exif_reset_orientation(raw: bytes, size: tuple[int, int] | None = None) -> bytes:
    """Copy of an EXIF block with Orientation set to 1 and, with ``size`` (width, height), the
    pixel dimensions set to it (see _patch_exif_in_place)."""
    buf = bytearray(raw if raw.startswith(_EXIF_HEADER) else _EXIF_HEADER + raw)
    _patch_exif_in_place(buf, len(_EXIF_HEADER), size, drop_thumbnail=True)
    return bytes(buf)


def _load_exif(raw: bytes) -> PILImage.Exif:
    exif = PILImage.Exif()
    exif.load(raw if raw.startswith(_EXIF_HEADER) else _EXIF_HEADER + raw)
    return exif


def _orientation_value(exif: PILImage.Exif) -> int:
    value = exif.get(_ORIENTATION, 1)
    if isinstance(value, (tuple, list)):
        value = value[0] if value else 1
    try:
        value = int(value)
    except (TypeError, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _text_as_bytes(value: Any) -> Any:
    """Pillow reads EXIF/TIFF ASCII values as latin-1 text and writes text back as ASCII with '?' for
    anything else, which turned a UTF-8 "© Jürgen" into "?? J??rgen". Handing it the original bytes
    (latin-1 is a lossless byte <-> text mapping) makes it write them unchanged. Plain ASCII text
    stays text: in sub-IFDs, whose tag types Pillow does not know, bytes would be typed UNDEFINED."""
    return value.encode("latin-1", "replace") if isinstance(value, str) and not value.isascii() else value


def _keep_text_bytes(exif: PILImage.Exif) -> None:
    """In place: every text value of IFD0 and of the Exif/GPS sub-IFDs as its original bytes."""
    for tag, value in list(exif.items()):
        if isinstance(value, str):
            exif[tag] = _text_as_bytes(value)
    for tag in (_EXIF_IFD, _GPS_IFD):
        with contextlib.suppress(Exception):
            sub = exif.get_ifd(tag)
            for key, value in list(sub.items()):
                sub[key] = _text_as_bytes(value)


def _copy_exif_tags(src: PILImage.Exif) -> PILImage.Exif:
    """A fresh Exif with only the descriptive IFD0 tags and the Exif/GPS sub-IFDs of *src* (the Exif
    sub-IFD with its Interop sub-IFD), text values as their original bytes."""
    out = PILImage.Exif()
    for tag in _EXIF_IFD0_TAGS:
        if tag in src:
            out[tag] = _text_as_bytes(src[tag])
    for tag in (_EXIF_IFD, _GPS_IFD):
        with contextlib.suppress(Exception):
            sub = {key: _text_as_bytes(value) for key, value in src.get_ifd(tag).items()}
            if tag == _EXIF_IFD and _INTEROP_IFD in sub:
                # a plain number here would be the source's file offset, pointing into the new IFD0
                interop = None
                with contextlib.suppress(Exception):
                    interop = {k: _text_as_bytes(v) for k, v in src.get_ifd(_INTEROP_IFD).items()}
                if interop:
                    sub[_INTEROP_IFD] = interop
                else:
                    del sub[_INTEROP_IFD]
            if sub:
                out[tag] = sub
    return out


# --------------------------------------------------------------------------
# XMP and the provenance record
# --------------------------------------------------------------------------
#
# The source's XMP packet is carried byte for byte, except for two edits made
# with regular expressions (no XML parser touches untrusted data):
# tiff:Orientation is set to 1 (the pixels are already upright), and in
# JPEG/WebP/TIFF outputs imgtrans's provenance record is one rdf:Description
# of its own namespace, ``imgtrans:provenance="<JSON>"``, added before
# ``</rdf:RDF>`` (replacing an earlier imgtrans record).  The record never
# touches EXIF ImageDescription, UserComment or any other field a user or
# camera may have filled.  PNG keeps the record in its ``imgtrans`` text chunk.


def _xmp_prefixes(xmp: bytes, namespace: bytes) -> set[bytes]:
    """The XML prefixes bound to *namespace* anywhere in the packet."""
    quoted = rb"(?:\"" + re.escape(namespace) + rb"\"|'" + re.escape(namespace) + rb"')"
    return set(re.findall(rb"xmlns:([\w.-]+)\s*=\s*" + quoted, xmp))


def _xmp_set_values(xmp: bytes, values: dict[tuple[bytes, bytes, bytes], int]) -> bytes:
    """*xmp* with each property given as (namespace, usual prefix, name) -> integer set to that value
    wherever it appears (attribute or element form, any prefix bound to the namespace)."""
    for (namespace, usual, prop), value in values.items():
        new = str(value).encode()
        for prefix in _xmp_prefixes(xmp, namespace) | {usual}:
            name = re.escape(prefix) + b":" + re.escape(prop)
            xmp = re.sub(rb"(\s" + name + rb"\s*=\s*)([\"'])\s*\d+\s*\2", rb"\g<1>\g<2>" + new + rb"\g<2>", xmp)
            xmp = re.sub(rb"(<" + name + rb"(?:\s[^>]*)?>)\s*\d+\s*(</" + name + rb"\s*>)", rb"\g<1>" + new + rb"\g<2>", xmp)
    return xmp


def _xmp_reset_orientation(xmp: bytes) -> bytes:
    """*xmp* with every tiff:Orientation value (attribute or element form) set to 1."""
    return _xmp_set_values(xmp, {(_XMP_TIFF_NS, b"tiff", b"Orientation"): 1})


def _xmp_set_size(xmp: bytes, size: tuple[int, int]) -> bytes:
    """*xmp* with the image-size properties (exif:PixelX/YDimension, tiff:ImageWidth/Length) set to
    ``size`` (width, height) where they appear."""
    w, h = size
    return _xmp_set_values(xmp, {
        (_XMP_EXIF_NS, b"exif", b"PixelXDimension"): w, (_XMP_EXIF_NS, b"exif", b"PixelYDimension"): h,
        (_XMP_TIFF_NS, b"tiff", b"ImageWidth"): w, (_XMP_TIFF_NS, b"tiff", b"ImageLength"): h,
    })


def _xmp_record_patterns(xmp: bytes) -> list[re.Pattern[bytes]]:
    """Patterns of the imgtrans:provenance attribute / element (value in group "a", "b" or "e")."""
    patterns = []
    for prefix in _xmp_prefixes(xmp, _XMP_NS):
        name = re.escape(prefix) + rb":provenance"
        patterns.append(re.compile(rb"\s" + name + rb"\s*=\s*(?:\"(?P<a>[^\"]*)\"|'(?P<b>[^']*)')"))
        patterns.append(re.compile(rb"<" + name + rb"(?:\s[^>]*)?>(?P<e>.*?)</" + name + rb"\s*>", re.DOTALL))
    return patterns


def _xmp_strip_record(xmp: bytes) -> bytes:
    """*xmp* without imgtrans's provenance record (and without the rdf:Description written for it)."""
    for pattern in _xmp_record_patterns(xmp):
        xmp = pattern.sub(b"", xmp)
    ns = re.escape(_XMP_NS)
    return re.sub(rb"<([\w.-]+):Description\s+\1:about=\"[^\"]*\"\s+xmlns:imgtrans=\"" + ns + rb"\"\s*/>\s*", b"", xmp)


def _xmp_add_record(xmp: bytes | None, text: str) -> bytes | None:
    """*xmp* (or a new packet) with the provenance *text* as an rdf:Description of its own."""
    value = html.escape(text, quote=True).encode("utf-8")
    if not xmp:
        desc = b'<rdf:Description rdf:about="" xmlns:imgtrans="' + _XMP_NS + b'" imgtrans:provenance="' + value + b'"/>'
        return (
            b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            b'<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            b'<rdf:RDF xmlns:rdf="' + _XMP_RDF_NS + b'">\n' + desc + b"\n</rdf:RDF>\n</x:xmpmeta>\n"
            b'<?xpacket end="w"?>'
        )
    for rdf in sorted(_xmp_prefixes(xmp, _XMP_RDF_NS)):
        ends = list(re.finditer(rb"</" + re.escape(rdf) + rb":RDF\s*>", xmp))
        if ends:
            at = ends[-1].start()
            # every top-level rdf:about must be the same (Adobe's XMPCore rejects the packet otherwise)
            about = re.search(rb"<" + re.escape(rdf) + rb":Description\s[^>]*?" + re.escape(rdf)
                              + rb":about\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", xmp)
            subject = (about.group(1) if about.group(1) is not None else about.group(2)) if about else b""
            subject = html.escape(html.unescape(subject.decode("utf-8", "replace")), quote=True).encode("utf-8")
            desc = (b"<" + rdf + b":Description " + rdf + b':about="' + subject + b'" xmlns:imgtrans="' + _XMP_NS
                    + b'" imgtrans:provenance="' + value + b'"/>\n')
            return xmp[:at] + desc + xmp[at:]
    _log.warning("XMP packet has no rdf:RDF element; the imgtrans record is not stored")
    return xmp


def _xmp_read_record(xmp: bytes) -> str | None:
    for pattern in _xmp_record_patterns(xmp):
        m = pattern.search(xmp)
        if m:
            raw = next(g for g in (m.group(k) for k in m.re.groupindex) if g is not None)
            return html.unescape(raw.decode("utf-8", "replace"))
    return None


def _output_xmp(xmp: bytes | None, text: str | None, size: tuple[int, int] | None = None) -> bytes | None:
    """XMP for the output: tiff:Orientation 1, the image size set to ``size`` (width, height) where the
    packet states one, no stale imgtrans record, plus *text* as the record if given."""
    out = None
    if xmp:
        out = _xmp_strip_record(_xmp_reset_orientation(bytes(xmp)))
        if size is not None:
            out = _xmp_set_size(out, size)
    if text is not None:
        out = _xmp_add_record(out, text)
    return out or None


def _parse_record(text: Any) -> dict[str, Any] | None:
    """A provenance JSON text -> dict, or None if it is not a JSON object."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_legacy_record(exif: PILImage.Exif) -> bool:
    """True if ImageDescription holds a provenance record as earlier imgtrans wrote it (Software "imgtrans")."""
    software = exif.get(_SOFTWARE)
    return (isinstance(software, str) and software.startswith("imgtrans")
            and _parse_record(exif.get(_IMAGE_DESCRIPTION)) is not None)


def _xmp_as_utf8(xmp: bytes) -> bytes:
    """A UTF-16/32 packet (allowed in TIFF and some sidecar-style writers) re-encoded as UTF-8, which the
    edits below and every output format expect; UTF-8 packets lose only trailing NUL padding."""
    for bom, codec in ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                       (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le")):  # fmt: skip
        if xmp.startswith(bom):
            break
    else:
        head = xmp[:64]
        codec = "utf-16-be" if head[:1] == b"\x00" and head[1:2] != b"\x00" else (
            "utf-16-le" if head[1:2] == b"\x00" and head[:1] != b"\x00" else None)
        if codec is None:
            return xmp.rstrip(b"\x00")
        bom = b""
    try:
        text = xmp[len(bom):].decode(codec).rstrip("\x00")
    except UnicodeDecodeError:
        return xmp.rstrip(b"\x00")
    return text.encode("utf-8")


def _xmp_orientation(xmp: bytes | None) -> int:
    """The tiff:Orientation the packet states (1-8), else 1."""
    for prefix in _xmp_prefixes(xmp or b"", _XMP_TIFF_NS):
        name = re.escape(prefix) + rb":Orientation"
        m = (re.search(rb"\s" + name + rb"\s*=\s*[\"']\s*(\d+)\s*[\"']", xmp)
             or re.search(rb"<" + name + rb"(?:\s[^>]*)?>\s*(\d+)\s*</", xmp))
        if m and 1 <= int(m.group(1)) <= 8:
            return int(m.group(1))
    return 1


def _raw_xmp(im: PILImage.Image) -> bytes | None:
    """The XMP packet Pillow found (JPEG APP1, PNG iTXt, WebP chunk, TIFF tag 700), as UTF-8."""
    xmp = im.info.get("xmp")
    if isinstance(xmp, tuple) and len(xmp) == 1:
        xmp = xmp[0]
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if not isinstance(xmp, (bytes, bytearray)):
        return None
    xmp = _xmp_as_utf8(bytes(xmp))
    return xmp if xmp.strip() else None


def _extract_xmp(im: PILImage.Image) -> bytes | None:
    """The XMP packet Pillow found, as UTF-8, orientation reset."""
    xmp = _raw_xmp(im)
    return None if xmp is None else _xmp_reset_orientation(xmp)


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageReadError("file not found", path) from None
    except PermissionError:
        raise ImageReadError("permission denied", path) from None
    except OSError as e:
        raise ImageReadError(_os_reason(e), path) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError("is a directory, not an image file", path)
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError("not a regular file", path)
    if st.st_size == 0:
        raise ImageReadError("empty file (0 bytes)", path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except PermissionError:
        raise ImageReadError("permission denied", path) from None
    except MemoryError:
        raise ImageReadError("not enough memory to read the file", path) from None
    except OSError as e:
        raise ImageReadError(_os_reason(e), path) from None
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


@dataclass
class _Decoded:
    """A Pillow image after load(), plus facts only visible before load()."""

    im: PILImage.Image
    rawmode: Any  # raw mode of the first tile, e.g. "RGB;16B" for 16-bit RGB PNG
    data: bytes  # the encoded bytes that were decoded
    tiff_orientation: int = 1  # TIFF Orientation tag as stored in the file
    pillow_oriented: bool = False  # Pillow already applied tiff_orientation in load()


def _pil_open_and_load(data: bytes, max_pixels: int | None, path: Path) -> _Decoded:
    """Open with Pillow, check the size against *max_pixels*, then decode.

    Pillow's own bomb guard is disabled in favour of ours and truncated files
    are errors (both are process globals, restored afterwards).
    """
    with _PIL_LOCK:
        saved = PILImage.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        PILImage.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            im = PILImage.open(io.BytesIO(data), formats=_READ_FORMATS)
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageReadError(
                    f"image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels} (raise --max-pixels)",
                    path,
                )
            rawmode: Any = None
            if im.tile:
                args = im.tile[0][3]  # (codec, extents, offset, args)
                rawmode = args[0] if isinstance(args, tuple) and args else args
            tiff_orientation = 1
            if im.format == "TIFF":
                value = im.tag_v2.get(_ORIENTATION)
                tiff_orientation = value if isinstance(value, int) and 1 <= value <= 8 else 1
            im.load()
            # Recent Pillow versions rotate TIFFs upright in load() and drop the tag.
            oriented = tiff_orientation != 1 and _ORIENTATION not in im.tag_v2 if im.format == "TIFF" else False
            return _Decoded(im, rawmode, data, tiff_orientation, oriented)
        finally:
            PILImage.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


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


def _decode(data: bytes, max_pixels: int | None, path: Path) -> _Decoded:
    """Pillow-decode *data*, translating every failure into ImageReadError.

    A PNG whose only problem is a broken metadata chunk (bad CRC, corrupt
    iCCP, ...) is decoded again without its metadata chunks.
    """
    kind = _sniff(data)
    try:
        return _pil_open_and_load(data, max_pixels, path)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError("not enough memory to decode the image", path) from None
    except Exception as first:
        error = first
    if kind == "PNG":
        with contextlib.suppress(ValueError):
            stripped = _pngchunks.strip_chunks(data)
            if stripped != data:
                try:
                    decoded = _pil_open_and_load(stripped, max_pixels, path)
                except ImageReadError:
                    raise
                except Exception:
                    pass
                else:
                    _log.warning("%s: ignored broken PNG metadata (%s)", path, _one_line(error))
                    return decoded
    if isinstance(error, PILImage.UnidentifiedImageError) and kind is None:
        raise ImageReadError("not an image (unrecognised format)", path) from None
    detail = _one_line(error)
    if isinstance(error, PILImage.UnidentifiedImageError) or len(detail) > 100:
        detail = ""
    what = kind or "image"
    raise ImageReadError(f"truncated or corrupt {what} data" + (f" ({detail})" if detail else ""), path) from None


def _extract_exif(im: PILImage.Image, tiff_orientation: int = 1) -> tuple[bytes | None, int]:
    """The EXIF block with Orientation reset to 1 (or None) and the original orientation.

    For TIFF the descriptive IFD0 tags and Exif/GPS sub-IFDs are collected
    from the file's tags (*tiff_orientation* is the file's Orientation tag,
    which Pillow may already have consumed).  Unparseable EXIF is dropped
    (orientation 1), never an error.
    """
    raw = im.info.get("exif")
    if isinstance(raw, (bytes, bytearray)) and raw:
        raw = bytes(raw) if bytes(raw).startswith(_EXIF_HEADER) else _EXIF_HEADER + bytes(raw)
        try:
            exif = _load_exif(raw)
        except Exception:
            return None, 1
        if not len(exif):
            return None, _xmp_orientation(_raw_xmp(im))
        # an EXIF block without Orientation leaves it to XMP's tiff:Orientation (as Pillow's exif_transpose)
        orientation = _orientation_value(exif) if _ORIENTATION in exif else _xmp_orientation(_raw_xmp(im))
        try:
            return _exif_reset_orientation(raw), orientation
        except (ValueError, struct.error):
            pass
        try:
            exif[_ORIENTATION] = 1
            _keep_text_bytes(exif)
            return exif.tobytes(), orientation
        except Exception:
            return None, orientation
    # No raw block: TIFF tags, or PNG "Raw profile type exif" text.
    try:
        exif = im.getexif()
        if not len(exif):
            return None, tiff_orientation
        orientation = _orientation_value(exif) if _ORIENTATION in exif else tiff_orientation
        out = _copy_exif_tags(exif) if im.format == "TIFF" else exif
        _keep_text_bytes(out)
        if _ORIENTATION in out or tiff_orientation != 1:
            out[_ORIENTATION] = 1
        if not len(out):
            return None, orientation
        return out.tobytes(), orientation
    except Exception:
        return None, tiff_orientation


def _extract_dpi(im: PILImage.Image) -> tuple[float, float] | None:
    dpi = im.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        return None
    if not (np.isfinite(x) and np.isfinite(y) and x > 0 and y > 0):
        return None
    return (x, y)


def _cmyk_to_rgb(im: PILImage.Image, icc: bytes | None) -> PILImage.Image:
    """CMYK -> RGB, colour-managed to sRGB when the file has a usable CMYK profile."""
    if icc and _icc_colour_space(icc) == b"CMYK":
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            return ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
        except Exception:
            _log.debug("CMYK profile unusable; using naive CMYK->RGB", exc_info=True)
    return im.convert("RGB")


def _lab_to_rgb(im: PILImage.Image) -> PILImage.Image:
    from PIL import ImageCms

    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    return ImageCms.applyTransform(im, transform)


def _is_16bit(im: PILImage.Image, rawmode: Any) -> bool:
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        return True
    if im.format == "PNG" and isinstance(rawmode, str):
        return ";16" in rawmode
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258)
        if isinstance(bits, int):
            bits = (bits,)
        with contextlib.suppress(TypeError, ValueError):
            return bits is not None and max(int(b) for b in bits) > 8
    return False


def _source_is_gray(im: PILImage.Image, rawmode: Any) -> bool:
    if im.format == "PNG" and isinstance(rawmode, str):
        return rawmode.startswith(("L", "I"))
    if im.format == "TIFF":
        return getattr(im, "tag_v2", {}).get(262) in (0, 1)
    return im.mode in ("1", "L", "LA", "La", "I", "F") or im.mode.startswith("I;16")


@contextlib.contextmanager
def _opencv_quiet(cv2: Any):
    """Silence OpenCV's own stderr logging (it reports decode problems there)."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    try:
        level = logging_api.getLogLevel()
        logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    except Exception:
        yield
        return
    try:
        yield
    finally:
        logging_api.setLogLevel(level)


def _decode_16bit_cv2(dec: _Decoded) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Decode 16-bit multi-channel PNG/TIFF data with OpenCV.

    Returns (pixels (H,W,C) uint16, alpha (H,W) uint16 or None) in RGB order
    and in the file's stored orientation, or None if OpenCV is unavailable
    or its result does not match what Pillow saw (the caller then falls back
    to Pillow's 8-bit decode).
    """
    try:
        import cv2
    except ImportError:
        return None
    im, data = dec.im, dec.data
    w, h = im.size
    if im.format == "TIFF":
        w, h = im.tag_v2.get(256, w), im.tag_v2.get(257, h)
        if dec.tiff_orientation != 1:  # OpenCV may or may not rotate; make it not
            buf = bytearray(data)
            try:
                _patch_exif_in_place(buf)
            except (ValueError, struct.error):
                return None
            data = bytes(buf)
    with _opencv_quiet(cv2):
        try:
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except Exception:
            return None
    if arr is None or arr.dtype != np.uint16 or arr.shape[:2] != (h, w):
        return None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    gray = _source_is_gray(im, dec.rawmode)
    wants_alpha = "A" in im.mode
    c = arr.shape[2]
    alpha = None
    if c == 1:
        px = arr
    elif c == 2:
        px, alpha = arr[:, :, :1], arr[:, :, 1]
    elif c == 3:
        px = arr[:, :, ::-1]
    elif c == 4:
        px, alpha = arr[:, :, 2::-1], arr[:, :, 3]
    else:
        return None
    if gray and px.shape[2] == 3:
        px = px[:, :, :1]
    if not wants_alpha:
        alpha = None
    elif alpha is None:
        return None
    return px, alpha


def _to_float(arr: np.ndarray, scale: float) -> np.ndarray:
    out = arr.astype(np.float32)
    out /= np.float32(scale)
    return out


def _transparency_mask(arr: np.ndarray, key: Any) -> np.ndarray | None:
    """Alpha (0 where the pixel equals the tRNS colour key, else 1), or None if *key* is unusable."""
    try:
        key_arr = np.asarray(key, dtype=arr.dtype).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        return None
    if key_arr.size != arr.shape[2]:
        return None
    return np.any(arr != key_arr, axis=2)


def _pixels_from_pil(
    dec: _Decoded, icc: bytes | None
) -> tuple[np.ndarray, np.ndarray | None, int, bytes | None, bool]:
    """Convert a decoded image to (pixels, alpha, bit_depth, icc_for_pixels, via_opencv).

    pixels: (H, W, 1|3) float32 in [0, 1]; alpha: (H, W) float32 or None.
    via_opencv is True when the pixels come from OpenCV, i.e. in the file's
    stored orientation even where Pillow would have rotated them.
    """
    im, rawmode = dec.im, dec.rawmode
    mode = im.mode
    info = im.info
    key = info.get("transparency")

    # 16-bit samples that Pillow itself can only deliver truncated to 8 bits.
    if _is_16bit(im, rawmode) and mode in ("RGB", "RGBA", "LA"):
        decoded = _decode_16bit_cv2(dec)
        if decoded is not None:
            px16, a16 = decoded
            alpha = _to_float(a16, 65535) if a16 is not None else None
            if alpha is None and key is not None and mode == "RGB" and not isinstance(key, bytes):
                mask = _transparency_mask(px16, key)
                alpha = None if mask is None else mask.astype(np.float32)
            return _to_float(px16, 65535), alpha, 16, _icc_for(icc, px16.shape[2] == 1), True
        _log.warning("16-bit %s data could not be decoded at full precision; using 8 bits", im.format)

    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "I;16S", "I;32", "I;32S", "I;32B"):
        arr = np.asarray(im)
        if mode.startswith("I;16"):
            px = _to_float(arr.astype(np.uint16, copy=False), 65535)
        else:  # 32-bit integer: taken as 16-bit-range data
            px = _to_float(np.clip(arr, 0, 65535), 65535)
        alpha = None
        if key is not None and not isinstance(key, bytes):
            mask = _transparency_mask(arr[:, :, None], key)
            alpha = None if mask is None else mask.astype(np.float32)
        return px[:, :, None], alpha, 16, _icc_for(icc, True), False
    if mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        peak = float(arr.max()) if arr.size else 0.0
        if peak > 1.0:  # float data in 8- or 16-bit units rather than [0, 1]
            arr = arr / np.float32(255.0 if peak <= 255.0 else 65535.0)
        return np.clip(arr, 0.0, 1.0)[:, :, None], None, 16, _icc_for(icc, True), False

    gray_palette = False
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or key is not None or (im.palette is not None and im.palette.mode == "RGBA")
        im = im.convert("RGBA" if has_alpha else "RGB")
        gray_palette = icc is None or _icc_colour_space(icc) == b"GRAY"
    elif mode == "1":
        im = im.convert("L")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode == "CMYK":
        im, icc = _cmyk_to_rgb(im, icc), None
    elif mode == "LAB":
        im, icc = _lab_to_rgb(im), None
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
        if mode != "RGBX":
            icc = None  # the profile described the original colour model

    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    colour = arr.shape[2] in (3, 4)
    ncol = 3 if colour else 1
    px8, a8 = arr[:, :, :ncol], (arr[:, :, ncol] if arr.shape[2] in (2, 4) else None)
    alpha = _to_float(a8, 255) if a8 is not None else None
    if alpha is None and key is not None and im.mode in ("L", "RGB") and not isinstance(key, bytes):
        mask = _transparency_mask(px8, key)
        alpha = None if mask is None else mask.astype(np.float32)
    if gray_palette and colour and np.array_equal(px8[:, :, 0], px8[:, :, 1]) and np.array_equal(px8[:, :, 1], px8[:, :, 2]):
        px8 = px8[:, :, :1]
    return _to_float(px8, 255), alpha, 8, _icc_for(icc, px8.shape[2] == 1), False


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
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
            empty/truncated/corrupt data, unknown format, too many pixels, ...).
            Broken ICC/EXIF metadata that does not prevent decoding is dropped
            silently instead.
    """
    p = Path(path)
    dec = _decode(_read_bytes(p), max_pixels, p)
    im = dec.im
    try:
        # Pillow's warnings about odd metadata are filtered at module level (see top).
        icc = im.info.get("icc_profile") or None
        if icc is not None and not _icc_is_usable(icc):
            icc = None
        exif, orientation = _extract_exif(im, dec.tiff_orientation)
        xmp = _extract_xmp(im)
        dpi = _extract_dpi(im)
        frames = max(1, int(getattr(im, "n_frames", 1) or 1))
        pixels, alpha, bit_depth, icc, via_opencv = _pixels_from_pil(dec, icc)
        source_format = "JPEG" if im.format == "MPO" else (im.format or "UNKNOWN")
        jpeg_quality = _jpeg_quality(im)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError("not enough memory to decode the image", p) from None
    except Exception as e:
        raise ImageReadError(f"cannot convert {im.format} image in mode {im.mode}: {_one_line(e)}", p) from None
    finally:
        im.close()

    # `orientation` relates the stored pixels to upright; Pillow may already
    # have applied it (TIFF), OpenCV output never has.
    remaining = 1 if dec.pillow_oriented and not via_opencv else orientation
    if remaining != 1:
        pixels = _apply_orientation(pixels, remaining)
        if alpha is not None:
            alpha = _apply_orientation(alpha, remaining)
    if dpi is not None and orientation >= 5:
        dpi = (dpi[1], dpi[0])
    return Image(
        pixels=np.ascontiguousarray(pixels, dtype=np.float32),
        alpha=None if alpha is None else np.ascontiguousarray(alpha, dtype=np.float32),
        bit_depth=bit_depth,
        icc_profile=icc,
        exif=exif,
        source_format=source_format,
        dpi=dpi,
        xmp=xmp,
        frames=frames,
        jpeg_quality=jpeg_quality,
    )


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record of which model and settings made an imgtrans output, or None if *path* has none.

    This is the *provenance* dict given to :func:`write_image` (string values),
    wherever the format keeps it: the PNG text chunk "imgtrans", or the XMP
    property ``imgtrans:provenance`` in JPEG/WebP/TIFF.  Files written by
    earlier versions, which kept it in EXIF ImageDescription (with Software
    "imgtrans"), are read too.  Only the file's headers are parsed.

    Raises:
        ImageReadError: if the file cannot be opened or is not an image.
    """
    p = Path(path)
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed by the with block below, after the errors are mapped
    except OSError as e:
        raise ImageReadError(_os_reason(e), p) from None
    with fh:
        with _PIL_LOCK:
            saved = PILImage.MAX_IMAGE_PIXELS
            PILImage.MAX_IMAGE_PIXELS = None  # only metadata is read
            try:
                im = PILImage.open(fh, formats=_READ_FORMATS)
            except OSError as e:
                unknown = isinstance(e, PILImage.UnidentifiedImageError)
                raise ImageReadError("not an image (unrecognised format)" if unknown else _os_reason(e), p) from None
            except Exception as e:
                raise ImageReadError(f"cannot read the image's metadata: {_one_line(e)}", p) from None
            finally:
                PILImage.MAX_IMAGE_PIXELS = saved
        with im:
            record = _parse_record(im.info.get("imgtrans"))  # PNG text chunk
            if record is not None:
                return record
            xmp = _extract_xmp(im)
            if xmp is not None:
                record = _parse_record(_xmp_read_record(xmp))
                if record is not None:
                    return record
            with contextlib.suppress(Exception):
                exif = im.getexif()
                if _is_legacy_record(exif):
                    return _parse_record(exif.get(_IMAGE_DESCRIPTION))
    return None


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def _quantize(x: np.ndarray, bits: int) -> np.ndarray:
    """float [0, 1] -> uint8/uint16 via round(clip(x) * max); NaN -> 0.

    Already-quantised pixels (uint8/uint16, as the engine assembles large outputs) are returned
    as they are when the depth matches (no copy), else rescaled exactly."""
    maxval = 255 if bits == 8 else 65535
    if x.dtype == np.uint8:
        return x if bits == 8 else x.astype(np.uint16) * np.uint16(257)
    if x.dtype == np.uint16:
        if bits == 16:
            return x
        return ((x.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    y = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(y, 0.0, 1.0, out=y)
    y *= np.float32(maxval)
    np.rint(y, out=y)
    return y.astype(np.uint8 if bits == 8 else np.uint16)


def _checked_arrays(img: Image) -> tuple[np.ndarray, np.ndarray | None]:
    px = np.asarray(img.pixels)
    if px.ndim == 2:
        px = px[:, :, None]
    if px.ndim != 3 or px.shape[2] not in (1, 3) or px.shape[0] == 0 or px.shape[1] == 0:
        raise ImageWriteError(f"invalid pixel array shape {px.shape} (expected (H, W, 1) or (H, W, 3))")
    if not (np.issubdtype(px.dtype, np.floating) or px.dtype in (np.uint8, np.uint16)):
        raise ImageWriteError(f"pixels must be floats in [0, 1] (or uint8/uint16), got {px.dtype}")
    alpha = None
    if img.alpha is not None:
        alpha = np.asarray(img.alpha)
        if alpha.ndim == 3 and alpha.shape[2] == 1:
            alpha = alpha[:, :, 0]
        if alpha.shape != px.shape[:2]:
            raise ImageWriteError(f"alpha shape {alpha.shape} does not match pixels {px.shape[:2]}")
        if not np.issubdtype(alpha.dtype, np.floating):
            raise ImageWriteError(f"alpha must be floats in [0, 1], got {alpha.dtype}")
    return px, alpha


def _output_exif(exif: bytes | None, mark_software: bool, size: tuple[int, int] | None = None) -> bytes | None:
    """EXIF for the output: Orientation 1, the pixel dimensions set to ``size`` (width, height) where
    the block states them, and no IFD1 thumbnail (it shows the source).

    The source's block is copied byte for byte with just those values patched, which keeps maker
    notes and every text exactly; it keeps the source's Software tag too (imgtrans names itself in
    its XMP provenance record). Only a block that cannot be patched (or an earlier imgtrans output,
    whose ImageDescription held the provenance record: that record is dropped) is re-encoded, text
    as its original bytes; a re-encoded or new block gets Software "imgtrans" if *mark_software*.
    """
    obj: PILImage.Exif | None = None
    if exif:
        try:
            obj = _load_exif(exif)
        except Exception:
            _log.warning("dropping unreadable EXIF data")
            obj = None
        legacy = obj is not None and _is_legacy_record(obj)
        if not legacy:
            try:  # byte-exact copy: keeps maker notes and other offset-sensitive data
                return _exif_reset_orientation(exif, size)
            except (ValueError, struct.error):
                pass
        if obj is not None and legacy:
            del obj[_IMAGE_DESCRIPTION]
    if obj is None:
        if not mark_software:
            return None
        obj = PILImage.Exif()
    _keep_text_bytes(obj)
    if _ORIENTATION in obj:
        obj[_ORIENTATION] = 1
    if mark_software:
        obj[_SOFTWARE] = "imgtrans"
    if size is not None:
        with contextlib.suppress(Exception):
            sub = obj.get_ifd(_EXIF_IFD)
            for tag, value in zip(_PIXEL_DIMENSIONS, size):
                if tag in sub:
                    sub[tag] = value
    try:
        return obj.tobytes()
    except Exception:
        _log.warning("dropping EXIF data that cannot be re-encoded")
        return None


def _pil_image(arr: np.ndarray) -> PILImage.Image:
    """uint8 (H, W, 1|2|3|4) -> Pillow L / LA / RGB / RGBA."""
    return PILImage.fromarray(np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr))


# 8-bit images at least this large go through the band-wise encoder, whose peak is the file's size:
# OpenCV first needs a BGR copy of the pixels (768 MB for a 16384x16384 RGB image)
_LARGE_PNG_BYTES = 256 << 20


def _encode_png(
    arr: np.ndarray, icc: bytes | None, exif: bytes | None, dpi: Any, text: str | None, xmp: bytes | None = None
) -> bytes:
    """PNG of a uint8/uint16 (H, W, 1-4) array with the given metadata chunks.

    Deflate runs with zlib's run-length strategy after per-row adaptive filtering: on photos and
    paintings it encodes ~40 % faster than level 3 with the default strategy (~3.5x faster than
    Pillow's default level 6) for files 0-7 % larger (benchmarks/png_encode.py)."""
    chunks = []
    if icc:
        chunks.append(_pngchunks.iccp_chunk(icc))
    if dpi:
        chunks.append(_pngchunks.phys_chunk(dpi))
    if exif:
        chunks.append(_pngchunks.exif_chunk(exif))
    if text is not None:
        chunks.append(_pngchunks.text_chunk("imgtrans", text))
    if xmp:  # uncompressed iTXt: keyword, compression flag and method, empty language and translated keyword
        chunks.append(_pngchunks.make_chunk(b"iTXt", _PNG_XMP_KEY.encode("latin-1") + b"\0\0\0\0\0" + xmp))
    if arr.dtype == np.uint8 and arr.nbytes >= _LARGE_PNG_BYTES:  # filtered and compressed band by band
        return _pngchunks.encode_png_buffer(arr, chunks, compress_level=3, strategy=zlib.Z_RLE)  # type: ignore[return-value]
    if arr.shape[2] != 2:  # OpenCV's libpng is the fastest; it cannot do grey+alpha
        try:
            import cv2
        except ImportError:
            pass
        else:
            c = arr.shape[2]
            bgr = arr[:, :, ::-1] if c == 3 else (arr[:, :, [2, 1, 0, 3]] if c == 4 else arr[:, :, 0])
            params = [cv2.IMWRITE_PNG_COMPRESSION, 3, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
            ok, enc = cv2.imencode(".png", np.ascontiguousarray(bgr), params)
            if ok:
                return _pngchunks.insert_chunks(enc.tobytes(), chunks)
    return _pngchunks.encode_png(arr, chunks, compress_level=3, strategy=zlib.Z_RLE)


def _encode_tiff(arr: np.ndarray, icc: bytes | None, exif: bytes | None, dpi: Any, xmp: bytes | None = None) -> bytes:
    """Baseline little-endian TIFF: Deflate + horizontal predictor, 8 or 16 bits, grey/RGB +/- alpha.

    ``arr`` is (H, W, C) uint8/uint16, C in 1, 2 (grey+alpha), 3, 4 (RGBA).
    Tags are serialised by Pillow's ImageFileDirectory_v2, which also writes
    the EXIF/GPS sub-IFDs and places the strips after the IFD.
    """
    from PIL import TiffImagePlugin, TiffTags

    h, w, c = arr.shape
    bits = arr.dtype.itemsize * 8
    data = np.ascontiguousarray(arr, dtype="<u2" if bits == 16 else np.uint8)
    diff = data.copy()
    diff[:, 1:] -= data[:, :-1]  # TIFF predictor 2 (wraps modulo 2**bits)

    row_bytes = w * c * data.itemsize
    rows_per_strip = max(1, min(h, (256 << 10) // row_bytes))
    strips = [zlib.compress(diff[y : y + rows_per_strip].tobytes(), 6) for y in range(0, h, rows_per_strip)]
    offsets = [0]
    for s in strips[:-1]:
        offsets.append(offsets[-1] + len(s))

    def build(with_exif: bool) -> bytes:
        ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
        if with_exif and exif:
            src = _copy_exif_tags(_load_exif(exif))
            for tag, value in src.items():
                ifd[tag] = value
        if xmp:
            ifd[TiffImagePlugin.XMP] = xmp
        if icc:
            ifd[TiffImagePlugin.ICCPROFILE] = icc
        if dpi:
            ifd[TiffImagePlugin.RESOLUTION_UNIT] = 2
            ifd[TiffImagePlugin.X_RESOLUTION] = float(dpi[0])
            ifd[TiffImagePlugin.Y_RESOLUTION] = float(dpi[1])
        ifd[TiffImagePlugin.IMAGEWIDTH] = w
        ifd[TiffImagePlugin.IMAGELENGTH] = h
        ifd[TiffImagePlugin.BITSPERSAMPLE] = (bits,) * c
        ifd[TiffImagePlugin.COMPRESSION] = 8  # Adobe Deflate
        ifd[TiffImagePlugin.PHOTOMETRIC_INTERPRETATION] = 1 if c <= 2 else 2
        ifd[TiffImagePlugin.SAMPLESPERPIXEL] = c
        ifd[TiffImagePlugin.ROWSPERSTRIP] = rows_per_strip
        ifd[TiffImagePlugin.PLANAR_CONFIGURATION] = 1
        ifd[TiffImagePlugin.PREDICTOR] = 2
        if c in (2, 4):
            ifd[TiffImagePlugin.EXTRASAMPLES] = 2  # unassociated alpha
        ifd.tagtype[TiffImagePlugin.STRIPOFFSETS] = TiffTags.LONG
        ifd.tagtype[TiffImagePlugin.STRIPBYTECOUNTS] = TiffTags.LONG
        ifd[TiffImagePlugin.STRIPOFFSETS] = tuple(offsets)  # made absolute by tobytes()
        ifd[TiffImagePlugin.STRIPBYTECOUNTS] = tuple(len(s) for s in strips)
        return ifd.tobytes(8)

    try:
        body = build(True)
    except Exception:
        if not exif:
            raise
        _log.warning("dropping EXIF data that cannot be stored in TIFF")
        body = build(False)
    if 8 + len(body) + sum(len(s) for s in strips) >= 1 << 32:
        raise ImageWriteError("image too large for TIFF (over 4 GiB compressed)")
    return b"II*\x00" + struct.pack("<I", 8) + body + b"".join(strips)


def _encode_bmp_rgba(arr: np.ndarray, dpi: Any) -> bytes:
    """32-bit BMP with a BITMAPV4HEADER and an explicit alpha mask.

    Pillow's own BMP writer stores RGBA as plain 32-bit BI_RGB, whose fourth
    byte readers (Pillow included) treat as padding, losing the alpha.
    """
    h, w, _ = arr.shape
    ppm = [int(round(d / 0.0254)) for d in dpi] if dpi else [0, 0]
    pixels = np.ascontiguousarray(arr[::-1, :, [2, 1, 0, 3]]).tobytes()  # bottom-up BGRA
    header_size = 14 + 108
    info = struct.pack(
        "<IiiHHIIiiII4I",
        108, w, h, 1, 32, 3, len(pixels), ppm[0], ppm[1], 0, 0,  # 3 = BI_BITFIELDS
        0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000,  # R, G, B, A masks
    )
    info += struct.pack("<I", 0x73524742) + bytes(36 + 12)  # LCS_sRGB; unused endpoints/gamma
    filehdr = struct.pack("<2sIHHI", b"BM", header_size + len(pixels), 0, 0, header_size)
    return filehdr + info + pixels


def _encode(fmt: str, img: Image, jpeg_quality: int, provenance: dict[str, str] | None) -> bytes:
    px, alpha = _checked_arrays(img)
    gray = px.shape[2] == 1
    size = (px.shape[1], px.shape[0])  # metadata that states the image's size must state the output's
    text = None if provenance is None else json.dumps({str(k): str(v) for k, v in provenance.items()}, sort_keys=True)
    dpi = img.dpi if img.dpi and all(np.isfinite(d) and d > 0 for d in img.dpi) else None
    bits = 16 if img.bit_depth == 16 and fmt in ("PNG", "TIFF") else 8
    limit = {"JPEG": 65535, "WEBP": 16383}.get(fmt)
    if limit is not None and max(px.shape[:2]) > limit:
        raise ImageWriteError(
            f"image is {px.shape[1]}x{px.shape[0]}, too large for {fmt} (at most {limit} pixels per side); use png or tiff"
        )

    if fmt == "JPEG":
        if not (isinstance(jpeg_quality, int) and 1 <= jpeg_quality <= 100):
            raise ImageWriteError(f"JPEG quality must be an integer from 1 to 100, got {jpeg_quality!r}")
        if alpha is not None:  # JPEG has no alpha: composite onto white
            _log.info("JPEG output has no transparency; compositing onto white")
            a = np.clip(np.nan_to_num(alpha.astype(np.float32)), 0.0, 1.0)[:, :, None]
            scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(px.dtype, 1.0)
            px = px.astype(np.float32) / np.float32(scale) * a + (1.0 - a)
        exif = _output_exif(img.exif, text is not None, size)
        if exif and len(exif) > 65533:
            _log.warning("EXIF block too large for JPEG (%d bytes); dropping it", len(exif))
            exif = None
        xmp = _output_xmp(img.xmp, text, size)
        if xmp and len(xmp) > _JPEG_XMP_LIMIT and text is not None:
            _log.warning("XMP packet too large for JPEG with the imgtrans record; storing it without the record")
            xmp = _output_xmp(img.xmp, None, size)
        if xmp and len(xmp) > _JPEG_XMP_LIMIT:
            _log.warning("XMP packet too large for JPEG (%d bytes); dropping it", len(xmp))
            xmp = None
        kwargs: dict[str, Any] = {"quality": jpeg_quality, "optimize": True}
        kwargs["subsampling"] = 0 if jpeg_quality >= 90 else 2  # 4:4:4 at high quality, else 4:2:0
        icc = _icc_for(img.icc_profile, gray)
        if icc:
            kwargs["icc_profile"] = icc
        if exif:
            kwargs["exif"] = exif
        if xmp:
            kwargs["xmp"] = xmp
        if dpi:
            kwargs["dpi"] = dpi
        buf = io.BytesIO()
        _pil_image(_quantize(px, 8)).save(buf, format="JPEG", **kwargs)
        return buf.getvalue()

    channels = [_quantize(px, bits)]
    if alpha is not None:
        channels.append(_quantize(alpha, bits)[:, :, None])
    arr = np.concatenate(channels, axis=2) if len(channels) > 1 else channels[0]

    if fmt == "PNG":
        return _encode_png(arr, _icc_for(img.icc_profile, gray), _output_exif(img.exif, False, size), dpi, text,
                           _output_xmp(img.xmp, None, size))
    if fmt == "TIFF":
        if bits == 16 and arr.shape[2] == 2:
            # Pillow cannot read 16-bit grey+alpha TIFF; store it as RGBA (no precision lost).
            arr = arr[:, :, [0, 0, 0, 1]]
            gray = False
        exif = _output_exif(img.exif, text is not None, size)
        return _encode_tiff(arr, _icc_for(img.icc_profile, gray), exif, dpi, _output_xmp(img.xmp, text, size))
    if fmt == "WEBP":  # no grey mode in WebP; lossless so nothing is lost
        if gray:
            arr = arr[:, :, [0, 0, 0, 1]] if arr.shape[2] == 2 else np.repeat(arr, 3, axis=2)
        # In lossless mode quality/method only set the effort: 20/1 is ~10x faster
        # than the defaults and the files are within 1% of their size.
        kwargs = {"lossless": True, "exact": True, "quality": 20, "method": 1}
        icc = _icc_for(img.icc_profile, False)
        exif = _output_exif(img.exif, text is not None, size)
        xmp = _output_xmp(img.xmp, text, size)
        if icc:
            kwargs["icc_profile"] = icc
        if exif:
            kwargs["exif"] = exif
        if xmp:
            kwargs["xmp"] = xmp
        buf = io.BytesIO()
        _pil_image(arr).save(buf, format="WEBP", **kwargs)
        return buf.getvalue()
    if fmt == "BMP":  # BMP carries no ICC/EXIF/text
        if arr.shape[2] == 2:
            arr = arr[:, :, [0, 0, 0, 1]]
        if arr.shape[2] == 4:
            return _encode_bmp_rgba(arr, dpi)
        buf = io.BytesIO()
        _pil_image(arr).save(buf, format="BMP", **({"dpi": dpi} if dpi else {}))
        return buf.getvalue()
    raise ImageWriteError(f"unsupported output format {fmt}")


def _new_file_mode(path: Path) -> int:
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# Temp files are ``.<name>.<8 random chars>.part`` (tempfile.mkstemp) next to the target; images, and
# the JSON shard summaries the batch writes through write_bytes_atomic.
_PART_RE = re.compile(r"^\..+\.(?:png|jpg|jpeg|webp|tif|tiff|bmp|json)\.[a-z0-9_]{8}\.part$", re.IGNORECASE)
_SWEPT_DIRS: set[str] = set()
_SWEEP_LOCK = threading.Lock()
_STALE_AFTER_S = 1.0  # a temp file is only swept when unlocked and not modified for this long


def _try_lock(fd: int) -> bool:
    """Take a non-blocking exclusive flock on *fd*; False if another process holds it (or no flock)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, no sweeping
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def sweep_stale_temp_files(folder: str | os.PathLike[str]) -> None:
    """Remove the temp files that killed writers left in *folder* (see _sweep_stale_parts).

    write_image does this by itself on its first write into a folder; a batch
    that may write nothing into a folder (every output already exists) can
    call this at its start so no stale ``.part`` file outlives a re-run.
    """
    _sweep_stale_parts(Path(folder))


def _sweep_stale_parts(parent: Path) -> None:
    """Remove temp files that a killed writer left in *parent* (once per folder per process).

    A writer holds an exclusive flock on its temp file until the rename, and
    the kernel drops the lock when the process dies (even by SIGKILL), so a
    temp file whose lock can be taken belongs to nobody alive and is removed.
    Only names of the ``.<name>.<ext>.<random>.part`` form with an image
    extension are touched.  No-op without flock (Windows).
    """
    key = os.path.realpath(parent)
    with _SWEEP_LOCK:  # held for the whole sweep: this process's writers wait, then create their temp files
        if key in _SWEPT_DIRS:
            return
        _SWEPT_DIRS.add(key)
        try:
            entries = [e for e in os.scandir(parent) if _PART_RE.match(e.name)]
        except OSError:
            return
        now = time.time()
        for entry in entries:
            try:
                fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                # Another live process may have created its temp file a moment ago and not locked
                # it yet: only files untouched for a while are candidates.
                if stat.S_ISREG(st.st_mode) and now - st.st_mtime > _STALE_AFTER_S and _try_lock(fd):
                    os.unlink(entry.path)
                    _log.info("removed %s, left by an interrupted write", entry.path)
            except OSError:
                pass
            finally:
                os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write *data* to *path* via a fsynced ``.<name>.<random>.part`` sibling and os.replace.

    The temp file is flock-ed until it has been renamed, which lets a later
    process remove the temp files of writers that were killed (see
    _sweep_stale_parts).
    """
    parent = path.parent
    if path.is_dir():
        raise ImageWriteError("output path is a directory", path)
    if not parent.is_dir():
        raise ImageWriteError(f"output directory does not exist: {parent}", path)
    mode = _new_file_mode(path)
    _sweep_stale_parts(parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=".part", dir=parent)
    except OSError as e:
        raise ImageWriteError(_os_reason(e), path, e.errno) from None
    try:
        locked = _try_lock(fd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            if locked:  # rename while still holding the lock (POSIX allows renaming an open file)
                os.fchmod(f.fileno(), mode)
                os.replace(tmp, path)
        if not locked:
            os.chmod(tmp, mode)
            os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise ImageWriteError(_os_reason(e), path, e.errno) from None
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        with contextlib.suppress(OSError):
            dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write *data* to *path* the way images are written (fsynced temp file, rename, directory fsync;
    a killed writer's temp file is swept by the next writer): for the small files the batch keeps
    beside its outputs (shard summaries). Raises :class:`ImageWriteError` (``errno`` set on OS errors)."""
    p = Path(path)
    _atomic_write(p, data)
    return p


def write_image(
    img: Image,
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    jpeg_quality: int = 95,
    provenance: dict[str, str] | None = None,
) -> Path:
    """Encode *img* and write it atomically to *path*; returns ``Path(path)``.

    The format comes from *fmt* ("png", "jpg"/"jpeg", "webp", "tiff"/"tif",
    "bmp") or else from the path's suffix; the path is used as given (its
    suffix is not changed).

    * PNG/TIFF: 16-bit when ``img.bit_depth == 16``, else 8-bit; grey stays
      grey (except 16-bit grey+alpha TIFF, stored as RGBA); alpha kept.
    * JPEG: 8-bit, quality *jpeg_quality*, 4:4:4 chroma at quality >= 90; alpha
      is composited onto white (JPEG has no transparency).
    * WebP: lossless (exact RGB under transparent pixels); grey becomes RGB.
    * BMP: 8-bit, no metadata.

    The ICC profile is embedded when it matches the output colour space, the
    EXIF block (Orientation 1; the caption in ImageDescription and every other
    tag kept) and the XMP packet (tiff:Orientation 1) in PNG/JPEG/WebP/TIFF,
    DPI where supported.  *provenance* is stored as one JSON text: a PNG
    ``tEXt`` chunk keyed "imgtrans", or the XMP property
    ``imgtrans:provenance`` (and EXIF Software "imgtrans") in JPEG/WebP/TIFF;
    :func:`read_provenance` reads it back from any of them.

    Floats are converted with ``round(clip(x, 0, 1) * 255)`` (or 65535);
    NaN becomes 0.

    Temp files that an earlier, killed writer left in the destination folder
    (``.<name>.<random>.part`` whose writer is gone) are removed on the first
    write into that folder.

    Raises:
        ImageWriteError: on any failure; no partial or temporary file is left
            behind and an existing file at *path* is untouched.  ``errno`` is
            set when the cause was an OS error (``errno.ENOSPC``: disk full).
    """
    p = Path(path)
    ext = (fmt if fmt is not None else p.suffix).strip().lower().lstrip(".")
    pil_fmt = _WRITE_FORMATS.get(ext)
    if pil_fmt is None:
        what = f"'{ext}'" if ext else "(no file extension)"
        raise ImageWriteError(f"unsupported output format {what}; use png, jpg, webp, tiff or bmp", p)
    try:
        data = _encode(pil_fmt, img, jpeg_quality, provenance)
    except ImageWriteError as e:
        e.path = p
        raise
    except MemoryError:
        raise ImageWriteError("not enough memory to encode the image", p) from None
    except OSError as e:
        raise ImageWriteError(f"cannot encode {pil_fmt}: {_os_reason(e)}", p) from None
    except Exception as e:
        raise ImageWriteError(f"cannot encode {pil_fmt}: {_one_line(e)}", p) from None
    _atomic_write(p, data)
    return p
