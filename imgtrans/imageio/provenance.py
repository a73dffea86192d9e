"""The provenance record: which model and settings made an imgtrans output.

It is one JSON object with string values, written as a PNG ``tEXt`` chunk keyed "imgtrans", or as
the XMP property ``imgtrans:provenance`` in JPEG/WebP/TIFF (:mod:`imgtrans.imageio.xmp`). Files of
earlier versions kept it in EXIF ImageDescription (with Software "imgtrans"); those are read too,
and the record is dropped from such a block when it is copied to a new output.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from imgtrans.imageio._pillow import PIL_LOCK, READ_FORMATS
from imgtrans.imageio.exif import IMAGE_DESCRIPTION, SOFTWARE
from imgtrans.imageio.image import ImageReadError, one_line, os_reason
from imgtrans.imageio.xmp import extract_xmp, xmp_read_record


def record_text(provenance: dict[str, str] | None) -> str | None:
    """The record as stored: JSON with sorted keys, every key and value a string (None for none)."""
    if provenance is None:
        return None
    return json.dumps({str(k): str(v) for k, v in provenance.items()}, sort_keys=True)


def parse_record(text: Any) -> dict[str, Any] | None:
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


def is_legacy_record(exif: PILImage.Exif) -> bool:
    """True if ImageDescription holds a provenance record as earlier imgtrans wrote it (Software "imgtrans")."""
    software = exif.get(SOFTWARE)
    return (isinstance(software, str) and software.startswith("imgtrans")
            and parse_record(exif.get(IMAGE_DESCRIPTION)) is not None)


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record of which model and settings made an imgtrans output, or None if *path* has none.

    This is the *provenance* dict given to :func:`~imgtrans.imageio.encode.write_image` (string values),
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
        raise ImageReadError(os_reason(e), p) from None
    with fh:
        with PIL_LOCK:
            saved = PILImage.MAX_IMAGE_PIXELS
            PILImage.MAX_IMAGE_PIXELS = None  # only metadata is read
            try:
                im = PILImage.open(fh, formats=READ_FORMATS)
            except OSError as e:
                unknown = isinstance(e, PILImage.UnidentifiedImageError)
                raise ImageReadError("not an image (unrecognised format)" if unknown else os_reason(e), p) from None
            except Exception as e:  # noqa: BLE001 - a bad file is reported, never a crash
                raise ImageReadError(f"cannot read the image's metadata: {one_line(e)}", p) from None
            finally:
                PILImage.MAX_IMAGE_PIXELS = saved
        with im:
            record = parse_record(im.info.get("imgtrans"))  # PNG text chunk
            if record is not None:
                return record
            xmp = extract_xmp(im)
            if xmp is not None:
                record = parse_record(xmp_read_record(xmp))
                if record is not None:
                    return record
            with contextlib.suppress(Exception):
                exif = im.getexif()
                if is_legacy_record(exif):
                    return parse_record(exif.get(IMAGE_DESCRIPTION))
    return None
