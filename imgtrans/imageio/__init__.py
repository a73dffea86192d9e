"""Image input/output that loses nothing.

Reading (:mod:`~imgtrans.imageio.decode`) turns any supported file into an :class:`Image`: float32
pixels in ``[0, 1]`` shaped ``(H, W, C)`` (C = 1 grey or 3 RGB) plus an optional ``(H, W)`` alpha
plane, already rotated upright according to EXIF/XMP, together with the metadata worth carrying to
the output (ICC profile, EXIF, XMP, DPI) and the source precision (8 or 16 bits per channel).
:func:`read_preview` is the same decoder for display (8 bits, JPEGs at reduced scale).

Writing (:mod:`~imgtrans.imageio.encode`) does the reverse, atomically: the file is encoded in
memory and written through :mod:`imgtrans.atomic`, so a crash or a full disk never leaves a
half-written image behind.

Pillow decodes and encodes almost everything. OpenCV is used only where Pillow loses precision:
decoding 16-bit multi-channel PNG/TIFF data (:mod:`~imgtrans.imageio.samples`) and encoding PNGs
(metadata chunks are then added by :mod:`imgtrans._pngchunks`). 16-bit TIFFs are written by a
small encoder that reuses Pillow's TIFF tag serialiser.

The modules: :mod:`~imgtrans.imageio.image` (the Image type, errors, pixel helpers),
:mod:`~imgtrans.imageio.decode`, :mod:`~imgtrans.imageio.samples`, :mod:`~imgtrans.imageio.encode`,
:mod:`~imgtrans.imageio.exif`, :mod:`~imgtrans.imageio.xmp`, :mod:`~imgtrans.imageio.icc`,
:mod:`~imgtrans.imageio.provenance` (the record of which model made an output) and
:mod:`~imgtrans.imageio._pillow` (Pillow's process-wide settings).

Errors are reported as :class:`ImageReadError` / :class:`ImageWriteError` whose ``str()`` is one
human-readable line (the reason); the offending path is in the ``path`` attribute.
"""

from imgtrans.atomic import sweep_stale_temp_files
from imgtrans.imageio.decode import Preview, read_image, read_preview
from imgtrans.imageio.encode import output_format_for, write_bytes_atomic, write_image
from imgtrans.imageio.image import (
    DEFAULT_MAX_PIXELS,
    Image,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    resize_alpha,
    resize_pixels,
    to_gray,
    to_rgb,
)
from imgtrans.imageio.provenance import read_provenance

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "Image",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageWriteError",
    "Preview",
    "output_format_for",
    "read_image",
    "read_preview",
    "read_provenance",
    "resize_alpha",
    "resize_pixels",
    "sweep_stale_temp_files",
    "to_gray",
    "to_rgb",
    "write_bytes_atomic",
    "write_image",
]
