"""Pillow's process-wide state, set once for every reader and writer of :mod:`imgtrans.imageio`.

Pillow's decompression-bomb limit and truncated-image switch are process globals: they are changed
only while :data:`PIL_LOCK` is held (:func:`open_and_load`). Pillow's warnings about odd metadata and
libtiff's messages on stderr are silenced here, once, for the whole process. :data:`READ_FORMATS`
is what the readers accept.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image as PILImage, ImageFile

from imgtrans.imageio.exif import ORIENTATION
from imgtrans.imageio.image import ImageTooLargeError

_log = logging.getLogger(__name__)

#: Formats the readers accept (Pillow names).  Deliberately excludes formats
#: that run external programs (EPS) or are not raster photos.
READ_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "DIB", "GIF", "PPM", "TGA", "AVIF", "JPEG2000", "QOI")

# Pillow's decompression-bomb limit and truncated-image switch are process
# globals; they are overridden only while this lock is held.
PIL_LOCK = threading.Lock()

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
            fields = (line.split(None, 5) for line in fh if "libtiff" in line)
            paths = {f[5].strip() for f in fields if len(f) == 6}
        for lib_path in paths:
            lib = ctypes.CDLL(lib_path)
            lib.TIFFSetWarningHandler.restype = ctypes.c_void_p
            lib.TIFFSetErrorHandler.restype = ctypes.c_void_p
            lib.TIFFSetWarningHandler(None)
            lib.TIFFSetErrorHandler(None)
    except Exception:  # noqa: BLE001 - no /proc, no libtiff, symbols missing: keep libtiff's defaults
        _log.debug("could not silence libtiff", exc_info=True)


_silence_libtiff()


@dataclass
class Decoded:
    """A Pillow image after load(), plus facts only visible before load()."""

    im: PILImage.Image
    rawmode: Any  # raw mode of the first tile, e.g. "RGB;16B" for 16-bit RGB PNG
    data: bytes  # the encoded bytes that were decoded
    tiff_orientation: int = 1  # TIFF Orientation tag as stored in the file
    pillow_oriented: bool = False  # Pillow already applied tiff_orientation in load()
    reduced_from: tuple[int, int] | None = None  # (width, height) as stored, when decoded at a reduced scale


def _draft_scale(width: int, height: int, min_pixels: int) -> int:
    """The largest JPEG DCT scale-down (8, 4 or 2; else 1) that keeps at least *min_pixels*."""
    for s in (8, 4, 2):
        if (width // s) * (height // s) >= min_pixels and width >= s and height >= s:
            return s
    return 1


def open_and_load(data: bytes, max_pixels: int | None, path: Path, min_pixels: int | None = None) -> Decoded:
    """Open with Pillow, check the size against *max_pixels*, then decode.

    Pillow's own bomb guard is disabled in favour of ours and truncated files
    are errors (both are process globals, restored afterwards). With
    *min_pixels*, a JPEG is decoded at 1/2, 1/4 or 1/8 scale (Pillow's
    ``draft``, several times faster) when that leaves at least this many pixels.
    """
    with PIL_LOCK:
        saved = PILImage.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        PILImage.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            im = PILImage.open(io.BytesIO(data), formats=READ_FORMATS)
            w, h = im.size
            if max_pixels is not None and w * h > max_pixels:
                raise ImageTooLargeError(w, h, max_pixels, path)
            rawmode: Any = None
            if im.tile:
                args = im.tile[0][3]  # (codec, extents, offset, args)
                rawmode = args[0] if isinstance(args, tuple) and args else args
            tiff_orientation = 1
            if im.format == "TIFF":
                value = im.tag_v2.get(ORIENTATION)
                tiff_orientation = value if isinstance(value, int) and 1 <= value <= 8 else 1
            reduced_from = None
            if min_pixels is not None and im.format in ("JPEG", "MPO"):
                s = _draft_scale(w, h, min_pixels)
                if s > 1 and im.draft(None, (w // s, h // s)) is not None and im.size != (w, h):
                    reduced_from = (w, h)
            im.load()
            # Recent Pillow versions rotate TIFFs upright in load() and drop the tag.
            oriented = tiff_orientation != 1 and ORIENTATION not in im.tag_v2 if im.format == "TIFF" else False
            return Decoded(im, rawmode, data, tiff_orientation, oriented, reduced_from)
        finally:
            PILImage.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved
