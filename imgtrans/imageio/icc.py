"""ICC profiles: which colour space a profile describes, whether it is usable, and whether it
fits an output's pixels."""

from __future__ import annotations

import io


def icc_colour_space(icc: bytes | None) -> bytes | None:
    """The ICC header's data colour space (b"RGB ", b"GRAY", b"CMYK", ...), or None if not a profile."""
    if not icc or len(icc) < 128 or icc[36:40] != b"acsp":
        return None
    return bytes(icc[16:20])


def icc_is_usable(icc: bytes) -> bool:
    if icc_colour_space(icc) is None:
        return False
    try:
        from PIL import ImageCms
    except ImportError:  # Pillow built without LittleCMS: trust the header
        return True
    try:
        ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except Exception:  # noqa: BLE001 - whatever fails, the profile is unusable
        return False
    return True


def icc_for(icc: bytes | None, gray: bool) -> bytes | None:
    """Return *icc* if it is a valid profile for the output's colour space, else None."""
    if not icc:
        return None
    want = b"GRAY" if gray else b"RGB "
    if icc_colour_space(icc) != want or not icc_is_usable(icc):
        return None
    return bytes(icc)
