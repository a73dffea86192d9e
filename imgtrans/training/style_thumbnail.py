"""The painting a style learnt from, carried in the style model's own file: a small picture of it and one
line naming it, in the safetensors metadata (data, never code), so a bundled, user-trained or imported
style shows where it came from in the Models tab and beside the Style model picker.

Keys and format: :data:`imgtrans.catalog.THUMBNAIL_KEY` (JSON ``{"mime", "width", "height", "data"}``,
``data`` the base64 of a JPEG whose long side is :data:`THUMB_LONG_SIDE`) and
:data:`imgtrans.catalog.CREDIT_KEY`. :func:`thumbnail_metadata` makes both from painting files,
:class:`~imgtrans.training.style.StyleTask` puts them in every model it exports, and
:func:`stamp_style_thumbnail` adds them to a model file that exists already (a bundled style, or one
exported before this). Reading them back is :func:`imgtrans.catalog.style_thumbnail`. No torch here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgtrans.catalog import CREDIT_KEY, THUMBNAIL_KEY, update_safetensors_metadata

THUMB_LONG_SIDE = 160  # pixels: 2x the 80 px the options panel shows, so it stays sharp on a HiDPI screen
JPEG_QUALITY = 88
GAP = 4  # white pixels between paintings when a style learnt from several


def _flat_rgb(path: str | os.PathLike) -> np.ndarray:
    """A painting as ``(H,W,3)`` float in [0,1] (through the app's decoder: upright, grey made RGB,
    transparency on white)."""
    from imgtrans.imageio import read_image, to_rgb

    img = read_image(Path(path))
    px = to_rgb(img.pixels)
    if img.alpha is not None:
        px = px * img.alpha[:, :, None] + (1.0 - img.alpha[:, :, None])
    return px


def thumbnail_jpeg(paintings: Sequence[str | os.PathLike], long_side: int = THUMB_LONG_SIDE) -> tuple[bytes, int, int]:
    """The paintings side by side (same height, :data:`GAP` px of white between them), resized so the
    long side of the whole is ``long_side``: ``(JPEG bytes, width, height)``. Raises
    :class:`imgtrans.imageio.ImageReadError` for a painting that does not decode, ``ValueError`` for
    none, :class:`imgtrans.imageio.ImageWriteError` when the temporary folder cannot be written."""
    from imgtrans.imageio import Image, resize_pixels, write_image

    if not paintings:
        raise ValueError("no painting to make a thumbnail of")
    images = [_flat_rgb(p) for p in paintings]
    gaps = GAP * (len(images) - 1)
    aspect = sum(px.shape[1] / px.shape[0] for px in images)  # total width per pixel of height
    height = long_side if aspect * long_side + gaps <= long_side else (long_side - gaps) / aspect
    height = max(8, round(height))
    parts: list[np.ndarray] = []
    for px in images:
        if parts:
            parts.append(np.ones((height, GAP, 3), np.float32))
        parts.append(resize_pixels(px, height, max(1, round(px.shape[1] * height / px.shape[0]))))
    strip = np.concatenate(parts, axis=1)
    if strip.shape[1] > long_side:  # the widths were rounded up
        strip = resize_pixels(strip, max(1, round(height * long_side / strip.shape[1])), long_side)
    # encoded by the app's writer (into a temporary file: it writes files only); sRGB, no metadata
    with tempfile.TemporaryDirectory(prefix="imgtrans-thumb-") as tmp:
        out = Path(tmp) / "thumb.jpg"
        write_image(Image(pixels=strip, alpha=None, bit_depth=8, icc_profile=None, exif=None, source_format="JPEG"),
                    out, jpeg_quality=JPEG_QUALITY)  # fmt: skip
        return out.read_bytes(), strip.shape[1], strip.shape[0]


def default_credit(paintings: Sequence[str | os.PathLike] = (), records: Sequence[Mapping[str, Any]] = ()) -> str:
    """One line naming the paintings by file name, with their licence and source package where the
    training data's manifest recorded them (``records``: :func:`imgtrans.training.style.style_image_record`
    of each; else the file names of ``paintings``)."""
    parts = []
    for rec in records or [{"file": Path(p).name} for p in paintings]:
        title = Path(str(rec.get("file", "?"))).stem.replace("_", " ")
        extra = ", ".join(str(rec[k]) for k in ("licence", "source_package") if rec.get(k))
        parts.append(f"{title} ({extra})" if extra else title)
    return "; ".join(parts)


def thumbnail_metadata(paintings: Sequence[str | os.PathLike], credit: str | None = None,
                       records: Sequence[Mapping[str, Any]] = ()) -> dict[str, str]:  # fmt: skip
    """The two metadata entries (:data:`~imgtrans.catalog.THUMBNAIL_KEY`, :data:`~imgtrans.catalog.CREDIT_KEY`)
    for a style learnt from ``paintings`` (files); ``credit`` defaults to :func:`default_credit`."""
    data, width, height = thumbnail_jpeg(paintings)
    record = {"mime": "image/jpeg", "width": width, "height": height, "data": base64.b64encode(data).decode("ascii")}
    return {THUMBNAIL_KEY: json.dumps(record, separators=(",", ":")),
            CREDIT_KEY: " ".join((credit if credit is not None
                                  else default_credit(paintings, records)).split())}  # fmt: skip


def recorded_thumbnail_metadata(paths: Sequence[str | os.PathLike],
                                records: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """:func:`thumbnail_metadata` for a run's paintings (``paths``, as its config names them) when each
    file is still there with the sha256 the model's ``style_images`` records; ``{}`` otherwise (a model
    is exported without a thumbnail rather than with a picture of another file)."""
    from imgtrans.imageio import ImageReadError, ImageWriteError

    if not paths or len(paths) != len(records):
        return {}
    try:
        for path, rec in zip(paths, records, strict=True):
            if hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest() != rec.get("sha256"):
                return {}
        return thumbnail_metadata([Path(p).expanduser() for p in paths], records=records)
    except (OSError, ValueError, AttributeError, ImageReadError, ImageWriteError):
        return {}


def stamp_style_thumbnail(model: str | os.PathLike, paintings: Sequence[str | os.PathLike],
                          credit: str | None = None) -> Path:
    """Add (or replace) the painting's thumbnail and credit line in an existing ``.safetensors`` model
    file, in place and atomically; its tensors and other metadata are kept byte for byte. For bundling
    a style: ``stamp_style_thumbnail("resources/models/x.safetensors", [painting], "Vincent van Gogh,
    The Church at Auvers (1890)")``. Raises ``ValueError`` for a file that is not safetensors,
    :class:`imgtrans.imageio.ImageReadError` for a painting that does not decode,
    :class:`imgtrans.imageio.ImageWriteError` when the file cannot be written."""
    model = Path(model)
    if model.suffix.lower() != ".safetensors":
        raise ValueError(f"{model.name}: only a .safetensors model carries a thumbnail")
    return update_safetensors_metadata(model, thumbnail_metadata(paintings, credit))


def fetched_painting(meta: Mapping[str, str]) -> Path | None:
    """The fetched copy (``training/data/fetch.py``'s folder) of the first painting a style model's
    metadata records in ``style_images``, found by file name, or None when it is not fetched."""
    from imgtrans.paths import fetched_data_dir

    names = [item["file"] for item in json.loads(meta.get("style_images") or "[]")]
    found = [p for name in names[:1] for p in sorted(fetched_data_dir().glob(f"*/{name}"))]
    return found[0] if found else None
