"""Small pure-Python PNG helpers: chunk building/parsing and a 16-bit encoder.

Pillow cannot *write* 16-bit-per-channel colour or grey+alpha PNGs, and OpenCV
cannot write metadata chunks, so :mod:`imgtrans.imageio` encodes those PNGs
here: numpy does the (vectorised, per-row adaptive) PNG filtering, ``zlib`` does
the compression, and metadata chunks (``iCCP``, ``pHYs``, ``eXIf``, ``tEXt``)
are placed before the first ``IDAT`` as the PNG specification requires.

Everything here works on ``bytes``; nothing touches the file system.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Ancillary chunks that only carry metadata; they can be dropped without
#: changing a single pixel.
METADATA_CHUNKS = frozenset(
    {b"iCCP", b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME", b"pHYs", b"sRGB", b"gAMA", b"cHRM"}
)

_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def make_chunk(ctype: bytes, data: bytes) -> bytes:
    """Serialise one PNG chunk: length, type, data, CRC-32 of type+data."""
    if len(ctype) != 4:
        raise ValueError(f"PNG chunk type must be 4 bytes, got {ctype!r}")
    crc = zlib.crc32(data, zlib.crc32(ctype)) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", crc)


def iter_chunks(png: bytes) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, start, end)`` byte spans of each chunk of a PNG stream.

    Raises ``ValueError`` if the stream is not a PNG or a chunk runs past the
    end of the data.  CRCs are not checked.
    """
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG stream")
    pos = len(PNG_SIGNATURE)
    n = len(png)
    while pos < n:
        if pos + 8 > n:
            raise ValueError("truncated PNG chunk header")
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        ctype = bytes(png[pos + 4 : pos + 8])
        end = pos + 12 + length
        if end > n:
            raise ValueError(f"truncated PNG chunk {ctype!r}")
        yield ctype, pos, end
        pos = end
        if ctype == b"IEND":
            return


def insert_chunks(png: bytes, chunks: Iterable[bytes]) -> bytes:
    """Return *png* with the serialised *chunks* inserted before the first ``IDAT``.

    Existing chunks of the same types are removed first, so the result never
    holds two ``iCCP`` chunks (which readers reject).  ``tEXt``/``iTXt`` chunks
    are not de-duplicated (several text chunks are legal).
    """
    chunks = list(chunks)
    replace = {c[4:8] for c in chunks} - {b"tEXt", b"iTXt", b"zTXt"}
    out = [PNG_SIGNATURE]
    inserted = False
    for ctype, start, end in iter_chunks(png):
        if ctype == b"IDAT" and not inserted:
            out.extend(chunks)
            inserted = True
        if ctype in replace:
            continue
        out.append(png[start:end])
    if not inserted:
        raise ValueError("PNG stream has no IDAT chunk")
    return b"".join(out)


def strip_chunks(png: bytes, ctypes: Iterable[bytes] = METADATA_CHUNKS) -> bytes:
    """Return *png* without chunks of the given types (default: metadata only)."""
    drop = set(ctypes)
    out = [PNG_SIGNATURE]
    for ctype, start, end in iter_chunks(png):
        if ctype not in drop:
            out.append(png[start:end])
    return b"".join(out)


def text_chunk(key: str, value: str) -> bytes:
    """A ``tEXt`` chunk if *value* is Latin-1, else an uncompressed UTF-8 ``iTXt`` chunk."""
    k = key.encode("latin-1")
    try:
        return make_chunk(b"tEXt", k + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return make_chunk(b"iTXt", k + b"\0\0\0\0\0" + value.encode("utf-8"))


def iccp_chunk(icc: bytes, name: bytes = b"ICC Profile") -> bytes:
    """An ``iCCP`` chunk (profile name, compression method 0, zlib data)."""
    return make_chunk(b"iCCP", name + b"\0\0" + zlib.compress(icc))


def exif_chunk(exif: bytes) -> bytes:
    """An ``eXIf`` chunk; a leading ``b"Exif\\0\\0"`` APP1 header is removed."""
    if exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    return make_chunk(b"eXIf", exif)


def phys_chunk(dpi: tuple[float, float]) -> bytes:
    """A ``pHYs`` chunk from dots per inch (stored as pixels per metre)."""
    ppm = [max(1, int(round(d / 0.0254))) for d in dpi]
    return make_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1))


