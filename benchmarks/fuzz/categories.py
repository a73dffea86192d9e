"""The hostile-input categories (one ``cat_*`` function each, registered in :data:`CATEGORIES`),
:func:`generate` that writes them all (or the fixed-seed subset the tests run), and
:func:`make_perms_tree` for the batch run as an unprivileged user."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from benchmarks.fuzz.builders import (
    ANY,
    FAIL,
    FORMATS,
    OK,
    PNG_SIG,
    Builder,
    Case,
    chunk,
    encode,
    exif_block,
    fixed_date,
    good_bytes,
    picture,
    png_raw,
    sof_offset,
    srgb_icc,
    stream_zero_png,
    tiff_bytes,
    tiff_set_tag,
    webp_vp8l_dims,
    webp_vp8x_canvas,
    with_meta,
)
from benchmarks.fuzz.filesystem import cat_links, cat_names, cat_special


def cat_truncated(b: Builder) -> None:
    for ext in FORMATS:
        for k in range(b.n(14, 2)):
            data = good_bytes(b.rng, ext)
            cut = ([8, 16, 33, len(data) // 2, len(data) - 1, len(data) - 12][k] if k < 6
                   else b.rng.randrange(1, len(data)))
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
    b.add("header", "png_plte_missing.png", png_raw(8, 8, 8, 3, idat=zlib.compress(b"\0" * 72)), ANY,
          "palette PNG without PLTE")
    b.add("header", "png_huge_chunk_len.png", good[:ihdr_end] + struct.pack(">I", 0x7FFFFFF0) + b"tEXt" + b"x" * 20,
          FAIL)
    if not b.subset:
        b.add("header", "png_many_chunks.png",
              good[:ihdr_end] + b"".join(chunk(b"tEXt", b"k\0v") for _ in range(20000)) + good[ihdr_end:], ANY)
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
        ("bmp_compression_9", 30, "<I", 9, FAIL), ("bmp_width_0", 18, "<i", 0, FAIL),
        ("bmp_dataoff_huge", 10, "<I", 0x7FFFFFFF, FAIL),
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
        b.add("longline", "line_100000x1.tiff", encode(picture(b.rng, 100000, 1), "tiff", compression="tiff_deflate"),
              OK)
        # a x2 model makes these too wide for their own format: converted or reported, either is fine
        b.add("longline", "line_65000x1.jpg", encode(picture(b.rng, 65000, 1), "jpg"), ANY,
              "65000x1 JPEG (x2 is too wide for JPEG)")
        b.add("longline", "line_16383x1.webp", encode(picture(b.rng, 16383, 1), "webp", lossless=True), ANY,
              "16383x1 WebP (x2 is too wide for WebP)")
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
        b.add("bombs", "webp_vp8x_canvas_2e6x2e6.webp", webp_vp8x_canvas(2_000_000, 2_000_000), FAIL,
              "VP8X canvas bomb")
    # real, valid, highly compressible images over the limit (limit: default 200M, subset runs 4M)
    if b.subset:
        p = b.add("bombs", "real_2500x2000_zeros.png", None, FAIL, "real 5M-pixel PNG over --max-pixels 4M")
        stream_zero_png(2500, 2000, p)
    else:
        p = b.add("bombs", "real_15000x15000_zeros.png", None, FAIL,
                  "real 225M-pixel PNG (~220 KB) over the default limit")
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
    b.add("bombs", "png_idat_overlong.png", png_raw(16, 16, 8, 2, idat=idat_bomb), ANY,
          "tiny IHDR, IDAT inflating to 400 MB")


def cat_modes(b: Builder) -> None:
    rng = b.rng
    items: list[tuple[str, bytes]] = []

    def pic(mode, w=None, h=None):
        return picture(rng, w or rng.randint(8, 40), h or rng.randint(8, 40), mode)

    from PIL import ImageCms

    items.append(("cmyk.jpg", encode(pic("CMYK"), "jpg")))
    items.append(("cmyk.tiff", encode(pic("CMYK"), "tiff")))
    items.append(("cmyk_deflate.tiff", encode(pic("CMYK"), "tiff", compression="tiff_deflate")))
    lab = ImageCms.applyTransform(pic("RGB"),
                                  ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"),
                                                          "RGB", "LAB"))
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
                from imgtrans._pngchunks import encode_png

                items.append((name, encode_png(arr)))
                continue
            ok, enc = cv2.imencode("." + name.split(".")[1], arr)
            if ok:
                items.append((name, enc.tobytes()))
    except ImportError:
        pass
    items.append(("i16.png",
                  encode(PILImage.fromarray(nrng.integers(0, 65535, (12, 14), dtype=np.int32), "I").convert("I;16"),
                         "png")))
    items.append(("int32.tiff",
                  encode(PILImage.fromarray(nrng.integers(-5, 70000, (12, 14), dtype=np.int32), "I"), "tiff")))
    items.append(("float.tiff",
                  encode(PILImage.fromarray(nrng.random((12, 14), dtype=np.float32) * 3 - 1, "F"), "tiff")))
    f = nrng.random((12, 14), dtype=np.float32)
    f[0, 0], f[1, 1], f[2, 2] = np.nan, np.inf, -np.inf
    items.append(("float_nan.tiff", encode(PILImage.fromarray(f, "F"), "tiff")))
    items.append(("i16b.tiff",
                  encode(PILImage.fromarray(nrng.integers(0, 65535, (10, 12), dtype=np.uint16)).convert("I;16B"),
                         "tiff")))
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
        ("tag_offsets_past_end",
         good[:132] + b"".join(good[132 + 12 * i : 136 + 12 * i] + struct.pack(">II", 0x7FFFFF00, 0x100)
                               for i in range(3)) + good[132 + 36 :]),
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
            except Exception:  # noqa: BLE001 - the encoder refuses some of these; plant them by hand below
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
        b.add("icc", "cmyk_broken_profile.jpg",
              with_meta(rng, "jpg", icc=good[:16] + b"CMYK" + rng.randbytes(200), mode="CMYK"), OK)


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
            except Exception:  # noqa: BLE001 - the encoder refuses some of these blocks
                continue
            b.add("exif", f"exif_{name}.{ext}", data, OK, f"broken EXIF ({name}) in {ext}")
    # orientation 6 on a 1xN image (the transpose must not break), a giant maker note
    b.add("exif", "orient6_1x40.jpg", encode(picture(rng, 1, 40), "jpg", exif=_exif_orientation(6)), OK)
    b.add("exif", "orient8_40x1.png", encode(picture(rng, 40, 1), "png", exif=_exif_orientation(8)), OK)
    if not b.subset:
        big = exif_block([(0x927C, 7, 60000, struct.pack("<I", 26))], tail=rng.randbytes(60000))
        b.add("exif", "makernote_60k.jpg", with_meta(rng, "jpg", exif=big), OK)
        b.add("exif", "exif_700k.png",
              with_meta(rng, "png", exif=exif_block([(0x927C, 7, 700000, struct.pack("<I", 26))], tail=b"\0" * 700000)),
              OK)


def cat_animated(b: Builder) -> None:
    rng = b.rng
    for k in range(b.n(5, 1)):
        n = rng.randint(2, 30)
        frames = [picture(rng, 24, 20, "RGB").convert("P") for _ in range(n)]
        buf = io.BytesIO()
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=40, loop=0,
                       disposal=rng.choice([0, 1, 2, 3]))
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
    for fn in CATEGORIES.values():
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
