"""Byte-level builders of hostile image files: valid images in every format, then chunks, headers,
EXIF blocks, ICC profiles and WebP/TIFF fields written by hand so they can be broken on purpose;
:class:`Builder` writes a category's cases to disk and remembers what each must do."""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

PNG_SIG = b"\x89PNG\r\n\x1a\n"

# what a case must do: "ok" = must be converted; "fail" = must be reported (failed/skipped) and
# not converted; "any" = either, but one of the two; "ignored" = silently left out by design.
OK, FAIL, ANY, IGNORED = "ok", "fail", "any", "ignored"


@dataclass
class Case:
    path: Path  # the input as it lies on disk (inside its category folder)
    category: str
    expect: str
    note: str = ""


# ----------------------------------------------------------------------------------- building


def chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF)


def png_raw(width: int, height: int, depth: int = 8, ctype: int = 2, idat: bytes | None = None,
            extra: list[bytes] = ()) -> bytes:
    """A PNG built by hand (any IHDR, any IDAT), with correct CRCs."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"\0" * 64)
    return PNG_SIG + chunk(b"IHDR", ihdr) + b"".join(extra) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def stream_zero_png(width: int, height: int, path: Path) -> None:
    """A real, valid, all-black 8-bit grey PNG of any size, written without holding its pixels."""
    comp = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    parts = []
    for _ in range(height):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    data = b"".join(p for p in parts if p)
    with open(path, "wb") as fh:
        fh.write(PNG_SIG + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        for i in range(0, len(data), 1 << 20):
            fh.write(chunk(b"IDAT", data[i : i + (1 << 20)]))
        fh.write(chunk(b"IEND", b""))


def picture(rng: random.Random, w: int, h: int, mode: str = "RGB") -> PILImage.Image:
    """A small image with structure (gradients + noise) in ``mode``."""
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), (xx + yy) % 64 * 4], axis=-1)
    arr = np.clip(base + nrng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    img = PILImage.fromarray(arr, "RGB")
    return img if mode == "RGB" else img.convert(mode)


FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "tiff": "TIFF", "gif": "GIF", "bmp": "BMP"}


def encode(img: PILImage.Image, ext: str, **kw) -> bytes:
    buf = io.BytesIO()
    fmt = FORMATS[ext]
    if fmt == "JPEG" and img.mode not in ("RGB", "L", "CMYK"):
        img = img.convert("RGB")
    if fmt == "WEBP" and img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.mode else "RGB")
    if fmt == "BMP" and img.mode not in ("RGB", "L", "P", "1", "RGBA"):
        img = img.convert("RGB")
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def good_bytes(rng: random.Random, ext: str, w: int | None = None, h: int | None = None) -> bytes:
    w = w or rng.randint(8, 48)
    h = h or rng.randint(8, 48)
    img = picture(rng, w, h)
    if ext == "tiff":
        return encode(img, ext, compression=rng.choice([None, "tiff_deflate", "tiff_lzw", "packbits"]))
    if ext == "jpg":
        return encode(img, ext, quality=85, progressive=rng.random() < 0.3)
    if ext == "webp":
        return encode(img, ext, lossless=rng.random() < 0.5)
    return encode(img, ext)


def sof_offset(data: bytes) -> int | None:
    """Offset of the height field of the first JPEG SOFn segment."""
    i = 2
    while i + 4 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return i + 5
        i += 2 + length
    return None


def tiff_set_tag(data: bytes, tag: int, value: int) -> bytes:
    """Set an inline SHORT/LONG value of IFD0 ``tag`` in a little-endian TIFF."""
    buf = bytearray(data)
    ifd = struct.unpack_from("<I", buf, 4)[0]
    n = struct.unpack_from("<H", buf, ifd)[0]
    for k in range(n):
        e = ifd + 2 + 12 * k
        t, typ, cnt = struct.unpack_from("<HHI", buf, e)
        if t == tag:
            if typ == 3:
                struct.pack_into("<H", buf, e + 8, value & 0xFFFF)
            elif typ == 4:
                struct.pack_into("<I", buf, e + 8, value & 0xFFFFFFFF)
            if cnt > 1 and typ == 3 and cnt <= 2:
                struct.pack_into("<H", buf, e + 10, value & 0xFFFF)
            return bytes(buf)
    return bytes(buf)


def tiff_bytes(rng: random.Random, w: int = 24, h: int = 20) -> bytes:
    return encode(picture(rng, w, h), "tiff")  # uncompressed, little-endian, one strip


def exif_block(entries: list[tuple[int, int, int, bytes]], *, endian: str = "<", ifd_offset: int = 8, next_ifd: int = 0,
               tail: bytes = b"") -> bytes:
    """A raw EXIF block (``Exif\\0\\0`` + TIFF header + one IFD) from (tag, type, count, 4-byte value)."""
    bo = b"II" if endian == "<" else b"MM"
    head = bo + struct.pack(endian + "HI", 42, ifd_offset)
    pad = b"\0" * (ifd_offset - 8) if 8 <= ifd_offset <= 4096 else b""
    ifd = struct.pack(endian + "H", len(entries))
    for tag, typ, cnt, val in entries:
        ifd += struct.pack(endian + "HHI", tag, typ, cnt) + val[:4].ljust(4, b"\0")
    ifd += struct.pack(endian + "I", next_ifd)
    return b"Exif\x00\x00" + head + pad + ifd + tail


def fixed_date(icc: bytes) -> bytes:
    """An ICC profile with its creation date (header bytes 24-36) fixed, so generated files repeat."""
    return icc[:24] + struct.pack(">6H", 2020, 1, 1, 0, 0, 0) + icc[36:] if len(icc) >= 36 else icc


def srgb_icc() -> bytes:
    from PIL import ImageCms

    return fixed_date(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def with_meta(rng: random.Random, ext: str, *, icc: bytes | None = None, exif: bytes | None = None,
              mode: str = "RGB") -> bytes:
    img = picture(rng, rng.randint(10, 40), rng.randint(10, 40), mode)
    kw = {}
    if icc is not None:
        kw["icc_profile"] = icc
    if exif is not None:
        kw["exif"] = exif
    return encode(img, ext, **kw)


def webp_vp8x_canvas(w: int, h: int) -> bytes:
    """A WebP whose VP8X canvas claims ``w`` x ``h`` (up to 2**24 each) around a tiny lossless frame."""
    small = encode(PILImage.new("RGB", (4, 4), (10, 20, 30)), "webp", lossless=True)
    frame = small[12:]  # the VP8L chunk
    vp8x = (b"VP8X" + struct.pack("<I", 10) + bytes([0, 0, 0, 0])
            + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little"))
    body = b"WEBP" + vp8x + frame
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_vp8l_dims(w: int, h: int) -> bytes:
    """A lossless WebP whose VP8L header claims ``w`` x ``h`` (at most 16384 each)."""
    small = encode(PILImage.new("RGB", (4, 4), (10, 20, 30)), "webp", lossless=True)
    buf = bytearray(small)
    i = buf.find(b"VP8L")
    bits = int.from_bytes(buf[i + 9 : i + 13], "little")
    bits = (bits & ~((1 << 28) - 1)) | ((w - 1) & 0x3FFF) | (((h - 1) & 0x3FFF) << 14)
    buf[i + 9 : i + 13] = bits.to_bytes(4, "little")
    return bytes(buf)


class Builder:
    """Writes cases into ``root/<category>/`` and remembers them."""

    def __init__(self, root: Path, seed: int, subset: bool):
        self.root = root
        self.rng = random.Random(seed)
        self.subset = subset
        self.cases: list[Case] = []
        self.names: set[Path] = set()

    def n(self, full: int, small: int) -> int:
        return small if self.subset else full

    def folder(self, category: str) -> Path:
        d = self.root / category
        d.mkdir(parents=True, exist_ok=True)
        return d

    def add(self, category: str, name: str, data: bytes | None, expect: str, note: str = "") -> Path:
        path = self.folder(category) / name
        k = 2
        while path in self.names:
            stem, dot, ext = name.rpartition(".")
            path = self.folder(category) / (f"{stem}_{k}.{ext}" if dot else f"{name}_{k}")
            k += 1
        self.names.add(path)
        if data is not None:
            path.write_bytes(data)
        self.cases.append(Case(path, category, expect, note or name))
        return path