def _filter_band(band: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """PNG-filter a band of rows with a per-row adaptive choice.

    ``band`` is (n, L) uint8 raw scanlines, ``prev`` the (L,) uint8 scanline
    before the band (zeros for the first).  Returns (n, L+1) uint8 rows, each
    prefixed with its filter-type byte.  The filter for each row is the one
    with the smallest sum of absolute (signed) residuals, the usual libpng
    heuristic.  Encoding filters only read *unfiltered* neighbours, so all rows
    are computed at once.
    """
    x = band
    n, length = x.shape
    up = np.empty_like(x)
    up[0] = prev
    up[1:] = x[:-1]
    left = np.zeros_like(x)
    left[:, bpp:] = x[:, :-bpp]
    upleft = np.zeros_like(x)
    upleft[:, bpp:] = up[:, :-bpp]

    # Paeth predictor: whichever of left/up/upleft is closest to left+up-upleft.
    a = left.astype(np.int16)
    b = up.astype(np.int16)
    p = a + b
    p -= upleft
    pa = np.abs(p - a)
    pb = np.abs(p - b)
    pc = np.abs(p - upleft, out=p)
    paeth = np.where(pb <= pc, up, upleft)
    np.copyto(paeth, left, where=(pa <= pb) & (pa <= pc))
    a += b
    a >>= 1  # Average predictor

    cands = np.empty((5, n, length), np.uint8)  # residuals wrap modulo 256
    cands[0] = x
    np.subtract(x, left, out=cands[1])
    np.subtract(x, up, out=cands[2])
    np.subtract(x, a.astype(np.uint8), out=cands[3])
    np.subtract(x, paeth, out=cands[4])
    # |residual as int8|: abs() of int8 -128 stays -128, which reads back as 128 in uint8.
    cost = np.abs(cands.view(np.int8)).view(np.uint8).sum(axis=2, dtype=np.int64)
    best = cost.argmin(axis=0)  # (n,)
    out = np.empty((n, length + 1), np.uint8)
    out[:, 0] = best
    out[:, 1:] = cands[best, np.arange(n)]
    return out


def encode_png(
    array: np.ndarray,
    chunks: Iterable[bytes] = (),
    *,
    compress_level: int = 6,
    strategy: int = zlib.Z_DEFAULT_STRATEGY,
    band_bytes: int = 4 << 20,
) -> bytes:
    """Encode an image array as a complete PNG stream.

    ``array`` is (H, W, C) ``uint8`` or ``uint16`` with C in 1 (grey),
    2 (grey+alpha), 3 (RGB) or 4 (RGBA); alpha is straight (not
    premultiplied).  ``chunks`` are serialised ancillary chunks placed after
    ``IHDR`` and before ``IDAT``.  Rows are filtered in bands of about
    ``band_bytes`` to bound memory use.  ``strategy``: zlib's (``zlib.Z_RLE`` is
    much faster on photos for about the same size).
    """
    return bytes(encode_png_buffer(array, chunks, compress_level=compress_level, strategy=strategy,
                                   band_bytes=band_bytes))


def encode_png_buffer(
    array: np.ndarray,
    chunks: Iterable[bytes] = (),
    *,
    compress_level: int = 6,
    strategy: int = zlib.Z_DEFAULT_STRATEGY,
    band_bytes: int = 4 << 20,
) -> bytearray:
    """:func:`encode_png` into one growing buffer: IDAT chunks are appended as the compressor
    produces data, so the peak is the file's size once (not four times), whatever the image size."""
    if array.ndim != 3 or array.shape[2] not in _COLOUR_TYPE:
        raise ValueError(f"cannot encode array of shape {array.shape} as PNG")
    if array.dtype == np.uint8:
        depth, raw = 8, np.ascontiguousarray(array)
    elif array.dtype == np.uint16:
        depth, raw = 16, np.ascontiguousarray(array, dtype=">u2")
    else:
        raise ValueError(f"cannot encode {array.dtype} array as PNG (uint8 or uint16 only)")
    h, w, c = array.shape
    if h == 0 or w == 0:
        raise ValueError("cannot encode an empty image as PNG")
    bpp = c * depth // 8
    lines = raw.view(np.uint8).reshape(h, w * bpp)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, _COLOUR_TYPE[c], 0, 0, 0)
    out = bytearray(PNG_SIGNATURE)
    out += make_chunk(b"IHDR", ihdr)
    for chunk in chunks:
        out += chunk
    step = 1 << 20
    pending = bytearray()

    def emit(final: bool) -> None:
        while len(pending) >= step or (final and pending):
            out.extend(make_chunk(b"IDAT", bytes(pending[:step])))
            del pending[:step]

    comp = zlib.compressobj(compress_level, zlib.DEFLATED, 15, 8, strategy)
    rows_per_band = max(1, band_bytes // lines.shape[1])
    prev = np.zeros(lines.shape[1], np.uint8)
    for y in range(0, h, rows_per_band):
        band = lines[y : y + rows_per_band]
        pending += comp.compress(_filter_band(band, prev, bpp).tobytes())
        emit(False)
        prev = band[-1]
    pending += comp.flush()
    emit(True)
    out += make_chunk(b"IEND", b"")
    return out
