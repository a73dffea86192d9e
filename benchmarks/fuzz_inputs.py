#!/usr/bin/env python3
"""Fuzz the real ``imgtrans convert`` CLI with hostile inputs and check that nothing is lost.

Generates several hundred hostile files (truncated / bit-flipped / header-mangled PNG, JPEG, WebP,
TIFF, GIF and BMP; empty files; wrong extensions; text and other non-images named like images; 1x1,
1xN and 100000x1 images; decompression bombs; CMYK/LAB/16-bit/palette/LA/1-bit/float modes; broken
ICC profiles and EXIF blocks; animated GIF/WebP/APNG; symlink loops, dangling links, FIFOs, sockets,
directories named like images, unreadable files; odd file names and colliding names), runs the CLI
over all of them in one batch and then once per category, and checks for each run:

* no crash (exit code 0 or 1, never a signal or a hang) and no Python traceback on stderr;
* every input is either converted (its planned output exists and decodes completely) or named on a
  ``failed: PATH: reason`` / ``skipped: PATH: reason`` line with a reason, never both, never neither;
* inputs that must convert (valid images) do, inputs that cannot convert (not images, bombs) do not;
* the summary line's counts match the per-file lines and the outputs, and the exit code matches;
* no input was modified, no temporary or unexpected file was left in the output folder, no two
  inputs share an output;
* stderr holds nothing but the CLI's own lines (library noise is listed).

Usage::

    .venv/bin/python benchmarks/fuzz_inputs.py               # full set (~650 inputs), all batches
    .venv/bin/python benchmarks/fuzz_inputs.py --subset      # the fixed-seed subset the tests use
    .venv/bin/python benchmarks/fuzz_inputs.py --keep DIR    # keep the generated files in DIR

Exit status 0 when every check passed. ``tests/test_reliability.py`` imports :func:`generate`,
:func:`run_cli` and :func:`check_run` and runs the fixed-seed subset.

Unreadable permissions: the tool normally runs as root here, and root ignores ``chmod 000``. The
``perms`` category therefore (a) keeps ``chmod 000`` files in the main batch (root reads them: they
must convert), and (b) when running as root and ``setpriv`` exists, runs a separate batch as the
unprivileged user ``nobody`` over a folder with ``chmod 000`` files and a ``chmod 000`` sub-folder,
where they really are unreadable and must be reported. FIFOs, sockets, directories named ``x.png``
and links to ``/dev/zero`` stand in for other unreadable inputs in every batch.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

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


def png_raw(width: int, height: int, depth: int = 8, ctype: int = 2, idat: bytes | None = None, extra: list[bytes] = ()) -> bytes:
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


def exif_block(entries: list[tuple[int, int, int, bytes]], *, endian: str = "<", ifd_offset: int = 8, next_ifd: int = 0, tail: bytes = b"") -> bytes:
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


def with_meta(rng: random.Random, ext: str, *, icc: bytes | None = None, exif: bytes | None = None, mode: str = "RGB") -> bytes:
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
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0, 0, 0, 0]) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
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


# ----------------------------------------------------------------------------------- categories


def cat_truncated(b: Builder) -> None:
    for ext in FORMATS:
        for k in range(b.n(14, 2)):
            data = good_bytes(b.rng, ext)
            cut = [8, 16, 33, len(data) // 2, len(data) - 1, len(data) - 12][k] if k < 6 else b.rng.randrange(1, len(data))
            cut = max(1, min(cut, len(data) - 1))
            # A cut inside trailing data can leave a decodable image: either outcome, but one of them.
            b.add("truncated", f"trunc_{k}_{cut}.{ext}", data[:cut], ANY, f"{ext} cut at {cut}/{len(data)}")


def cat_bitflip(b: Builder) -> None:
    for ext in FORMATS:
        for k in range(b.n(20, 2)):
            data = bytearray(good_bytes(b.rng, ext))
            if k % 4 == 3:  # overwrite a run of bytes with garbage
                at = b.rng.randrange(0, len(data))
                run = b.rng.randint(1, 32)
                data[at : at + run] = bytes(b.rng.randrange(256) for _ in range(min(run, len(data) - at)))
                note = f"{ext} garbage run at {at}"
            else:
                flips = b.rng.randint(1, 8)
                for _ in range(flips):
                    pos = b.rng.randrange(len(data))
                    data[pos] ^= 1 << b.rng.randrange(8)
                note = f"{ext} {flips} bit flips"
            b.add("bitflip", f"flip_{k}.{ext}", bytes(data), ANY, note)


def cat_header(b: Builder) -> None:
    """Structured header lies (valid CRCs, so the decoder has to judge the values)."""
    rng = b.rng
    # PNG IHDR field values
    for w, h, depth, ct, exp in [
        (0, 10, 8, 2, FAIL), (10, 0, 8, 2, FAIL), (10, 10, 3, 2, FAIL), (10, 10, 8, 7, FAIL), (10, 10, 16, 3, FAIL),
        (10, 10, 1, 2, FAIL), (2**31, 1, 8, 2, FAIL), (10, 10, 8, 2, FAIL), (1, 1, 8, 0, ANY), (3, 3, 8, 6, ANY),
    ][: b.n(10, 4)]:
        b.add("header", f"ihdr_{w}x{h}_d{depth}_c{ct}.png", png_raw(w, h, depth, ct), exp, "PNG IHDR fields")
    # PNG structure
    good = good_bytes(rng, "png")
    ihdr_end = 8 + 25
    b.add("header", "png_no_idat.png", good[:ihdr_end] + chunk(b"IEND", b""), FAIL)
    b.add("header", "png_no_ihdr.png", PNG_SIG + good[ihdr_end:], FAIL)
    b.add("header", "png_bad_idat_crc.png", good[:-20] + b"\0\0\0\0" + good[-16:], ANY)
    b.add("header", "png_trailing_garbage.png", good + rng.randbytes(500), ANY)
    b.add("header", "png_idat_not_zlib.png", png_raw(8, 8, idat=b"not zlib at all"), FAIL)
    b.add("header", "png_idat_too_short.png", png_raw(64, 64, idat=zlib.compress(b"\0" * 10)), FAIL)
    b.add("header", "png_plte_missing.png", png_raw(8, 8, 8, 3, idat=zlib.compress(b"\0" * 72)), ANY, "palette PNG without PLTE")
    b.add("header", "png_huge_chunk_len.png", good[:ihdr_end] + struct.pack(">I", 0x7FFFFFF0) + b"tEXt" + b"x" * 20, FAIL)
    if not b.subset:
        b.add("header", "png_many_chunks.png", good[:ihdr_end] + b"".join(chunk(b"tEXt", b"k\0v") for _ in range(20000)) + good[ihdr_end:], ANY)
    # JPEG SOF dimensions and markers
    jpg = good_bytes(rng, "jpg", 32, 24)
    off = sof_offset(jpg)
    if off is not None:
        for hh, ww in [(0, 32), (24, 0), (0, 0), (65535, 1)][: b.n(4, 2)]:
            buf = bytearray(jpg)
            struct.pack_into(">HH", buf, off, hh, ww)
            b.add("header", f"jpeg_sof_{ww}x{hh}.jpg", bytes(buf), ANY if hh == 65535 else FAIL)
    b.add("header", "jpeg_soi_only.jpg", b"\xff\xd8\xff\xd9", FAIL)
    b.add("header", "jpeg_no_eoi.jpg", jpg[:-2], ANY)
    b.add("header", "jpeg_app_len_0.jpg", b"\xff\xd8\xff\xe1\x00\x00" + jpg[2:], ANY)
    # BMP header fields
    bmp = good_bytes(rng, "bmp", 16, 12)
    for name, off2, fmt_, val, exp in [
        ("bmp_width_neg", 18, "<i", -16, ANY), ("bmp_height_neg", 22, "<i", -12, OK), ("bmp_bpp_7", 28, "<H", 7, FAIL),
        ("bmp_compression_9", 30, "<I", 9, FAIL), ("bmp_width_0", 18, "<i", 0, FAIL), ("bmp_dataoff_huge", 10, "<I", 0x7FFFFFFF, FAIL),
    ][: b.n(6, 2)]:
        buf = bytearray(bmp)
        struct.pack_into(fmt_, buf, off2, val)
        b.add("header", f"{name}.bmp", bytes(buf), exp)
    # TIFF tags
    for name, tag, val, exp in [
        ("tiff_stripoffset_eof", 273, 10**6, FAIL), ("tiff_bits_3", 258, 3, ANY), ("tiff_spp_0", 277, 0, FAIL),
        ("tiff_compression_99", 259, 99, FAIL), ("tiff_width_0", 256, 0, FAIL), ("tiff_photometric_9", 262, 9, ANY),
        ("tiff_rowsperstrip_0", 278, 0, ANY), ("tiff_bytecount_huge", 279, 0x7FFFFFFF, ANY),
    ][: b.n(8, 3)]:
        b.add("header", f"{name}.tiff", tiff_set_tag(tiff_bytes(rng), tag, val), exp)
    t = bytearray(tiff_bytes(rng))
    struct.pack_into("<I", t, 4, len(t) + 1000)
    b.add("header", "tiff_ifd_past_eof.tiff", bytes(t), FAIL)
    t = bytearray(tiff_bytes(rng))
    ifd = struct.unpack_from("<I", t, 4)[0]
    n = struct.unpack_from("<H", t, ifd)[0]
    struct.pack_into("<I", t, ifd + 2 + 12 * n, ifd)  # next-IFD pointer loops back to itself
    b.add("header", "tiff_ifd_loop.tiff", bytes(t), ANY)
    # GIF
    gif = good_bytes(rng, "gif", 16, 16)
    for name, w, h in [("gif_screen_0x0", 0, 0), ("gif_screen_small", 2, 2)][: b.n(2, 1)]:
        buf = bytearray(gif)
        struct.pack_into("<HH", buf, 6, w, h)
        b.add("header", f"{name}.gif", bytes(buf), ANY)
    b.add("header", "gif_header_only.gif", b"GIF89a" + struct.pack("<HH", 10, 10) + b"\0\0\0", FAIL)
    # WebP
    b.add("header", "webp_riff_only.webp", b"RIFF\x04\x00\x00\x00WEBP", FAIL)
    b.add("header", "webp_riff_len_huge.webp", b"RIFF\xff\xff\xff\x7fWEBP" + good_bytes(rng, "webp")[12:], ANY)


def cat_empty(b: Builder) -> None:
    for ext in ["png", "jpg", "jpeg", "webp", "tif", "tiff", "gif", "bmp", "PNG"][: b.n(9, 3)]:
        b.add("empty", f"empty.{ext}", b"", FAIL, "zero bytes")


def cat_wrongext(b: Builder) -> None:
    exts = list(FORMATS)
    for src in exts:
        targets = [e for e in exts if e != src]
        for dst in targets if not b.subset else targets[:1]:
            b.add("wrongext", f"{src}_named.{dst}", good_bytes(b.rng, src), OK, f"{src} data named .{dst}")
    b.add("wrongext", "png_no_ext", good_bytes(b.rng, "png"), FAIL, "no extension inside a folder: skipped")
    b.add("wrongext", "png_named.txt", good_bytes(b.rng, "png"), FAIL, "non-image extension: skipped")


def cat_notimage(b: Builder) -> None:
    items = [
        ("text.png", b"hello, I am not a picture\n" * 20),
        ("text.jpg", b"Lorem ipsum dolor sit amet " * 30),
        ("html.webp", b"<!doctype html><html><body>not an image</body></html>"),
        ("svg.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
        ("pdf.tiff", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF"),
        ("zip.gif", b"PK\x03\x04" + b.rng.randbytes(200)),
        ("random.bmp", bytes(random.Random(3).randrange(256) for _ in range(4096))),
        ("one_byte.png", b"\x89"),
        ("png_sig_only.png", PNG_SIG),
        ("jpeg_magic_only.jpg", b"\xff\xd8\xff"),
        ("gif_magic_only.gif", b"GIF89a"),
        ("tiff_magic_only.tif", b"II*\x00"),
        ("bmp_magic_only.bmp", b"BM"),
        ("riff_wave.webp", b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\0" * 28),
        ("nul_bytes.png", b"\0" * 1000),
        ("utf16_text.png", "not an image".encode("utf-16")),
        ("eps.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"),
        ("python.jpeg", b"import os\nos.system('touch /tmp/pwned')\n"),
        ("ico.png", b"\x00\x00\x01\x00\x01\x00\x10\x10" + b"\0" * 60),
        ("psd.tiff", b"8BPS\x00\x01" + b"\0" * 100),
    ]
    for name, data in items[: b.n(len(items), 6)]:
        b.add("notimage", name, data, FAIL, "not an image")


def cat_tiny(b: Builder) -> None:
    sizes = [(1, 1), (1, 2), (2, 1), (1, 37), (37, 1), (3, 3), (1, 300), (300, 1), (2, 2), (5, 1)]
    exts = list(FORMATS)
    k = 0
    for w, h in sizes:
        for ext in exts if not b.subset else [exts[k % len(exts)]]:
            k += 1
            mode = b.rng.choice(["RGB", "L", "RGBA"]) if ext in ("png", "tiff", "webp") else "RGB"
            b.add("tiny", f"tiny_{w}x{h}_{mode}.{ext}", encode(picture(b.rng, w, h, mode), ext), OK, f"{w}x{h} {mode}")


def cat_longline(b: Builder) -> None:
    # real pixel data: 100000 pixels is small, the shape is what is hostile
    b.add("longline", "line_100000x1.png", encode(picture(b.rng, 100000, 1), "png"), OK)
    if not b.subset:
        b.add("longline", "line_1x100000.png", encode(picture(b.rng, 1, 100000), "png"), OK)
        b.add("longline", "line_100000x1.tiff", encode(picture(b.rng, 100000, 1), "tiff", compression="tiff_deflate"), OK)
        # a x2 model makes these too wide for their own format: converted or reported, either is fine
        b.add("longline", "line_65000x1.jpg", encode(picture(b.rng, 65000, 1), "jpg"), ANY, "65000x1 JPEG (x2 is too wide for JPEG)")
        b.add("longline", "line_16383x1.webp", encode(picture(b.rng, 16383, 1), "webp", lossless=True), ANY, "16383x1 WebP (x2 is too wide for WebP)")
        b.add("longline", "line_1x65000.gif", encode(picture(b.rng, 1, 65000), "gif"), OK)
    # a header that claims 100000x1 (or 1x100000) with far too little data
    b.add("longline", "claims_100000x1.png", png_raw(100000, 1, idat=zlib.compress(b"\0" * 50)), FAIL)
    b.add("longline", "claims_1x100000.png", png_raw(1, 100000, idat=zlib.compress(b"\0" * 50)), FAIL)


def cat_bombs(b: Builder) -> None:
    """Files whose header claims more pixels than the limit; real compressible images over the limit."""
    for w, h in [(100000, 100000), (65535, 65535), (2**31 - 1, 2**31 - 1), (20000, 20000), (1, 2**31 - 1)][: b.n(5, 2)]:
        b.add("bombs", f"png_claims_{w}x{h}.png", png_raw(w, h, idat=zlib.compress(b"\0" * 1000)), FAIL, "IHDR bomb")
    jpg = bytearray(good_bytes(b.rng, "jpg", 32, 24))
    off = sof_offset(bytes(jpg))
    if off is not None:
        struct.pack_into(">HH", jpg, off, 65500, 65500)
        b.add("bombs", "jpeg_claims_65500x65500.jpg", bytes(jpg), FAIL, "SOF bomb")
    gif = bytearray(good_bytes(b.rng, "gif", 16, 16))
    struct.pack_into("<HH", gif, 6, 65535, 65535)
    b.add("bombs", "gif_claims_65535x65535.gif", bytes(gif), FAIL, "GIF screen bomb")
    t = tiff_set_tag(tiff_set_tag(tiff_bytes(b.rng), 256, 1_000_000), 257, 1_000_000)
    b.add("bombs", "tiff_claims_1e6x1e6.tiff", t, FAIL, "TIFF tag bomb")
    bmp = bytearray(good_bytes(b.rng, "bmp", 16, 12))
    struct.pack_into("<ii", bmp, 18, 50000, 50000)
    b.add("bombs", "bmp_claims_50000x50000.bmp", bytes(bmp), FAIL, "BMP header bomb")
    b.add("bombs", "webp_vp8l_16384x16384.webp", webp_vp8l_dims(16384, 16384), FAIL, "VP8L header bomb")
    if not b.subset:
        b.add("bombs", "webp_vp8x_canvas_2e6x2e6.webp", webp_vp8x_canvas(2_000_000, 2_000_000), FAIL, "VP8X canvas bomb")
    # real, valid, highly compressible images over the limit (limit: default 200M, subset runs 4M)
    if b.subset:
        p = b.add("bombs", "real_2500x2000_zeros.png", None, FAIL, "real 5M-pixel PNG over --max-pixels 4M")
        stream_zero_png(2500, 2000, p)
    else:
        p = b.add("bombs", "real_15000x15000_zeros.png", None, FAIL, "real 225M-pixel PNG (~220 KB) over the default limit")
        stream_zero_png(15000, 15000, p)
        gif = PILImage.new("P", (16000, 13000), 0)
        p = b.add("bombs", "real_16000x13000.gif", encode(gif, "gif"), FAIL, "real 208M-pixel GIF")
    # metadata bombs: must be dropped, the picture converted
    small = picture(b.rng, 16, 16)
    raw = io.BytesIO()
    small.save(raw, format="PNG")
    png = raw.getvalue()
    icc_bomb = chunk(b"iCCP", b"bomb\0\0" + zlib.compress(b"\0" * (b.n(200, 20) << 20), 9))
    b.add("bombs", "png_iccp_zlib_bomb.png", png[:33] + icc_bomb + png[33:], OK, "iCCP inflating to 200 MB")
    ztxt = chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * (b.n(100, 10) << 20), 9))
    b.add("bombs", "png_ztxt_bomb.png", png[:33] + ztxt + png[33:], OK, "zTXt inflating to 100 MB")
    idat_bomb = zlib.compress(b"\0" * (b.n(400, 40) << 20), 9)
    b.add("bombs", "png_idat_overlong.png", png_raw(16, 16, 8, 2, idat=idat_bomb), ANY, "tiny IHDR, IDAT inflating to 400 MB")


def cat_modes(b: Builder) -> None:
    rng = b.rng
    items: list[tuple[str, bytes]] = []

    def pic(mode, w=None, h=None):
        return picture(rng, w or rng.randint(8, 40), h or rng.randint(8, 40), mode)

    from PIL import ImageCms

    items.append(("cmyk.jpg", encode(pic("CMYK"), "jpg")))
    items.append(("cmyk.tiff", encode(pic("CMYK"), "tiff")))
    items.append(("cmyk_deflate.tiff", encode(pic("CMYK"), "tiff", compression="tiff_deflate")))
    lab = ImageCms.applyTransform(pic("RGB"), ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"))
    items.append(("lab.tiff", encode(lab, "tiff")))
    items.append(("ycbcr.jpg", encode(pic("YCbCr"), "jpg")))
    items.append(("ycbcr.tiff", encode(pic("YCbCr"), "tiff")))
    items.append(("gray.jpg", encode(pic("L"), "jpg")))
    items.append(("gray.png", encode(pic("L"), "png")))
    items.append(("la.png", encode(pic("LA"), "png")))
    items.append(("la.tiff", encode(pic("LA"), "tiff")))
    items.append(("rgba.png", encode(pic("RGBA"), "png")))
    items.append(("rgba.webp", encode(pic("RGBA"), "webp", lossless=True)))
    items.append(("rgba.tiff", encode(pic("RGBA"), "tiff")))
    items.append(("rgba.bmp", encode(pic("RGBA"), "bmp")))
    items.append(("bilevel.png", encode(pic("1"), "png")))
    items.append(("bilevel.tiff", encode(pic("1"), "tiff", compression="group4")))
    items.append(("bilevel.bmp", encode(pic("1"), "bmp")))
    items.append(("palette.png", encode(pic("P"), "png")))
    items.append(("palette.gif", encode(pic("P"), "gif")))
    items.append(("palette.bmp", encode(pic("P"), "bmp")))
    items.append(("palette.tiff", encode(pic("P"), "tiff")))
    p = pic("P")
    items.append(("palette_trns.png", encode(p, "png", transparency=0)))
    items.append(("palette_trns.gif", encode(p, "gif", transparency=3)))
    items.append(("palette_rgba.png", encode(pic("RGBA").quantize(16), "png")))
    items.append(("rgb_trns.png", encode(pic("RGB"), "png", transparency=(0, 0, 0))))
    items.append(("gray_trns.png", encode(pic("L"), "png", transparency=0)))
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    for shape, name in [((20, 30), "gray16.png"), ((20, 30), "gray16.tiff")]:
        arr = nrng.integers(0, 65535, shape, dtype=np.uint16)
        items.append((name, encode(PILImage.fromarray(arr), name.split(".")[1])))
    try:
        import cv2

        for c, name in [(3, "rgb16.png"), (4, "rgba16.png"), (3, "rgb16.tiff"), (4, "rgba16.tiff"), (2, "la16.png")]:
            arr = nrng.integers(0, 65535, (18, 26, c), dtype=np.uint16)
            if name == "la16.png":
                sys.path.insert(0, str(REPO))
                from imgtrans._pngchunks import encode_png

                items.append((name, encode_png(arr)))
                continue
            ok, enc = cv2.imencode("." + name.split(".")[1], arr)
            if ok:
                items.append((name, enc.tobytes()))
    except ImportError:
        pass
    items.append(("i16.png", encode(PILImage.fromarray(nrng.integers(0, 65535, (12, 14), dtype=np.int32), "I").convert("I;16"), "png")))
    items.append(("int32.tiff", encode(PILImage.fromarray(nrng.integers(-5, 70000, (12, 14), dtype=np.int32), "I"), "tiff")))
    items.append(("float.tiff", encode(PILImage.fromarray(nrng.random((12, 14), dtype=np.float32) * 3 - 1, "F"), "tiff")))
    f = nrng.random((12, 14), dtype=np.float32)
    f[0, 0], f[1, 1], f[2, 2] = np.nan, np.inf, -np.inf
    items.append(("float_nan.tiff", encode(PILImage.fromarray(f, "F"), "tiff")))
    items.append(("i16b.tiff", encode(PILImage.fromarray(nrng.integers(0, 65535, (10, 12), dtype=np.uint16)).convert("I;16B"), "tiff")))
    items.append(("rgbx_jpeg_compr.tiff", encode(pic("RGB", 32, 32), "tiff", compression="jpeg")))
    items.append(("multipage.tiff", _multipage_tiff(rng)))
    items.append(("progressive.jpg", encode(pic("RGB", 64, 48), "jpg", progressive=True)))
    items.append(("interlaced.png", _interlaced_png(pic("RGB"))))
    for k in range(b.n(6, 0)):
        items.append((f"exif_rot{k + 3}.jpg", encode(pic("RGB"), "jpg", exif=_exif_orientation(k + 3))))
    if b.subset:
        items = items[:: max(1, len(items) // 10)]
    for name, data in items:
        b.add("modes", name, data, OK)


def _multipage_tiff(rng: random.Random) -> bytes:
    frames = [picture(rng, 16 + 4 * k, 12, "RGB") for k in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _interlaced_png(img: PILImage.Image) -> bytes:
    """An Adam7-interlaced PNG, built by hand (Pillow cannot write one)."""
    arr = np.asarray(img.convert("RGB"))
    h, w, _ = arr.shape
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\0" + row.tobytes()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return PNG_SIG + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _exif_orientation(value: int) -> bytes:
    return exif_block([(0x0112, 3, 1, struct.pack("<H", value))])


def cat_icc(b: Builder) -> None:
    rng = b.rng
    good = srgb_icc()
    from PIL import ImageCms

    gray = fixed_date(ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes())
    broken = [
        ("random", rng.randbytes(600)),
        ("truncated", good[: len(good) // 2]),
        ("header_only", good[:128]),
        ("len_field_huge", good[:0] + struct.pack(">I", 0x7FFFFFFF) + good[4:]),
        ("len_field_zero", struct.pack(">I", 0) + good[4:]),
        ("tag_count_huge", good[:128] + struct.pack(">I", 0x0FFFFFFF) + good[132:]),
        ("tag_offsets_past_end", good[:132] + b"".join(good[132 + 12 * i : 136 + 12 * i] + struct.pack(">II", 0x7FFFFF00, 0x100) for i in range(3)) + good[132 + 36 :]),
        ("cmyk_space_on_rgb", good[:16] + b"CMYK" + good[20:]),
        ("gray_space_on_rgb", good[:16] + b"GRAY" + good[20:]),
        ("lab_profile_on_rgb", gray),
        ("one_byte", b"\x00"),
        ("acsp_garbage", good[:36] + b"acsp" + rng.randbytes(300)),
    ]
    exts = ["png", "jpg", "webp", "tiff"]
    k = 0
    for name, icc in broken:
        for ext in exts if not b.subset else [exts[k % 4]]:
            k += 1
            try:
                data = with_meta(rng, ext, icc=icc)
            except Exception:  # the encoder refuses some of these; plant them by hand below
                continue
            b.add("icc", f"icc_{name}.{ext}", data, OK, f"broken ICC ({name}) in {ext}")
    # a PNG iCCP chunk that is not zlib, and one with a bad CRC
    png = encode(picture(rng, 12, 12), "png")
    b.add("icc", "iccp_not_zlib.png", png[:33] + chunk(b"iCCP", b"p\0\0" + rng.randbytes(100)) + png[33:], OK)
    bad_crc = bytearray(chunk(b"iCCP", b"p\0\0" + zlib.compress(good)))
    bad_crc[-1] ^= 0xFF
    b.add("icc", "iccp_bad_crc.png", png[:33] + bytes(bad_crc) + png[33:], OK)
    b.add("icc", "iccp_twice.png", png[:33] + chunk(b"iCCP", b"p\0\0" + zlib.compress(good)) * 2 + png[33:], OK)
    if not b.subset:
        # CMYK JPEG with a broken CMYK-space profile
        b.add("icc", "cmyk_broken_profile.jpg", with_meta(rng, "jpg", icc=good[:16] + b"CMYK" + rng.randbytes(200), mode="CMYK"), OK)


def cat_exif(b: Builder) -> None:
    rng = b.rng
    S, L, A = 3, 4, 2  # SHORT, LONG, ASCII
    blocks = [
        ("random", b"Exif\x00\x00" + rng.randbytes(300)),
        ("no_header_random", rng.randbytes(64)),
        ("truncated", _exif_orientation(6)[:14]),
        ("orient_0", _exif_orientation(0)),
        ("orient_9", _exif_orientation(9)),
        ("orient_65535", _exif_orientation(65535)),
        ("orient_as_long", exif_block([(0x0112, L, 1, struct.pack("<I", 6))])),
        ("orient_as_ascii", exif_block([(0x0112, A, 4, b"six\0")])),
        ("orient_count_2", exif_block([(0x0112, S, 2, struct.pack("<HH", 6, 6))])),
        ("orient_6_bigendian", exif_block([(0x0112, S, 1, struct.pack(">H", 6) + b"\0\0")], endian=">")),
        ("ifd_offset_past_end", exif_block([], ifd_offset=0x7FFFFFF0)),
        ("ifd_loop", exif_block([(0x0112, S, 1, struct.pack("<H", 3))], next_ifd=8)),
        ("exif_ifd_points_to_self", exif_block([(0x8769, L, 1, struct.pack("<I", 8))])),
        ("gps_ifd_past_end", exif_block([(0x8825, L, 1, struct.pack("<I", 0x7FFFFFFF))])),
        ("count_huge", exif_block([(0x010F, A, 0x7FFFFFFF, struct.pack("<I", 26))])),
        ("bad_type_99", exif_block([(0x010F, 99, 4, b"abcd")])),
        ("entries_65535", b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\0" * 40),
        ("bad_byte_order", b"Exif\x00\x00XX*\x00\x08\x00\x00\x00" + b"\0" * 20),
        ("bad_magic", b"Exif\x00\x00II\x2b\x00\x08\x00\x00\x00" + b"\0" * 20),
        ("empty", b"Exif\x00\x00"),
    ]
    exts = ["jpg", "png", "webp", "tiff"]
    k = 0
    for name, exif in blocks:
        for ext in exts if not b.subset else [exts[k % 4]]:
            k += 1
            try:
                data = with_meta(rng, ext, exif=exif)
            except Exception:
                continue
            b.add("exif", f"exif_{name}.{ext}", data, OK, f"broken EXIF ({name}) in {ext}")
    # orientation 6 on a 1xN image (the transpose must not break), a giant maker note
    b.add("exif", "orient6_1x40.jpg", encode(picture(rng, 1, 40), "jpg", exif=_exif_orientation(6)), OK)
    b.add("exif", "orient8_40x1.png", encode(picture(rng, 40, 1), "png", exif=_exif_orientation(8)), OK)
    if not b.subset:
        big = exif_block([(0x927C, 7, 60000, struct.pack("<I", 26))], tail=rng.randbytes(60000))
        b.add("exif", "makernote_60k.jpg", with_meta(rng, "jpg", exif=big), OK)
        b.add("exif", "exif_700k.png", with_meta(rng, "png", exif=exif_block([(0x927C, 7, 700000, struct.pack("<I", 26))], tail=b"\0" * 700000)), OK)


def cat_animated(b: Builder) -> None:
    rng = b.rng
    for k in range(b.n(5, 1)):
        n = rng.randint(2, 30)
        frames = [picture(rng, 24, 20, "RGB").convert("P") for _ in range(n)]
        buf = io.BytesIO()
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=40, loop=0, disposal=rng.choice([0, 1, 2, 3]))
        b.add("animated", f"anim_{n}.gif", buf.getvalue(), OK, f"{n}-frame GIF")
        if k == 0:
            data = buf.getvalue()
            b.add("animated", "anim_truncated.gif", data[: len(data) * 2 // 3], ANY, "GIF cut in a later frame")
    for k in range(b.n(4, 1)):
        n = rng.randint(2, 12)
        frames = [picture(rng, 24, 20, rng.choice(["RGB", "RGBA"])) for _ in range(n)]
        buf = io.BytesIO()
        frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=k % 2 == 0)
        b.add("animated", f"anim_{n}.webp", buf.getvalue(), OK, f"{n}-frame WebP")
    for k in range(b.n(3, 1)):
        frames = [picture(rng, 20, 16, "RGBA") for _ in range(3)]
        buf = io.BytesIO()
        frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:], duration=30)
        b.add("animated", f"apng_{k}.png", buf.getvalue(), OK, "APNG")
    if not b.subset:
        # frames of different sizes, offsets outside the screen
        frames = [picture(rng, 10 + 5 * i, 8 + 3 * i, "RGB").convert("P") for i in range(4)]
        buf = io.BytesIO()
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
        b.add("animated", "anim_growing.gif", buf.getvalue(), OK)


def cat_links(b: Builder) -> None:
    d = b.folder("links")
    target = b.add("links", "target.png", good_bytes(b.rng, "png"), OK)
    p = b.add("links", "zz_link_to_target.png", None, FAIL, "symlink to a file already in the batch (converted once, the link reported as the same file)")
    p.symlink_to(target.name)
    p = b.add("links", "link_to_outside.png", None, OK, "symlink to an image outside the batch")
    outside = b.root.parent / (b.root.name + "_outside.png")
    outside.write_bytes(good_bytes(b.rng, "png"))
    p.symlink_to(outside)
    p = b.add("links", "dangling.png", None, FAIL, "dangling symlink")
    p.symlink_to("does-not-exist.png")
    a = b.add("links", "loop_a.png", None, FAIL, "symlink loop a -> b -> a")
    bb = b.add("links", "loop_b.png", None, FAIL, "symlink loop b -> a -> b")
    a.symlink_to("loop_b.png")
    bb.symlink_to("loop_a.png")
    p = b.add("links", "self_loop.jpg", None, FAIL, "symlink to itself")
    p.symlink_to("self_loop.jpg")
    p = b.add("links", "dev_zero.png", None, FAIL, "symlink to /dev/zero")
    p.symlink_to("/dev/zero")
    p = b.add("links", "dev_urandom.jpg", None, FAIL, "symlink to /dev/urandom")
    p.symlink_to("/dev/urandom")
    sub = d / "sub"
    sub.mkdir()
    q = sub / "inner.png"
    q.write_bytes(good_bytes(b.rng, "png"))
    b.names.add(q)
    b.cases.append(Case(q, "links", OK, "file inside a looped folder"))
    p = b.add("links", "sub/loop_up", None, FAIL, "directory symlink loop sub/loop_up -> ..")
    p.symlink_to("..")
    p = b.add("links", "sub/loop_self", None, FAIL, "directory symlink to its own folder")
    p.symlink_to(".")


def cat_special(b: Builder) -> None:
    p = b.add("special", "fifo.png", None, FAIL, "FIFO named .png (opening it would block)")
    os.mkfifo(p)
    p = b.add("special", "socket.jpg", None, FAIL, "unix socket named .jpg")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(p))
    except OSError:  # path too long for AF_UNIX: skip this one
        b.cases.pop()
        b.names.discard(p)
    finally:
        s.close()
    d = b.add("special", "dir_named.png", None, IGNORED, "a directory named .png (walked into with -r)")
    d.mkdir()
    inner = d / "inside.png"
    inner.write_bytes(good_bytes(b.rng, "png"))
    b.names.add(inner)
    b.cases.append(Case(inner, "special", OK, "image inside a directory named .png"))
    p = b.add("special", "mode000.png", good_bytes(b.rng, "png"), OK, "chmod 000 (root can still read it)")
    p.chmod(0)
    p = b.add("special", "mode000.txt", b"text", FAIL, "chmod 000 non-image")
    p.chmod(0)
    p = b.add("special", ".hidden.png", good_bytes(b.rng, "png"), IGNORED, "hidden file (dot name) inside a folder")


def cat_names(b: Builder) -> None:
    rng = b.rng
    names = [
        "spaces in name.png", "ünïcödé.png", "日本語の写真.jpg", "emoji_😀🎉.png", "rtl_\u202egnp.png", "zero\u200bwidth.png",
        "e\u0301_nfd.png", "\u00e9_nfc.png", "newline\nname.png", "tab\tname.png", "-leading-dash.png", "..png", "...png",
        "back\\slash.png", "quote'\"name.png", "semi;colon$(x).png", "star*?.png", "UPPER.PNG", "MiXeD.JpEg", "x" * 240 + ".png",
        "trailing space .png", "percent%s%n.png", "ansi\x1b[31mred.png", "cr\rname.png", "bell\x07.png",
    ]
    for i, name in enumerate(names if not b.subset else names[::5] + ["newline\nname.png"]):
        ext = name.rsplit(".", 1)[1].lower()
        ext = {"jpeg": "jpg"}.get(ext, ext)
        hidden = name.startswith(".")
        b.add("names", name, good_bytes(rng, ext), IGNORED if hidden else OK, ("hidden (dot) name " if hidden else "") + repr(name))
    # invalid UTF-8 in a file name (bytes path)
    raw = os.fsencode(b.folder("names")) + b"/bad_utf8_\xff\xfe.png"
    with open(raw, "wb") as fh:
        fh.write(good_bytes(rng, "png"))
    p = Path(os.fsdecode(raw))
    b.names.add(p)
    b.cases.append(Case(p, "names", OK, "invalid UTF-8 bytes in the name"))
    # names that collide once the extension changes or case is folded
    for name in ["a.png", "a.jpg", "a.webp", "A.PNG", "a_png.png", "b.tif", "b.tiff", "c.jpeg", "c.jpg", "c.JPG"][: b.n(10, 6)]:
        ext = {"jpeg": "jpg", "tif": "tiff"}.get(name.rsplit(".", 1)[1].lower(), name.rsplit(".", 1)[1].lower())
        b.add("collide", name, good_bytes(rng, ext), OK, "colliding output names")


CATEGORIES = {
    "truncated": cat_truncated,
    "bitflip": cat_bitflip,
    "header": cat_header,
    "empty": cat_empty,
    "wrongext": cat_wrongext,
    "notimage": cat_notimage,
    "tiny": cat_tiny,
    "longline": cat_longline,
    "bombs": cat_bombs,
    "modes": cat_modes,
    "icc": cat_icc,
    "exif": cat_exif,
    "animated": cat_animated,
    "links": cat_links,
    "special": cat_special,
    "names": cat_names,
}


#: in the subset, categories of plain files are sampled down to this many inputs (fixed seed)
SUBSET_QUOTA = {"truncated": 5, "bitflip": 5, "header": 5, "empty": 2, "wrongext": 3, "notimage": 3, "tiny": 4,
                "modes": 6, "icc": 4, "exif": 5, "animated": 3, "bombs": 6}


def generate(root: Path, seed: int = 0, subset: bool = False) -> list[Case]:
    """Write the hostile inputs under ``root/<category>/`` and return them as cases.

    ``subset``: the small fixed-seed selection the test suite runs (~70 inputs, every category)."""
    root.mkdir(parents=True, exist_ok=True)
    b = Builder(root, seed, subset)
    for name, fn in CATEGORIES.items():
        fn(b)
    if not subset:
        return b.cases
    pick = random.Random(seed)
    keep: list[Case] = []
    for cat in dict.fromkeys(c.category for c in b.cases):
        group = [c for c in b.cases if c.category == cat]
        quota = SUBSET_QUOTA.get(cat)
        if quota is not None and len(group) > quota:
            must = [c for c in group if c.note.startswith("real ")]  # the real bomb stays
            chosen = must + pick.sample([c for c in group if c not in must], quota - len(must))
            for c in group:
                if c not in chosen:
                    c.path.unlink()
            group = [c for c in group if c in chosen]
        keep.extend(group)
    return keep


def make_perms_tree(root: Path, seed: int = 0) -> list[Case]:
    """Files really unreadable for a non-root user (run the batch as ``nobody``)."""
    b = Builder(root, seed, True)
    ok = b.add("perms", "readable.png", good_bytes(b.rng, "png"), OK)
    p = b.add("perms", "mode000.png", good_bytes(b.rng, "png"), FAIL, "chmod 000: permission denied")
    p.chmod(0)
    p = b.add("perms", "mode200.jpg", good_bytes(b.rng, "jpg"), FAIL, "write-only: permission denied")
    p.chmod(0o200)
    sub = b.folder("perms") / "locked"
    sub.mkdir()
    inner = sub / "inside.png"
    inner.write_bytes(good_bytes(b.rng, "png"))
    b.cases.append(Case(sub, "perms", FAIL, "chmod 000 folder: cannot list"))
    sub.chmod(0)
    noexec = b.folder("perms") / "noexec"
    noexec.mkdir()
    inner2 = noexec / "inside.png"
    inner2.write_bytes(good_bytes(b.rng, "png"))
    b.cases.append(Case(inner2, "perms", FAIL, "file in a folder without search permission"))
    noexec.chmod(0o644)
    del ok
    return b.cases


# ----------------------------------------------------------------------------------- running


@dataclass
class CliResult:
    returncode: int | None  # None: killed after the timeout (a hang)
    stderr: str
    stdout: str
    seconds: float


def run_cli(inputs: list[str | Path], out: Path, model: str | Path, extra: list[str] = (), timeout: float = 900,
            user: str | None = None, env: dict | None = None) -> CliResult:
    """Run ``python -m imgtrans convert INPUTS -o OUT -m MODEL --no-progress EXTRA`` in a subprocess."""
    cmd = [sys.executable, "-m", "imgtrans", "convert", *map(str, inputs), "-o", str(out), "-m", str(model), "--no-progress", *extra]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"] + cmd
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env, cwd=str(REPO), start_new_session=True)
    try:
        out_b, err_b = proc.communicate(timeout=timeout)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out_b, err_b = proc.communicate()
        code = None
    return CliResult(code, err_b.decode("utf-8", "replace"), out_b.decode("utf-8", "replace"), time.perf_counter() - t0)


def _has_surrogates(s: str) -> bool:
    return any(0xDC80 <= ord(c) <= 0xDCFF for c in s)


def _printed_variants(path: Path) -> list[str]:
    """How the CLI may print ``path`` on stderr (undecodable bytes become backslash escapes)."""
    s = str(path)
    if not _has_surrogates(s):
        return [s]
    return [s.encode("utf-8", "backslashreplace").decode("ascii", "replace"), s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")]


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (links not followed, unreadable files noted)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                try:
                    with open(p, "rb") as fh:
                        out[p] = hashlib.sha256(fh.read()).hexdigest()
                except OSError as exc:
                    out[p] = f"unreadable:{exc.errno}"
                out[p] += f":{stat.S_IMODE(st.st_mode):o}:{st.st_mtime_ns}"
            elif stat.S_ISLNK(st.st_mode):
                out[p] = "link:" + os.readlink(p)
    return out


def decodes(path: Path) -> str | None:
    """None if ``path`` is a complete, decodable image, else why not."""
    try:
        with PILImage.open(path) as im:
            im.load()
            if im.width < 1 or im.height < 1:
                return "empty image"
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


SUMMARY = re.compile(r"^imgtrans: (\d+) converted, (\d+) skipped, (\d+) failed in [\d.]+ s; outputs in ", re.M)
_OWN_LINE = re.compile(r"^(imgtrans: |failed: |skipped: |failures:$|  |WARNING imgtrans[.\w]*: )")


@dataclass
class RunReport:
    name: str
    tried: int = 0
    converted: int = 0
    reported: int = 0
    failed_lines: int = 0
    skipped_lines: int = 0
    exit_code: int | None = None
    seconds: float = 0.0
    crash: bool = False
    tracebacks: int = 0
    problems: list[str] = field(default_factory=list)
    noise: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # outcome differs from the case's expectation

    @property
    def ok(self) -> bool:
        return not self.crash and not self.tracebacks and not self.problems and not self.unexpected

    def line(self) -> str:
        return (f"{self.name:<12} tried {self.tried:4d}  converted {self.converted:4d}  reported {self.reported:4d}  "
                f"exit {self.exit_code}  crash {int(self.crash)}  tracebacks {self.tracebacks}  "
                f"problems {len(self.problems)}  unexpected {len(self.unexpected)}  noise {len(self.noise)}  {self.seconds:.1f} s")


def plan_for(inputs: list[str | Path], out: Path, options: dict) -> dict[str, Path]:
    """``str(input) -> planned output`` as the engine plans it."""
    from imgtrans.engine import ConvertOptions, plan_jobs

    jobs, _ = plan_jobs([str(i) for i in inputs], ConvertOptions(output_dir=out, **options))
    return {str(j.src): j.dst for j in jobs}


def check_run(name: str, cases: list[Case], inputs: list[str | Path], out: Path, res: CliResult,
              plan: dict[str, Path], before: dict[str, str], after: dict[str, str], out_existing: set[str] = frozenset()) -> RunReport:
    """Check one CLI run against its cases (see the module docstring for what is checked)."""
    rep = RunReport(name, tried=len(cases), exit_code=res.returncode, seconds=res.seconds)
    err = res.stderr
    if res.returncode is None:
        rep.crash = True
        rep.problems.append("hang: the CLI did not finish before the timeout")
    elif res.returncode not in (0, 1):
        rep.crash = True
        rep.problems.append(f"exit code {res.returncode} (expected 0 or 1)")
    rep.tracebacks = err.count("Traceback (most recent call last)")
    if rep.tracebacks:
        rep.problems.append("traceback on stderr:\n" + err[err.find("Traceback") :][:1500])

    # Which files does stderr name, and how?
    # C libraries (libtiff) write to the same stderr, unbuffered, from the I/O threads, so their
    # text can land in the middle of one of the CLI's lines: count the CLI's markers anywhere.
    failed_re = re.findall(r"failed: (?=/|batch|<)", err)
    skipped_re = re.findall(r"skipped: (?=/|<)", err)
    rep.failed_lines, rep.skipped_lines = len(failed_re), len(skipped_re)
    scrubbed = err
    for c in sorted(cases, key=lambda c: -len(str(c.path))):
        for v in _printed_variants(c.path):
            scrubbed = scrubbed.replace(v, "<PATH>")
    for line in scrubbed.splitlines():
        if line.strip() and not _OWN_LINE.match(line):
            rep.noise.append(line[:200])

    outputs_seen: dict[Path, str] = {}
    for c in cases:
        variants = _printed_variants(c.path)
        named_failed = any(f"failed: {v}: " in err for v in variants)
        named_skipped = any(f"skipped: {v}: " in err for v in variants)
        reason = ""
        for v in variants:
            m = re.search(re.escape(f"{v}: ") + r"(.*)", err)
            if m:
                reason = m.group(1)
                break
        dst = plan.get(str(c.path))
        converted = False
        if dst is not None and str(dst) not in out_existing and os.path.lexists(dst):
            why = decodes(dst)
            if why is not None:
                rep.problems.append(f"{c.path}: output {dst} does not decode ({why})")
            converted = True
            if dst in outputs_seen:
                rep.problems.append(f"{c.path}: shares its output {dst} with {outputs_seen[dst]}")
            outputs_seen[dst] = str(c.path)
        reported = named_failed or named_skipped
        if reported and not reason.strip():
            rep.problems.append(f"{c.path}: reported without a reason")
        if converted and named_failed:
            rep.problems.append(f"{c.path}: both converted and reported failed")
        if converted:
            rep.converted += 1
        elif reported:
            rep.reported += 1
        if c.expect == IGNORED:
            if not converted and not reported:
                rep.ignored.append(f"{c.path.name!r}: {c.note}")
            continue
        if not converted and not reported:
            rep.problems.append(f"{c.path}: LOST - neither converted nor reported ({c.note})")
        elif c.expect == OK and not converted:
            rep.unexpected.append(f"{c.path.relative_to(c.path.parents[1]) if len(c.path.parents) > 1 else c.path}: expected to convert, got: {reason[:160]} ({c.note})")
        elif c.expect == FAIL and converted:
            rep.unexpected.append(f"{c.path.name!r}: expected a refusal, was converted ({c.note})")

    # Summary line and exit code.
    m = SUMMARY.search(err)
    if res.returncode is not None:
        if not m:
            rep.problems.append("no summary line")
        else:
            n_conv, n_skip, n_fail = map(int, m.groups())
            produced = {str(p) for p in out.rglob("*") if p.is_file() and str(p) not in out_existing}
            if n_fail != rep.failed_lines:
                rep.problems.append(f"summary says {n_fail} failed, stderr has {rep.failed_lines} 'failed:' lines")
            if n_skip != rep.skipped_lines:
                rep.problems.append(f"summary says {n_skip} skipped, stderr has {rep.skipped_lines} 'skipped:' lines")
            if n_conv != len(produced):
                rep.problems.append(f"summary says {n_conv} converted, the output folder has {len(produced)} new files")
            want = 1 if n_fail else 0
            if res.returncode != want:
                rep.problems.append(f"exit code {res.returncode} but {n_fail} failed (expected {want})")
            failures_list = err[err.find("\nfailures:\n") :] if "\nfailures:\n" in err else ""
            if n_fail and failures_list.count("\n  ") < n_fail:
                rep.problems.append("the final 'failures:' list is shorter than the failed count")

    # Nothing but planned outputs in the output folder; no temp files.
    planned = {str(p) for p in plan.values()}
    for p in out.rglob("*"):
        if p.is_file() and str(p) not in out_existing and str(p) not in planned:
            rep.problems.append(f"unexpected file in the output folder: {p}")
        if p.name.endswith(".part"):
            rep.problems.append(f"temporary file left behind: {p}")
    out_real = out.resolve()
    for p in out.rglob("*"):
        if out_real not in p.resolve().parents and p.resolve() != out_real:
            rep.problems.append(f"output outside the output folder: {p}")
    if before != after:
        changed = sorted(set(before.items()) ^ set(after.items()))
        rep.problems.append(f"inputs modified: {changed[:5]}")
    return rep


# ----------------------------------------------------------------------------------- main


def tiny_model(path: Path, kind: str = "denoise") -> Path:
    """A tiny real model file (same families as the tests' fixtures)."""
    import torch

    from imgtrans.archs import DnCNN, ResnetGenerator, SRResNet
    from imgtrans.weights import save_model

    arch, cls, hp = {
        "style": ("cyclegan_resnet", ResnetGenerator, {"ngf": 8, "n_blocks": 2}),
        "sr": ("srresnet", SRResNet, {"nf": 8, "n_blocks": 2, "scale": 2}),
        "denoise": ("dncnn", DnCNN, {"nf": 8, "depth": 4, "bn": False}),
    }[kind]
    module = cls(**hp)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return save_model(path, module.eval(), arch, hp, {"id": f"fuzz-{kind}", "name": f"fuzz {kind}"})


def run_batch(name: str, cases: list[Case], inputs: list[Path], out: Path, model: Path, extra: list[str] = (),
              hash_root: Path | None = None, user: str | None = None, timeout: float = 900, env: dict | None = None) -> RunReport:
    options = {"recursive": "-r" in extra or "--recursive" in extra}
    plan = plan_for(inputs, out, options)
    hash_root = hash_root or Path(os.path.commonpath([str(i) for i in inputs]))
    before = hash_tree(hash_root)
    res = run_cli(inputs, out, model, list(extra), timeout=timeout, user=user, env=env)
    after = hash_tree(hash_root)
    return check_run(name, cases, inputs, out, res, plan, before, after)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--subset", action="store_true", help="only the fixed-seed subset the test suite runs")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    ap.add_argument("--models", default="denoise,sr,style", help="models for the one-batch run (comma list of denoise,sr,style)")
    ap.add_argument("--no-categories", action="store_true", help="skip the per-category batches")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="imgtrans-fuzz-"))
    root = (args.keep or work / "inputs").resolve()
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    cases = generate(root, args.seed, args.subset)
    gen_s = time.perf_counter() - t0
    print(f"generated {len(cases)} hostile inputs in {len(CATEGORIES)} categories under {root} ({gen_s:.1f} s)")
    for cat in CATEGORIES:
        print(f"  {cat:<10} {sum(c.category == cat for c in cases):4d}")
    models = {k: tiny_model(work / f"{k}.safetensors", k) for k in args.models.split(",")}
    extra = ["-r"] + (["--max-pixels", "4000000"] if args.subset else [])
    reports: list[RunReport] = []
    for kind, model in models.items():
        rep = run_batch(f"all/{kind}", cases, [root], work / f"out-all-{kind}", model, extra)
        reports.append(rep)
        print(rep.line(), flush=True)
    if not args.no_categories:
        model = models[next(iter(models))]
        for cat in CATEGORIES:
            sub = [c for c in cases if c.category == cat]
            rep = run_batch(f"cat/{cat}", sub, [root / cat], work / f"out-cat-{cat}", model, extra, hash_root=root)
            reports.append(rep)
            print(rep.line(), flush=True)
        # explicit file arguments (not folders): special files named on the command line
        explicit = [c for c in cases if c.category in ("links", "special", "notimage", "empty") and c.expect != IGNORED
                    and c.path.parent.name in ("links", "special", "notimage", "empty")]
        missing = Case(root / "does-not-exist.png", "explicit", FAIL, "missing file named on the command line")
        rep = run_batch("explicit", explicit + [missing], [c.path for c in explicit] + [missing.path], work / "out-explicit",
                        model, [], hash_root=root)
        reports.append(rep)
        print(rep.line(), flush=True)
    if os.geteuid() == 0 and shutil.which("setpriv"):
        proot = work / "perms-in"
        pcases = make_perms_tree(proot, args.seed)
        pout = work / "perms-out"
        pout.mkdir()
        for p in (work, proot, proot / "perms", pout):
            os.chmod(p, 0o777)
        pmodel = work / "perms-model.safetensors"
        shutil.copy(models[next(iter(models))], pmodel)
        os.chmod(pmodel, 0o644)
        (work / "home").mkdir(exist_ok=True)
        os.chmod(work / "home", 0o777)
        rep = run_batch("perms/nobody", pcases, [proot / "perms"], pout, pmodel, ["-r"], hash_root=proot, user="65534",
                        env={"IMGTRANS_HOME": str(work / "home")})
        reports.append(rep)
        print(rep.line(), flush=True)
    else:
        print("perms/nobody: skipped (needs root and setpriv to drop privileges)")

    total_tried = sum(r.tried for r in reports)
    crashes = sum(r.crash for r in reports)
    tracebacks = sum(r.tracebacks for r in reports)
    lost = sum(sum("LOST" in p for p in r.problems) for r in reports)
    problems = sum(len(r.problems) for r in reports)
    unexpected = sum(len(r.unexpected) for r in reports)
    print()
    print(f"inputs generated: {len(cases)}; file checks over all runs: {total_tried}; runs: {len(reports)}")
    print(f"crashes: {crashes}; tracebacks: {tracebacks}; files lost (neither converted nor reported): {lost}; "
          f"other problems: {problems - lost}; outcome different from expected: {unexpected}")
    for r in reports:
        for p in r.problems:
            print(f"  PROBLEM [{r.name}] {p}")
        for u in r.unexpected:
            print(f"  UNEXPECTED [{r.name}] {u}")
    noise = sorted({n for r in reports for n in r.noise})
    if noise:
        print("stderr lines that are not the CLI's own:")
        for n in noise[:30]:
            print(f"  {n}")
    ignored = sorted({i for r in reports for i in r.ignored})
    if ignored:
        print("left out silently by design:")
        for i in ignored:
            print(f"  {i}")
    if args.json:
        args.json.write_text(json.dumps({
            "inputs": len(cases), "checks": total_tried, "runs": len(reports), "crashes": crashes, "tracebacks": tracebacks,
            "lost": lost, "problems": problems, "unexpected": unexpected,
            "reports": [{"name": r.name, "tried": r.tried, "converted": r.converted, "reported": r.reported, "exit": r.exit_code,
                         "seconds": round(r.seconds, 1), "problems": r.problems, "unexpected": r.unexpected, "noise": r.noise} for r in reports],
        }, indent=2))
    if args.keep is None:
        _rmtree(work)
    return 0 if crashes == tracebacks == problems == unexpected == 0 else 1


def _rmtree(path: Path) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            with_suppress(os.chmod, os.path.join(dirpath, d), 0o755)
    shutil.rmtree(path, ignore_errors=True)


def with_suppress(fn, *a):
    try:
        fn(*a)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
