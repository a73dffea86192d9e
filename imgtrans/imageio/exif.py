"""EXIF blocks: the orientation they state, and copies made fit for an output.

An EXIF block here is ``b"Exif\\0\\0"`` + a TIFF structure, as Pillow's ``exif=`` expects. A block is
copied byte for byte where possible, with only Orientation (set to 1: the pixels are upright) and the
pixel dimensions patched in place, which keeps maker notes and other offset-sensitive data intact;
only a block that cannot be patched is re-encoded by Pillow, text values as their original bytes.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from typing import Any

from PIL import Image as PILImage

from imgtrans.imageio.xmp import raw_xmp, xmp_orientation

ORIENTATION = 0x0112
IMAGE_DESCRIPTION = 0x010E
SOFTWARE = 0x0131
EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_INTEROP_IFD = 0xA005  # inside the Exif sub-IFD
_EXIF_HEADER = b"Exif\x00\x00"
#: Exif sub-IFD PixelXDimension, PixelYDimension: the image's size, kept equal to the output's.
PIXEL_DIMENSIONS = (0xA002, 0xA003)
#: Descriptive IFD0 tags carried between formats; TIFF layout tags
#: (strip offsets, bits per sample, ...) must never be copied.
_EXIF_IFD0_TAGS = (0x010D, 0x010E, 0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x013B, 0x013C, 0x8298)


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


def patch_exif_in_place(buf: bytearray, base: int = 0, size: tuple[int, int] | None = None,
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
        if tag == ORIENTATION:
            _set_int_entry(buf, endian, entry, typ, n, 1)
        elif tag == EXIF_IFD and n == 1 and typ in (4, 13):
            (exif_ifd,) = struct.unpack_from(endian + "I", buf, entry + 8)
    if drop_thumbnail:
        (count,) = struct.unpack_from(endian + "H", buf, base + ifd)
        struct.pack_into(endian + "I", buf, base + ifd + 2 + 12 * count, 0)
    if size is None or exif_ifd is None:
        return
    for tag, typ, n, entry in _ifd_entries(buf, endian, base, exif_ifd):
        if tag in PIXEL_DIMENSIONS:
            _set_int_entry(buf, endian, entry, typ, n, size[PIXEL_DIMENSIONS.index(tag)])


def exif_reset_orientation(raw: bytes, size: tuple[int, int] | None = None) -> bytes:
    """Copy of an EXIF block with Orientation set to 1 and, with ``size`` (width, height), the
    pixel dimensions set to it (see patch_exif_in_place)."""
    buf = bytearray(raw if raw.startswith(_EXIF_HEADER) else _EXIF_HEADER + raw)
    patch_exif_in_place(buf, len(_EXIF_HEADER), size, drop_thumbnail=True)
    return bytes(buf)


def load_exif(raw: bytes) -> PILImage.Exif:
    exif = PILImage.Exif()
    exif.load(raw if raw.startswith(_EXIF_HEADER) else _EXIF_HEADER + raw)
    return exif


def _orientation_value(exif: PILImage.Exif) -> int:
    value = exif.get(ORIENTATION, 1)
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


def keep_text_bytes(exif: PILImage.Exif) -> None:
    """In place: every text value of IFD0 and of the Exif/GPS sub-IFDs as its original bytes."""
    for tag, value in list(exif.items()):
        if isinstance(value, str):
            exif[tag] = _text_as_bytes(value)
    for tag in (EXIF_IFD, _GPS_IFD):
        with contextlib.suppress(Exception):
            sub = exif.get_ifd(tag)
            for key, value in list(sub.items()):
                sub[key] = _text_as_bytes(value)


def copy_exif_tags(src: PILImage.Exif) -> PILImage.Exif:
    """A fresh Exif with only the descriptive IFD0 tags and the Exif/GPS sub-IFDs of *src* (the Exif
    sub-IFD with its Interop sub-IFD), text values as their original bytes."""
    out = PILImage.Exif()
    for tag in _EXIF_IFD0_TAGS:
        if tag in src:
            out[tag] = _text_as_bytes(src[tag])
    for tag in (EXIF_IFD, _GPS_IFD):
        with contextlib.suppress(Exception):
            sub = {key: _text_as_bytes(value) for key, value in src.get_ifd(tag).items()}
            if tag == EXIF_IFD and _INTEROP_IFD in sub:
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


def extract_exif(im: PILImage.Image, tiff_orientation: int = 1) -> tuple[bytes | None, int]:
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
            exif = load_exif(raw)
        except Exception:  # noqa: BLE001 - broken EXIF: the image is read without it
            return None, 1
        if not len(exif):
            return None, xmp_orientation(raw_xmp(im))
        # an EXIF block without Orientation leaves it to XMP's tiff:Orientation (as Pillow's exif_transpose)
        orientation = _orientation_value(exif) if ORIENTATION in exif else xmp_orientation(raw_xmp(im))
        try:
            return exif_reset_orientation(raw), orientation
        except (ValueError, struct.error):
            pass
        try:
            exif[ORIENTATION] = 1
            keep_text_bytes(exif)
            return exif.tobytes(), orientation
        except Exception:  # noqa: BLE001 - broken EXIF: the image is read without it
            return None, orientation
    # No raw block: TIFF tags, or PNG "Raw profile type exif" text.
    try:
        exif = im.getexif()
        if not len(exif):
            return None, tiff_orientation
        orientation = _orientation_value(exif) if ORIENTATION in exif else tiff_orientation
        out = copy_exif_tags(exif) if im.format == "TIFF" else exif
        keep_text_bytes(out)
        if ORIENTATION in out or tiff_orientation != 1:
            out[ORIENTATION] = 1
        if not len(out):
            return None, orientation
        return out.tobytes(), orientation
    except Exception:  # noqa: BLE001 - broken tags: the image is read without them
        return None, tiff_orientation
