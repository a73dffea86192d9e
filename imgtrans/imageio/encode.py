"""Writing image files: :func:`write_image` encodes in memory and writes atomically.

PNG goes through OpenCV's libpng (or :mod:`imgtrans._pngchunks` for grey+alpha and very large
images) with the metadata chunks added after; 16-bit TIFF through a small encoder here that reuses
Pillow's tag serialiser; JPEG, WebP and BMP through Pillow. The metadata that states the image's
size or orientation is made to state the output's (:mod:`~imgtrans.imageio.exif`,
:mod:`~imgtrans.imageio.xmp`), and the provenance record is stored where the format keeps it
(:mod:`~imgtrans.imageio.provenance`). The bytes reach the disk through :mod:`imgtrans.atomic`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from imgtrans import _pngchunks
from imgtrans.atomic import AtomicWriteError, write_bytes
from imgtrans.imageio.exif import (
    EXIF_IFD,
    IMAGE_DESCRIPTION,
    ORIENTATION,
    PIXEL_DIMENSIONS,
    SOFTWARE,
    copy_exif_tags,
    exif_reset_orientation,
    keep_text_bytes,
    load_exif,
)
from imgtrans.imageio.icc import icc_for
from imgtrans.imageio.image import Image, ImageWriteError, one_line, os_reason
from imgtrans.imageio.provenance import is_legacy_record, record_text
from imgtrans.imageio.xmp import JPEG_XMP_LIMIT, PNG_XMP_KEY, output_xmp

_log = logging.getLogger(__name__)

#: Output extension -> Pillow format name.
_WRITE_FORMATS = {
    "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF", "bmp": "BMP",
}
#: Source format -> extension kept by output_format_for(..., "same").
_SAME_FORMAT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tiff"}


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


def quantize(x: np.ndarray, bits: int) -> np.ndarray:
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


def output_exif(exif: bytes | None, mark_software: bool, size: tuple[int, int] | None = None) -> bytes | None:
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
            obj = load_exif(exif)
        except Exception:  # noqa: BLE001 - unreadable EXIF is dropped, the image still written
            _log.warning("dropping unreadable EXIF data")
            obj = None
        legacy = obj is not None and is_legacy_record(obj)
        if not legacy:
            try:  # byte-exact copy: keeps maker notes and other offset-sensitive data
                return exif_reset_orientation(exif, size)
            except (ValueError, struct.error):
                pass
        if obj is not None and legacy:
            del obj[IMAGE_DESCRIPTION]
    if obj is None:
        if not mark_software:
            return None
        obj = PILImage.Exif()
    keep_text_bytes(obj)
    if ORIENTATION in obj:
        obj[ORIENTATION] = 1
    if mark_software:
        obj[SOFTWARE] = "imgtrans"
    if size is not None:
        with contextlib.suppress(Exception):
            sub = obj.get_ifd(EXIF_IFD)
            for tag, value in zip(PIXEL_DIMENSIONS, size):
                if tag in sub:
                    sub[tag] = value
    try:
        return obj.tobytes()
    except Exception:  # noqa: BLE001 - EXIF that cannot be re-encoded is dropped
        _log.warning("dropping EXIF data that cannot be re-encoded")
        return None


def _pil_image(arr: np.ndarray) -> PILImage.Image:
    """uint8 (H, W, 1|2|3|4) -> Pillow L / LA / RGB / RGBA."""
    return PILImage.fromarray(np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr))


# 8-bit images at least this large go through the band-wise encoder, whose peak is the file's size:
# OpenCV first needs a BGR copy of the pixels (768 MB for a 16384x16384 RGB image)
_LARGE_PNG_BYTES = 256 << 20


def encode_png(
    arr: np.ndarray, icc: bytes | None, exif: bytes | None, dpi: Any, text: str | None, xmp: bytes | None = None
) -> bytes:
    """PNG of a uint8/uint16 (H, W, 1-4) array with the given metadata chunks.

    Deflate runs with zlib's run-length strategy after per-row adaptive filtering: the encoder runs
    beside inference on the same cores, and this is the fastest setting whose files stay within a few
    per cent of level 3's (figures: benchmarks/README.md, "PNG encoding")."""
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
        chunks.append(_pngchunks.make_chunk(b"iTXt", PNG_XMP_KEY.encode("latin-1") + b"\0\0\0\0\0" + xmp))
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


def encode_tiff(arr: np.ndarray, icc: bytes | None, exif: bytes | None, dpi: Any, xmp: bytes | None = None) -> bytes:
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
            src = copy_exif_tags(load_exif(exif))
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
    text = record_text(provenance)
    dpi = img.dpi if img.dpi and all(np.isfinite(d) and d > 0 for d in img.dpi) else None
    bits = 16 if img.bit_depth == 16 and fmt in ("PNG", "TIFF") else 8
    limit = {"JPEG": 65535, "WEBP": 16383}.get(fmt)
    if limit is not None and max(px.shape[:2]) > limit:
        raise ImageWriteError(
            f"image is {px.shape[1]}x{px.shape[0]}, too large for {fmt} (at most {limit} pixels per side); "
            "use png or tiff"
        )
    if fmt == "JPEG":
        return _encode_jpeg(img, px, alpha, size, text, dpi, jpeg_quality)

    channels = [quantize(px, bits)]
    if alpha is not None:
        channels.append(quantize(alpha, bits)[:, :, None])
    arr = np.concatenate(channels, axis=2) if len(channels) > 1 else channels[0]
    if fmt == "PNG":
        return encode_png(arr, icc_for(img.icc_profile, gray), output_exif(img.exif, False, size), dpi, text,
                          output_xmp(img.xmp, None, size))
    if fmt == "TIFF":
        if bits == 16 and arr.shape[2] == 2:
            # Pillow cannot read 16-bit grey+alpha TIFF; store it as RGBA (no precision lost).
            arr = arr[:, :, [0, 0, 0, 1]]
            gray = False
        exif = output_exif(img.exif, text is not None, size)
        return encode_tiff(arr, icc_for(img.icc_profile, gray), exif, dpi, output_xmp(img.xmp, text, size))
    if fmt == "WEBP":
        return _encode_webp(img, arr, gray, size, text)
    if fmt == "BMP":
        return _encode_bmp(arr, dpi)
    raise ImageWriteError(f"unsupported output format {fmt}")


def _metadata_kwargs(icc: bytes | None, exif: bytes | None, xmp: bytes | None) -> dict[str, bytes]:
    """Pillow ``save()`` arguments for the metadata blocks there are."""
    return {key: value for key, value in (("icc_profile", icc), ("exif", exif), ("xmp", xmp)) if value}


def _encode_jpeg(img: Image, px: np.ndarray, alpha: np.ndarray | None, size: tuple[int, int], text: str | None,
                 dpi: Any, jpeg_quality: int) -> bytes:
    """8-bit JPEG of ``px`` (alpha composited onto white); EXIF and XMP dropped, with a warning,
    where they exceed what one APP1 segment holds (XMP first without the record)."""
    if not (isinstance(jpeg_quality, int) and 1 <= jpeg_quality <= 100):
        raise ImageWriteError(f"JPEG quality must be an integer from 1 to 100, got {jpeg_quality!r}")
    if alpha is not None:  # JPEG has no alpha: composite onto white
        _log.info("JPEG output has no transparency; compositing onto white")
        a = np.clip(np.nan_to_num(alpha.astype(np.float32)), 0.0, 1.0)[:, :, None]
        scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(px.dtype, 1.0)
        px = px.astype(np.float32) / np.float32(scale) * a + (1.0 - a)
    exif = output_exif(img.exif, text is not None, size)
    if exif and len(exif) > 65533:
        _log.warning("EXIF block too large for JPEG (%d bytes); dropping it", len(exif))
        exif = None
    xmp = output_xmp(img.xmp, text, size)
    if xmp and len(xmp) > JPEG_XMP_LIMIT and text is not None:
        _log.warning("XMP packet too large for JPEG with the imgtrans record; storing it without the record")
        xmp = output_xmp(img.xmp, None, size)
    if xmp and len(xmp) > JPEG_XMP_LIMIT:
        _log.warning("XMP packet too large for JPEG (%d bytes); dropping it", len(xmp))
        xmp = None
    kwargs: dict[str, Any] = {"quality": jpeg_quality, "optimize": True}
    kwargs["subsampling"] = 0 if jpeg_quality >= 90 else 2  # 4:4:4 at high quality, else 4:2:0
    kwargs.update(_metadata_kwargs(icc_for(img.icc_profile, px.shape[2] == 1), exif, xmp))
    if dpi:
        kwargs["dpi"] = dpi
    buf = io.BytesIO()
    _pil_image(quantize(px, 8)).save(buf, format="JPEG", **kwargs)
    return buf.getvalue()


def _encode_webp(img: Image, arr: np.ndarray, gray: bool, size: tuple[int, int], text: str | None) -> bytes:
    """Lossless WebP of the uint8 (H, W, 1-4) ``arr``; no grey mode in WebP, so grey becomes RGB."""
    if gray:
        arr = arr[:, :, [0, 0, 0, 1]] if arr.shape[2] == 2 else np.repeat(arr, 3, axis=2)
    # In lossless mode quality/method only set the effort: 20/1 is far faster than the defaults for files
    # of about the same size (benchmarks/README.md, History 2026-11-23, "WebP effort").
    kwargs: dict[str, Any] = {"lossless": True, "exact": True, "quality": 20, "method": 1}
    kwargs.update(_metadata_kwargs(icc_for(img.icc_profile, False), output_exif(img.exif, text is not None, size),
                                   output_xmp(img.xmp, text, size)))
    buf = io.BytesIO()
    _pil_image(arr).save(buf, format="WEBP", **kwargs)
    return buf.getvalue()


def _encode_bmp(arr: np.ndarray, dpi: Any) -> bytes:
    """BMP of the uint8 (H, W, 1-4) ``arr``: BMP carries no ICC/EXIF/text; grey+alpha becomes RGBA."""
    if arr.shape[2] == 2:
        arr = arr[:, :, [0, 0, 0, 1]]
    if arr.shape[2] == 4:
        return _encode_bmp_rgba(arr, dpi)
    buf = io.BytesIO()
    _pil_image(arr).save(buf, format="BMP", **({"dpi": dpi} if dpi else {}))
    return buf.getvalue()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write *data* to *path* the way images are written (:func:`imgtrans.atomic.write_bytes`): for
    the small files the batch keeps beside its outputs (shard summaries). Raises
    :class:`ImageWriteError` (``errno`` set on OS errors)."""
    p = Path(path)
    try:
        return write_bytes(p, data)
    except AtomicWriteError as e:
        raise ImageWriteError(e.reason, p, e.errno) from None


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
    :func:`~imgtrans.imageio.provenance.read_provenance` reads it back from any of them.

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
        raise ImageWriteError(f"cannot encode {pil_fmt}: {os_reason(e)}", p) from None
    except Exception as e:  # noqa: BLE001 - any encoder failure is reported for this file
        raise ImageWriteError(f"cannot encode {pil_fmt}: {one_line(e)}", p) from None
    return write_bytes_atomic(p, data)
