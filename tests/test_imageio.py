"""Tests for imgtrans.imageio: lossless image reading/writing with metadata."""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import zlib
from pathlib import Path
from xml.etree import ElementTree

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage, ImageCms, ImageFile, ImageOps, JpegImagePlugin

from imgtrans import _pngchunks, imageio as iio
from imgtrans.imageio import Image, ImageReadError, ImageWriteError, decode, read_image, write_image
from imgtrans.imageio.decode import apply_orientation
from imgtrans.imageio.encode import encode_tiff, output_exif
from imgtrans.imageio.xmp import XMP_NS

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# ---------------------------------------------------------------- helpers


def noise(h: int, w: int, c: int | None, seed: int = 0, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hi = 256 if dtype == np.uint8 else 65536
    shape = (h, w) if c is None else (h, w, c)
    return rng.integers(0, hi, shape).astype(dtype)


def pil_open(path) -> PILImage.Image:
    """Open with Pillow from memory (no file handle left open)."""
    return PILImage.open(io.BytesIO(Path(path).read_bytes()))


def exif_bytes(orientation: int | None = None, make: str | None = "TestCam") -> bytes:
    ex = PILImage.Exif()
    if make:
        ex[0x010F] = make
    if orientation is not None:
        ex[0x0112] = orientation
    return ex.tobytes()


def exif_of(raw: bytes | None) -> PILImage.Exif:
    ex = PILImage.Exif()
    if raw:
        ex.load(raw)
    return ex


def float_img(px: np.ndarray, alpha: np.ndarray | None = None, bit_depth: int = 8, **kw) -> Image:
    kw.setdefault("icc_profile", None)
    kw.setdefault("exif", None)
    kw.setdefault("source_format", "PNG")
    return Image(pixels=px.astype(np.float32), alpha=alpha, bit_depth=bit_depth, **kw)


def all_16bit_values(c: int) -> np.ndarray:
    """(256, 256, c) uint16 holding every 16-bit value (shuffled differently per channel)."""
    rng = np.random.default_rng(c)
    chans = [rng.permutation(65536).reshape(256, 256) for _ in range(c)]
    return np.stack(chans, axis=2).astype(np.uint16)


def no_part_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".part")]


# ---------------------------------------------------------------- reading: modes


def test_read_l(tmp_path):
    a = noise(7, 11, None)
    PILImage.fromarray(a).save(tmp_path / "l.png")
    img = read_image(tmp_path / "l.png")
    assert img.pixels.shape == (7, 11, 1) and img.pixels.dtype == np.float32
    assert img.is_gray and not img.has_alpha and img.bit_depth == 8
    assert (img.height, img.width) == (7, 11)
    assert img.source_format == "PNG"
    np.testing.assert_array_equal(np.rint(img.pixels[:, :, 0] * 255), a)


def test_read_la(tmp_path):
    a = noise(5, 6, 2, seed=1)
    PILImage.fromarray(a).save(tmp_path / "la.png")
    img = read_image(tmp_path / "la.png")
    assert img.pixels.shape == (5, 6, 1) and img.alpha.shape == (5, 6)
    np.testing.assert_array_equal(np.rint(img.pixels[:, :, 0] * 255), a[:, :, 0])
    np.testing.assert_array_equal(np.rint(img.alpha * 255), a[:, :, 1])


def test_read_palette_with_transparency(tmp_path):
    idx = noise(8, 9, None, seed=2) % 4
    pim = PILImage.fromarray(idx.astype(np.uint8)).convert("P")  # palette index == grey value
    pim.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
    pim.save(tmp_path / "p.png", transparency=2)
    img = read_image(tmp_path / "p.png")
    assert img.pixels.shape == (8, 9, 3) and img.has_alpha
    np.testing.assert_array_equal(img.alpha == 0, idx == 2)
    pal = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]])
    np.testing.assert_array_equal(np.rint(img.pixels * 255), pal[idx])


def test_read_gray_palette_gif_stays_gray(tmp_path):
    a = (noise(6, 6, None, seed=3) // 64 * 64).astype(np.uint8)
    PILImage.fromarray(a).convert("P").save(tmp_path / "g.gif")
    img = read_image(tmp_path / "g.gif")
    assert img.source_format == "GIF" and img.is_gray
    np.testing.assert_array_equal(np.rint(img.pixels[:, :, 0] * 255), a)


def test_read_gif_first_frame_with_transparency(tmp_path):
    f1 = PILImage.new("P", (4, 3), 1)
    f1.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    f1.putpixel((0, 0), 0)
    f2 = PILImage.new("P", (4, 3), 0)
    f2.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    f1.save(tmp_path / "a.gif", save_all=True, append_images=[f2], transparency=0)
    img = read_image(tmp_path / "a.gif")
    assert img.pixels.shape == (3, 4, 3) and img.has_alpha
    assert img.alpha[0, 0] == 0 and img.alpha[1, 1] == 1
    np.testing.assert_array_equal(np.rint(img.pixels[1, 1] * 255), [200, 100, 50])


def test_read_mode_1(tmp_path):
    a = noise(5, 9, None, seed=4) > 127
    PILImage.fromarray(a).save(tmp_path / "b.png")
    img = read_image(tmp_path / "b.png")
    assert img.is_gray
    np.testing.assert_array_equal(img.pixels[:, :, 0], a.astype(np.float32))


def test_read_rgb_rgba(tmp_path):
    for c in (3, 4):
        a = noise(6, 7, c, seed=c)
        PILImage.fromarray(a).save(tmp_path / f"{c}.png")
        img = read_image(tmp_path / f"{c}.png")
        assert img.pixels.shape == (6, 7, 3) and img.has_alpha == (c == 4)
        np.testing.assert_array_equal(np.rint(img.pixels * 255), a[:, :, :3])
        if c == 4:
            np.testing.assert_array_equal(np.rint(img.alpha * 255), a[:, :, 3])


def test_read_i16_gray(tmp_path):
    a = noise(9, 4, None, seed=5, dtype=np.uint16)
    PILImage.fromarray(a).save(tmp_path / "g16.png")
    img = read_image(tmp_path / "g16.png")
    assert img.bit_depth == 16 and img.pixels.shape == (9, 4, 1)
    np.testing.assert_array_equal(np.rint(img.pixels[:, :, 0].astype(np.float64) * 65535), a)


@pytest.mark.parametrize("ext", ["png", "tiff"])
@pytest.mark.parametrize("c", [3, 4])
def test_read_16bit_colour_via_opencv(tmp_path, ext, c):
    rgb = noise(5, 8, c, seed=6, dtype=np.uint16)
    bgr = rgb[:, :, [2, 1, 0, 3][:c]]
    assert cv2.imwrite(str(tmp_path / f"x.{ext}"), bgr)
    img = read_image(tmp_path / f"x.{ext}")
    assert img.bit_depth == 16 and img.pixels.shape == (5, 8, 3)
    assert img.source_format == ("PNG" if ext == "png" else "TIFF")
    np.testing.assert_array_equal(np.rint(img.pixels.astype(np.float64) * 65535), rgb[:, :, :3])
    if c == 4:
        np.testing.assert_array_equal(np.rint(img.alpha.astype(np.float64) * 65535), rgb[:, :, 3])
    else:
        assert img.alpha is None


def test_read_16bit_gray_tiff(tmp_path):
    a = noise(4, 5, None, seed=7, dtype=np.uint16)
    PILImage.fromarray(a).save(tmp_path / "g.tif")
    img = read_image(tmp_path / "g.tif")
    assert img.bit_depth == 16 and img.is_gray and img.source_format == "TIFF"
    np.testing.assert_array_equal(np.rint(img.pixels[:, :, 0].astype(np.float64) * 65535), a)


def test_read_int32_and_float_tiff(tmp_path):
    a = noise(3, 4, None, seed=8, dtype=np.uint16).astype(np.int32)
    PILImage.fromarray(a).save(tmp_path / "i.tif")
    img = read_image(tmp_path / "i.tif")
    assert img.is_gray and img.bit_depth == 16
    np.testing.assert_array_equal(np.rint(img.pixels[:, :, 0].astype(np.float64) * 65535), a)

    f = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    PILImage.fromarray(f).save(tmp_path / "f.tif")
    img = read_image(tmp_path / "f.tif")
    np.testing.assert_allclose(img.pixels[:, :, 0], f)


def test_read_jpeg_and_webp_and_bmp(tmp_path):
    a = np.kron(noise(4, 4, 3, seed=9), np.ones((8, 8, 1), np.uint8))  # flat 8x8 blocks
    PILImage.fromarray(a).save(tmp_path / "a.jpg", quality=98, subsampling=0)
    PILImage.fromarray(a).save(tmp_path / "a.webp", lossless=True)
    PILImage.fromarray(a).save(tmp_path / "a.bmp")
    jpg = read_image(tmp_path / "a.jpg")
    assert jpg.source_format == "JPEG" and jpg.pixels.shape == (32, 32, 3)
    assert np.abs(jpg.pixels * 255 - a).max() < 8
    for name, fmt in (("a.webp", "WEBP"), ("a.bmp", "BMP")):
        img = read_image(tmp_path / name)
        assert img.source_format == fmt
        np.testing.assert_array_equal(np.rint(img.pixels * 255), a)


def test_read_cmyk_converts_to_rgb_and_drops_cmyk_profile(tmp_path):
    PILImage.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)
    img = read_image(tmp_path / "c.jpg")
    assert img.pixels.shape == (4, 4, 3) and img.icc_profile is None
    r, g, b = img.pixels[1, 1]
    assert r > 0.9 and g < 0.1 and b < 0.1  # C=0 M=1 Y=1 is red


def test_read_lab_and_ycbcr_tiff(tmp_path):
    PILImage.new("LAB", (3, 3), (128, 128, 128)).save(tmp_path / "lab.tif")
    img = read_image(tmp_path / "lab.tif")
    assert img.pixels.shape == (3, 3, 3)
    assert np.ptp(img.pixels[0, 0]) < 0.02  # a=b=0 is neutral grey
    PILImage.new("RGB", (3, 3), (200, 30, 60)).convert("YCbCr").save(tmp_path / "y.tif")
    img = read_image(tmp_path / "y.tif")
    np.testing.assert_allclose(img.pixels[0, 0] * 255, [200, 30, 60], atol=3)


# ---------------------------------------------------------------- EXIF orientation


def asymmetric_rgba() -> np.ndarray:
    a = noise(3, 5, 4, seed=10)
    a[:, :, 3] = np.arange(15, dtype=np.uint8).reshape(3, 5) * 10
    return a


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path, orientation):
    a = asymmetric_rgba()
    PILImage.fromarray(a).save(tmp_path / "o.png", exif=exif_bytes(orientation), dpi=(100, 200))
    img = read_image(tmp_path / "o.png")
    ref = np.asarray(ImageOps.exif_transpose(pil_open(tmp_path / "o.png")))
    assert img.pixels.shape[:2] == ref.shape[:2]
    np.testing.assert_array_equal(np.rint(img.pixels * 255), ref[:, :, :3])
    np.testing.assert_array_equal(np.rint(img.alpha * 255), ref[:, :, 3])
    ex = exif_of(img.exif)
    assert ex[0x0112] == 1 and ex[0x010F] == "TestCam"
    expected_dpi = (200, 100) if orientation >= 5 else (100, 200)
    assert img.dpi == pytest.approx(expected_dpi, rel=1e-3)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_jpeg(tmp_path, orientation):
    # 16x32 image: left half black, right half white, top-left 8x8 block mid-grey marker.
    a = np.zeros((16, 32), np.uint8)
    a[:, 16:] = 255
    a[:8, :8] = 128
    PILImage.fromarray(a).save(tmp_path / "o.jpg", quality=95, exif=exif_bytes(orientation, make="Acme"))
    img = read_image(tmp_path / "o.jpg")
    g = np.rint(img.pixels[:, :, 0] * 255)
    if orientation == 3:  # 180 degrees: marker bottom-right, white on the left
        assert g.shape == (16, 32)
        assert abs(g[12, 28] - 128) < 12 and g[8, 4] > 240 and g[4, 28] < 15
    elif orientation == 6:  # display = rotate 90 clockwise: marker top-right, white at the bottom
        assert g.shape == (32, 16)
        assert abs(g[4, 12] - 128) < 12 and g[28, 8] > 240 and g[12, 4] < 15
    else:  # 8: rotate 90 counter-clockwise: marker bottom-left, white at the top
        assert g.shape == (32, 16)
        assert abs(g[28, 4] - 128) < 12 and g[4, 8] > 240 and g[20, 8] < 15
    ex = exif_of(img.exif)
    assert ex[0x0112] == 1 and ex[0x010F] == "Acme"
    # Written back out, the orientation stays 1 and Make is kept.
    out = write_image(img, tmp_path / "out.jpg")
    again = pil_open(out)
    assert again.getexif()[0x0112] == 1 and again.getexif()[0x010F] == "Acme"
    assert again.size == (img.width, img.height)


def test_exif_from_tiff_source_keeps_only_descriptive_tags(tmp_path):
    a = noise(4, 6, 3, seed=11)
    PILImage.fromarray(a).save(tmp_path / "t.tif", exif=exif_bytes(6, make="TiffCam"))
    img = read_image(tmp_path / "t.tif")
    assert img.pixels.shape == (6, 4, 3)
    ex = exif_of(img.exif)
    assert ex[0x010F] == "TiffCam" and ex[0x0112] == 1
    assert 273 not in ex and 258 not in ex  # no strip offsets / bits per sample


@pytest.mark.parametrize("c", [1, 3, 4])
@pytest.mark.parametrize("orientation", [3, 6, 7])
def test_tiff_orientation_16bit(tmp_path, c, orientation):
    # Pillow rotates TIFFs itself (and drops the tag); OpenCV (16-bit colour) may not.
    vals = noise(3, 5, c, seed=24, dtype=np.uint16)
    (tmp_path / "o.tif").write_bytes(encode_tiff(vals, None, exif_bytes(orientation), (100.0, 200.0), None))
    img = read_image(tmp_path / "o.tif")
    ref = apply_orientation(vals, orientation)
    got = np.rint(img.pixels.astype(np.float64) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(got, ref[:, :, : (1 if c == 1 else 3)])
    if c == 4:
        np.testing.assert_array_equal(np.rint(img.alpha.astype(np.float64) * 65535), ref[:, :, 3])
    assert img.bit_depth == 16
    assert exif_of(img.exif)[0x0112] == 1
    assert img.dpi == pytest.approx((200, 100) if orientation >= 5 else (100, 200))


def test_apply_orientation_matches_pillow_transpose():
    a = noise(3, 5, None, seed=25)
    ops = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
           6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}
    for o, name in ops.items():
        ref = np.asarray(PILImage.fromarray(a).transpose(getattr(PILImage.Transpose, name)))
        np.testing.assert_array_equal(apply_orientation(a, o), ref)


def test_read_mpo_reports_jpeg(tmp_path):
    frames = [PILImage.fromarray(noise(16, 16, 3, seed=s)) for s in (1, 2)]
    frames[0].save(tmp_path / "m.jpg", format="MPO", save_all=True, append_images=frames[1:])
    assert pil_open(tmp_path / "m.jpg").format == "MPO"
    img = read_image(tmp_path / "m.jpg")
    assert img.source_format == "JPEG" and img.pixels.shape == (16, 16, 3)


def test_invalid_icc_in_png_is_dropped(tmp_path):
    a = noise(4, 4, 3, seed=26)
    (tmp_path / "i.png").write_bytes(_pngchunks.encode_png(a, [_pngchunks.iccp_chunk(b"not a profile" * 20)]))
    img = read_image(tmp_path / "i.png")
    assert img.icc_profile is None
    np.testing.assert_array_equal(np.rint(img.pixels * 255), a)


def test_broken_exif_and_icc_are_ignored(tmp_path):
    a = noise(8, 8, 3, seed=12)
    PILImage.fromarray(a).save(tmp_path / "b.jpg", exif=b"Exif\x00\x00MM\x00*garbage",
                               icc_profile=b"not an icc profile")
    img = read_image(tmp_path / "b.jpg")
    assert img.exif is None and img.icc_profile is None and img.pixels.shape == (8, 8, 3)


def test_png_with_bad_metadata_crc_still_reads(tmp_path):
    a = noise(4, 4, 3, seed=13)
    chunk = bytearray(_pngchunks.text_chunk("Comment", "hello"))
    chunk[-1] ^= 0xFF
    (tmp_path / "m.png").write_bytes(_pngchunks.encode_png(a, [bytes(chunk)]))
    img = read_image(tmp_path / "m.png")
    np.testing.assert_array_equal(np.rint(img.pixels * 255), a)


# ---------------------------------------------------------------- write round trips


@pytest.mark.parametrize("ext", ["png", "tiff", "webp", "bmp"])
@pytest.mark.parametrize("c,alpha", [(1, False), (1, True), (3, False), (3, True)])
def test_lossless_8bit_round_trip(tmp_path, ext, c, alpha):
    px = noise(9, 13, c, seed=14) / 255.0
    al = noise(9, 13, None, seed=15) / 255.0 if alpha else None
    out = write_image(float_img(px, al), tmp_path / f"o.{ext}")
    assert out == tmp_path / f"o.{ext}" and no_part_files(tmp_path)
    img = read_image(out)
    expect_gray = c == 1 and ext != "webp" and not (ext == "bmp" and alpha)
    assert img.is_gray == expect_gray
    np.testing.assert_array_equal(np.rint(img.pixels[:, :, :1] * 255), np.rint(px[:, :, :1] * 255))
    if c == 3:
        np.testing.assert_array_equal(np.rint(img.pixels * 255), np.rint(px * 255))
    if alpha:
        np.testing.assert_array_equal(np.rint(img.alpha * 255), np.rint(al * 255))
    else:
        assert img.alpha is None
    assert img.bit_depth == 8


@pytest.mark.parametrize("ext", ["png", "tiff"])
@pytest.mark.parametrize("c,alpha", [(1, False), (1, True), (3, False), (3, True)])
def test_16bit_precision_round_trip(tmp_path, ext, c, alpha):
    vals = all_16bit_values(c + alpha)
    px = vals[:, :, :c].astype(np.float64) / 65535
    al = vals[:, :, c].astype(np.float64) / 65535 if alpha else None
    out = write_image(float_img(px, None if al is None else al.astype(np.float32), bit_depth=16), tmp_path / f"o.{ext}")
    img = read_image(out)
    assert img.bit_depth == 16
    # grey+alpha 16-bit TIFF is stored as RGBA (Pillow cannot read LA 16-bit TIFF)
    assert img.is_gray == (c == 1 and not (ext == "tiff" and alpha))
    got = np.rint(img.pixels.astype(np.float64) * 65535).astype(np.uint16)
    np.testing.assert_array_equal(got[:, :, :c] if c == 3 else got[:, :, :1], vals[:, :, :c])
    if alpha:
        np.testing.assert_array_equal(np.rint(img.alpha.astype(np.float64) * 65535), vals[:, :, c])
    # 1/65535 steps survive
    assert np.unique(got[:, :, 0]).size == 65536


def test_16bit_files_are_readable_by_other_decoders(tmp_path):
    vals = noise(6, 7, 4, seed=16, dtype=np.uint16)
    img = float_img(vals[:, :, :3] / 65535, (vals[:, :, 3] / 65535).astype(np.float32), bit_depth=16,
                    icc_profile=SRGB_ICC, exif=exif_bytes(None, "Cam16"), dpi=(300.0, 300.0))
    for ext in ("png", "tiff"):
        out = write_image(img, tmp_path / f"x.{ext}", provenance={"model": "m"})
        bgra = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert bgra.dtype == np.uint16
        np.testing.assert_array_equal(bgra[:, :, [2, 1, 0, 3]], vals)
        pim = pil_open(out)
        pim.load()
        assert pim.size == (7, 6)
        assert pim.info.get("icc_profile") == SRGB_ICC
        assert pim.getexif()[0x010F] == "Cam16"
        assert pim.info["dpi"] == pytest.approx((300, 300), rel=1e-3)
    pil_open(tmp_path / "x.png").verify()  # all chunk CRCs valid
    assert json.loads(pil_open(tmp_path / "x.png").text["imgtrans"]) == {"model": "m"}
    assert iio.read_provenance(tmp_path / "x.tiff") == {"model": "m"}
    assert 0x010E not in pil_open(tmp_path / "x.tiff").getexif()  # no caption was given, none is made up


def test_16bit_png_gray_alpha_pure_encoder(tmp_path):
    vals = noise(5, 5, 2, seed=17, dtype=np.uint16)
    img = float_img(vals[:, :, :1] / 65535, (vals[:, :, 1] / 65535).astype(np.float32), bit_depth=16)
    out = write_image(img, tmp_path / "la16.png")
    back = read_image(out)
    assert back.is_gray and back.bit_depth == 16
    np.testing.assert_array_equal(np.rint(back.pixels[:, :, 0].astype(np.float64) * 65535), vals[:, :, 0])
    np.testing.assert_array_equal(np.rint(back.alpha.astype(np.float64) * 65535), vals[:, :, 1])


def test_16bit_source_to_8bit_formats(tmp_path):
    px = np.full((4, 4, 3), 1000 / 65535, np.float32)
    for ext in ("jpg", "webp", "bmp"):
        back = read_image(write_image(float_img(px, bit_depth=16), tmp_path / f"a.{ext}"))
        assert back.bit_depth == 8
        assert abs(float(back.pixels[0, 0, 0]) * 255 - 1000 / 257) < 1.5


def test_jpeg_round_trip_gray_stays_gray(tmp_path):
    px = np.kron(noise(4, 4, 1, seed=18), np.ones((8, 8, 1), np.uint8)) / 255.0
    back = read_image(write_image(float_img(px), tmp_path / "g.jpg"))
    assert back.is_gray and back.pixels.shape == (32, 32, 1)
    assert np.abs(back.pixels - px).max() < 3 / 255


def test_jpeg_quality_and_subsampling(tmp_path):
    px = noise(32, 32, 3, seed=19) / 255.0
    hi = write_image(float_img(px), tmp_path / "hi.jpg", jpeg_quality=95)
    lo = write_image(float_img(px), tmp_path / "lo.jpg", jpeg_quality=60)
    assert JpegImagePlugin.get_sampling(pil_open(hi)) == 0  # 4:4:4
    assert JpegImagePlugin.get_sampling(pil_open(lo)) == 2  # 4:2:0
    assert lo.stat().st_size < hi.stat().st_size
    with pytest.raises(ImageWriteError, match="quality"):
        write_image(float_img(px), tmp_path / "bad.jpg", jpeg_quality=0)


def test_jpeg_composites_alpha_on_white(tmp_path):
    px = np.zeros((16, 16, 3), np.float32)
    al = np.zeros((16, 16), np.float32)
    al[:, 8:] = 1.0
    back = read_image(write_image(float_img(px, al), tmp_path / "a.jpg"))
    assert back.alpha is None
    assert back.pixels[4, 2].min() > 0.95 and back.pixels[4, 13].max() < 0.05


def test_float_conversion_rounds_clips_and_zeroes_nan(tmp_path):
    px = np.array([[[np.nan], [-0.5], [1.7], [0.5 / 255], [1.49 / 255], [np.inf]]], np.float32)
    back = read_image(write_image(float_img(px), tmp_path / "c.png"))
    np.testing.assert_array_equal(np.rint(back.pixels[0, :, 0] * 255), [0, 0, 255, 0, 1, 255])


def test_fmt_argument_overrides_suffix(tmp_path):
    out = write_image(float_img(noise(4, 4, 3) / 255.0), tmp_path / "name.dat", fmt="png")
    assert out == tmp_path / "name.dat" and pil_open(out).format == "PNG"
    for fmt in ("JPEG", ".tif"):
        assert write_image(float_img(noise(4, 4, 3) / 255.0), tmp_path / "x.bin", fmt=fmt).exists()
    with pytest.raises(ImageWriteError, match="unsupported output format"):
        write_image(float_img(noise(4, 4, 3) / 255.0), tmp_path / "x.gif")
    with pytest.raises(ImageWriteError, match="shape"):
        write_image(float_img(np.zeros((4, 4, 2))), tmp_path / "x.png")


def test_size_limits_of_jpeg_and_webp(tmp_path):
    wide = float_img(np.zeros((1, 16384, 3)))
    with pytest.raises(ImageWriteError, match="too large for WEBP"):
        write_image(wide, tmp_path / "w.webp")
    assert list(tmp_path.iterdir()) == []


def test_new_file_gets_normal_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    out = write_image(float_img(noise(2, 2, 3) / 255.0), tmp_path / "m.png")
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------- metadata on write


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "tiff"])
def test_icc_and_exif_carried(tmp_path, ext):
    img = float_img(noise(8, 8, 3, seed=20) / 255.0, icc_profile=SRGB_ICC, exif=exif_bytes(6, make="Carry"))
    out = write_image(img, tmp_path / f"i.{ext}")
    pim = pil_open(out)
    assert pim.info.get("icc_profile") == SRGB_ICC
    ex = pim.getexif()
    assert ex[0x010F] == "Carry" and ex[0x0112] == 1
    back = read_image(out)
    assert back.icc_profile == SRGB_ICC and exif_of(back.exif)[0x010F] == "Carry"
    assert back.pixels.shape == (8, 8, 3)  # orientation was reset, so no rotation on re-read


def test_icc_carried_from_source_file(tmp_path):
    PILImage.fromarray(noise(4, 4, 3)).save(tmp_path / "s.jpg", icc_profile=SRGB_ICC)
    img = read_image(tmp_path / "s.jpg")
    assert img.icc_profile == SRGB_ICC
    assert pil_open(write_image(img, tmp_path / "d.png")).info["icc_profile"] == SRGB_ICC


def test_rgb_icc_not_written_for_gray_output(tmp_path):
    img = float_img(noise(4, 4, 1) / 255.0, icc_profile=SRGB_ICC)
    for ext in ("png", "jpg", "tiff"):
        assert not pil_open(write_image(img, tmp_path / f"g.{ext}")).info.get("icc_profile")


@pytest.mark.parametrize("ext", ["jpg", "webp", "tiff"])
def test_provenance_in_xmp(tmp_path, ext):
    prov = {"model": "esrgan-x4", "version": "1.2", "note": "ünïcode \"quoted\" <b> & 'x'"}
    img = float_img(noise(8, 8, 3) / 255.0, exif=exif_bytes(None, make="Keep"))
    out = write_image(img, tmp_path / f"p.{ext}", provenance=prov)
    assert iio.read_provenance(out) == prov
    pim = pil_open(out)
    ex = pim.getexif()
    assert 0x010E not in ex  # ImageDescription is the user's caption, never the record
    # the source's EXIF is copied exactly: imgtrans names itself in the XMP record, not in Software
    assert 0x0131 not in ex and ex[0x010F] == "Keep"
    root = ElementTree.fromstring(pim.info["xmp"])  # well-formed XML
    values = [el.get(f"{{{XMP_IMGTRANS_NS}}}provenance") for el in root.iter(f"{{{RDF_NS}}}Description")]
    assert [json.loads(v) for v in values if v is not None] == [prov]


def test_provenance_png_text_chunk(tmp_path):
    prov = {"model": "denoise", "strength": "0.5"}
    for bd in (8, 16):
        out = write_image(float_img(noise(4, 4, 3) / 255.0, bit_depth=bd), tmp_path / f"p{bd}.png", provenance=prov)
        assert json.loads(pil_open(out).text["imgtrans"]) == prov
        assert iio.read_provenance(out) == prov


@pytest.mark.parametrize("ext", ["png", "jpg", "webp", "tiff", "bmp"])
def test_read_provenance_none_without_record(tmp_path, ext):
    out = write_image(float_img(noise(4, 4, 3) / 255.0, exif=exif_bytes(None)), tmp_path / f"n.{ext}")
    assert iio.read_provenance(out) is None


def test_read_provenance_errors(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        iio.read_provenance(tmp_path / "missing.jpg")
    (tmp_path / "t.jpg").write_text("not an image")
    with pytest.raises(ImageReadError, match="not an image"):
        iio.read_provenance(tmp_path / "t.jpg")


# ---------------------------------------------------------------- caption, XMP and provenance together

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XMP_IMGTRANS_NS = XMP_NS.decode()
CAPTION = "Kilauea crater, my caption"


def xmp_packet(orientation: int | None = 6, element_form: bool = False) -> bytes:
    """A Lightroom-style XMP packet: rating 4, two keywords, tiff:Orientation (attribute or element)."""
    orient = ""
    if orientation is not None and not element_form:
        orient = f' tiff:Orientation="{orientation}"'
    body = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0">\n'
        f' <rdf:RDF xmlns:rdf="{RDF_NS}">\n'
        '  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
        f' xmp:Rating="4"{orient}>\n'
        '   <dc:subject><rdf:Bag><rdf:li>volcano</rdf:li><rdf:li>Hawaii</rdf:li></rdf:Bag></dc:subject>\n'
        + (f"   <tiff:Orientation>{orientation}</tiff:Orientation>\n" if element_form and orientation else "")
        + "  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n" + " " * 200 + '\n<?xpacket end="w"?>'
    )
    return body.encode("utf-8")


def xmp_facts(xmp: bytes) -> dict:
    """Rating, keywords, tiff:Orientation values and imgtrans records of an XMP packet, parsed as XML."""
    root = ElementTree.fromstring(xmp)
    xmp_ns, tiff_ns = "http://ns.adobe.com/xap/1.0/", "http://ns.adobe.com/tiff/1.0/"
    facts: dict = {"rating": None, "keywords": [], "orientation": [], "records": []}
    for desc in root.iter(f"{{{RDF_NS}}}Description"):
        facts["rating"] = desc.get(f"{{{xmp_ns}}}Rating", facts["rating"])
        if desc.get(f"{{{tiff_ns}}}Orientation") is not None:
            facts["orientation"].append(desc.get(f"{{{tiff_ns}}}Orientation"))
        if desc.get(f"{{{XMP_IMGTRANS_NS}}}provenance") is not None:
            facts["records"].append(json.loads(desc.get(f"{{{XMP_IMGTRANS_NS}}}provenance")))
    facts["keywords"] = [li.text for li in root.iter(f"{{{RDF_NS}}}li")]
    facts["orientation"] += [el.text for el in root.iter(f"{{{tiff_ns}}}Orientation")]
    return facts


def captioned_jpeg(path: Path, orientation: int = 6, xmp: bytes | None = None) -> Path:
    """A 16x24 JPEG from a camera: caption in ImageDescription, Make, EXIF Orientation, an XMP packet."""
    ex = PILImage.Exif()
    ex[0x010E] = CAPTION
    ex[0x010F] = "Acme"
    ex[0x0112] = orientation
    a = np.zeros((16, 24, 3), np.uint8)
    a[:, 12:] = 255
    a[:8, :8] = (255, 0, 0)  # marker block, to see the rotation
    PILImage.fromarray(a).save(path, quality=95, exif=ex.tobytes(), xmp=xmp_packet(orientation) if xmp is None else xmp)
    return path


def test_read_image_keeps_xmp_with_orientation_reset(tmp_path):
    img = read_image(captioned_jpeg(tmp_path / "s.jpg"))
    assert img.pixels.shape == (24, 16, 3)  # EXIF orientation 6 applied, exactly as before
    assert exif_of(img.exif)[0x0112] == 1 and exif_of(img.exif)[0x010E] == CAPTION
    facts = xmp_facts(img.xmp)
    assert facts["rating"] == "4" and facts["keywords"] == ["volcano", "Hawaii"] and facts["orientation"] == ["1"]
    assert Image(np.zeros((1, 1, 3), np.float32), None, 8, None, None, "PNG").xmp is None  # default keeps old callers


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "tiff"])
def test_caption_xmp_and_provenance_survive(tmp_path, ext):
    img = read_image(captioned_jpeg(tmp_path / "s.jpg"))
    prov = {"model": "esrgan-x4", "source": "s.jpg"}
    out = write_image(img, tmp_path / f"o.{ext}", provenance=prov)

    pim = pil_open(out)
    ex = pim.getexif()
    assert ex[0x010E] == CAPTION  # the caption is the user's, untouched
    assert ex[0x010F] == "Acme" and ex.get(0x0112, 1) == 1
    assert iio.read_provenance(out) == prov
    facts = xmp_facts(pim.info["xmp"])
    assert facts["rating"] == "4" and facts["keywords"] == ["volcano", "Hawaii"]
    assert facts["orientation"] == ["1"]  # pixels are upright: no viewer may rotate them again
    assert facts["records"] == ([] if ext == "png" else [prov])  # PNG keeps the record in its text chunk

    back = read_image(out)  # no second rotation on re-read
    assert back.pixels.shape == img.pixels.shape
    assert np.abs(back.pixels - img.pixels).max() < 0.1
    assert exif_of(back.exif)[0x010E] == CAPTION and xmp_facts(back.xmp)["rating"] == "4"


@pytest.mark.parametrize("ext", ["jpg", "webp", "tiff"])
def test_rewriting_an_output_replaces_the_record(tmp_path, ext):
    img = read_image(captioned_jpeg(tmp_path / "s.jpg"))
    first = write_image(img, tmp_path / f"a.{ext}", provenance={"model": "first"})
    again = read_image(first)
    second = write_image(again, tmp_path / f"b.{ext}", provenance={"model": "second"})
    assert iio.read_provenance(second) == {"model": "second"}
    facts = xmp_facts(pil_open(second).info["xmp"])
    assert facts["records"] == [{"model": "second"}] and facts["rating"] == "4"
    third = write_image(again, tmp_path / f"c.{ext}")  # no provenance given: no stale record either
    assert iio.read_provenance(third) is None
    assert xmp_facts(pil_open(third).info["xmp"])["rating"] == "4"


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "tiff"])
def test_xmp_element_orientation_is_reset(tmp_path, ext):
    img = read_image(captioned_jpeg(tmp_path / "s.jpg", orientation=8, xmp=xmp_packet(8, element_form=True)))
    assert img.pixels.shape == (24, 16, 3)
    out = write_image(img, tmp_path / f"o.{ext}", provenance={"m": "x"})
    assert xmp_facts(pil_open(out).info["xmp"])["orientation"] == ["1"]
    assert read_image(out).pixels.shape == (24, 16, 3)


def test_xmp_written_for_16bit_png_and_tiff(tmp_path):
    img = float_img(noise(4, 5, 3, dtype=np.uint16) / 65535, bit_depth=16, xmp=xmp_packet(3))
    for ext in ("png", "tiff"):
        out = write_image(img, tmp_path / f"x.{ext}", provenance={"model": "m"})
        assert read_image(out).bit_depth == 16
        facts = xmp_facts(pil_open(out).info["xmp"])
        assert facts["rating"] == "4" and facts["orientation"] == ["1"]
        assert iio.read_provenance(out) == {"model": "m"}


def test_provenance_without_source_metadata_makes_a_valid_packet(tmp_path):
    out = write_image(float_img(noise(4, 4, 3) / 255.0), tmp_path / "x.jpg", provenance={"model": "m"})
    assert xmp_facts(pil_open(out).info["xmp"])["records"] == [{"model": "m"}]
    assert pil_open(out).getexif()[0x0131] == "imgtrans"


def test_legacy_record_in_image_description(tmp_path):
    # Files written by earlier versions kept the record in ImageDescription: still readable,
    # and not carried on as if it were a caption.
    ex = PILImage.Exif()
    ex[0x010E] = json.dumps({"model": "old"})
    ex[0x0131] = "imgtrans"
    PILImage.fromarray(noise(8, 8, 3)).save(tmp_path / "old.jpg", exif=ex.tobytes())
    assert iio.read_provenance(tmp_path / "old.jpg") == {"model": "old"}
    out = write_image(read_image(tmp_path / "old.jpg"), tmp_path / "new.jpg", provenance={"model": "new"})
    assert 0x010E not in pil_open(out).getexif()
    assert iio.read_provenance(out) == {"model": "new"}
    # A JSON-looking caption from someone else's software is the user's: kept.
    ex[0x0131] = "OtherApp"
    PILImage.fromarray(noise(8, 8, 3)).save(tmp_path / "other.jpg", exif=ex.tobytes())
    assert iio.read_provenance(tmp_path / "other.jpg") is None
    out = write_image(read_image(tmp_path / "other.jpg"), tmp_path / "o2.tiff", provenance={"model": "new"})
    assert pil_open(out).getexif()[0x010E] == json.dumps({"model": "old"})


def test_xmp_too_large_for_jpeg_is_dropped_not_fatal(tmp_path):
    big = xmp_packet(1).replace(b" " * 200, b" " * 70000)
    img = float_img(noise(4, 4, 3) / 255.0, xmp=big)
    out = write_image(img, tmp_path / "x.jpg", provenance={"model": "m"})
    assert "xmp" not in pil_open(out).info
    assert xmp_facts(pil_open(write_image(img, tmp_path / "x.png")).info["xmp"])["rating"] == "4"


# ---------------------------------------------------------------- atomic writing


def test_atomic_write_replaces_existing_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    write_image(float_img(noise(4, 4, 3) / 255.0), target)
    assert pil_open(target).size == (4, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_encoder_failure_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError(errno.EIO, "simulated encoder failure")

    monkeypatch.setattr(PILImage.Image, "save", boom)  # JPEG goes through Pillow
    with pytest.raises(ImageWriteError):
        write_image(float_img(noise(4, 4, 3) / 255.0), tmp_path / "x.jpg")
    assert list(tmp_path.iterdir()) == []


def test_failure_after_partial_write_removes_temp(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    target.write_bytes(b"previous contents")
    seen = []

    def full_disk(fd):
        seen.extend(p.name for p in tmp_path.iterdir() if p.name.endswith(".part"))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(ImageWriteError) as ei:
        write_image(float_img(noise(4, 4, 3) / 255.0), target)
    assert str(ei.value) == "disk full" and ei.value.path == target
    assert seen and seen[0].startswith(".x.png.")  # the temp file existed mid-write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
    assert target.read_bytes() == b"previous contents"


def test_rename_failure_removes_temp(tmp_path, monkeypatch):
    def denied(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(ImageWriteError, match="permission denied"):
        write_image(float_img(noise(4, 4, 3) / 255.0), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_write_to_missing_directory_or_directory_path(tmp_path):
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_image(float_img(noise(4, 4, 3) / 255.0), tmp_path / "nope" / "x.png")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageWriteError, match="directory"):
        write_image(float_img(noise(4, 4, 3) / 255.0), tmp_path / "d.png")


# ---------------------------------------------------------------- read errors


def good_png(tmp_path: Path) -> Path:
    p = tmp_path / "good.png"
    PILImage.fromarray(noise(64, 64, 3, seed=21)).save(p)
    return p


def test_truncated_png(tmp_path):
    data = good_png(tmp_path).read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated or corrupt PNG"):
        read_image(tmp_path / "t.png")


def test_truncated_png_even_if_pillow_global_allows_it(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = good_png(tmp_path).read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / "t.png")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    PILImage.fromarray(noise(64, 64, 3, seed=22)).save(buf, format="JPEG")
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[:1500])
    with pytest.raises(ImageReadError, match="truncated or corrupt JPEG"):
        read_image(tmp_path / "t.jpg")


def test_truncated_16bit_png(tmp_path):
    _ok, enc = cv2.imencode(".png", noise(64, 64, 3, seed=23, dtype=np.uint16))
    (tmp_path / "t.png").write_bytes(enc.tobytes()[:4000])
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(tmp_path / "t.png")


def test_empty_file(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ImageReadError) as ei:
        read_image(tmp_path / "e.png")
    assert str(ei.value) == "empty file (0 bytes)"


def test_text_file_named_png(tmp_path):
    (tmp_path / "t.png").write_text("hello, I am not an image\n")
    with pytest.raises(ImageReadError) as ei:
        read_image(tmp_path / "t.png")
    assert str(ei.value) == "not an image (unrecognised format)"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="directory"):
        read_image(tmp_path)


def test_permission_denied(tmp_path, monkeypatch):
    p = good_png(tmp_path)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(decode, "open", denied, raising=False)
    with pytest.raises(ImageReadError) as ei:
        read_image(p)
    assert str(ei.value) == "permission denied" and ei.value.path == p


def crafted_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        _pngchunks.PNG_SIGNATURE
        + _pngchunks.make_chunk(b"IHDR", ihdr)
        + _pngchunks.make_chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + _pngchunks.make_chunk(b"IEND", b"")
    )


def test_decompression_bomb_rejected_before_decoding(tmp_path):
    before = PILImage.MAX_IMAGE_PIXELS
    (tmp_path / "bomb.png").write_bytes(crafted_png(100_000, 100_000))
    with pytest.raises(ImageReadError) as ei:
        read_image(tmp_path / "bomb.png")
    msg = str(ei.value)
    assert "100000x100000" in msg and "limit of 200000000" in msg and "\n" not in msg
    assert before == PILImage.MAX_IMAGE_PIXELS


def test_max_pixels_per_call(tmp_path):
    p = good_png(tmp_path)
    with pytest.raises(ImageReadError, match="over the limit of 10"):
        read_image(p, max_pixels=10)
    assert read_image(p, max_pixels=None).pixels.shape == (64, 64, 3)
    assert read_image(p, max_pixels=64 * 64).width == 64


def test_above_pillow_default_limit_but_under_ours_is_not_a_pillow_error(tmp_path):
    # 15000x15000 = 225M > Pillow's 2*89M bomb error threshold: only our limit applies.
    (tmp_path / "big.png").write_bytes(crafted_png(15_000, 15_000))
    with pytest.raises(ImageReadError, match="over the limit of 1000"):
        read_image(tmp_path / "big.png", max_pixels=1000)
    with pytest.raises(ImageReadError, match="truncated or corrupt PNG"):
        read_image(tmp_path / "big.png", max_pixels=None)  # header ok, pixel data missing


# ---------------------------------------------------------------- small helpers


def test_default_max_pixels():
    assert iio.DEFAULT_MAX_PIXELS == 200_000_000


def test_output_format_for():
    f = iio.output_format_for
    assert f("JPEG", "same") == "jpg"
    assert f("MPO", "same") == "jpg"
    assert f("PNG", "same") == "png"
    assert f("WEBP", "same") == "webp"
    assert f("TIFF", "same") == "tiff"
    assert f("BMP", "same") == "png"
    assert f("GIF", "same") == "png"
    assert f("PPM", "same") == "png"
    assert f("jpeg", "SAME") == "jpg"
    for req in ("png", "jpg", "webp", "tiff"):
        assert f("JPEG", req) == req
    assert f("PNG", "jpeg") == "jpg" and f("PNG", "tif") == "tiff"
    with pytest.raises(ValueError):
        f("PNG", "gif")


def test_to_rgb_to_gray():
    g = np.random.default_rng(0).random((4, 5, 1)).astype(np.float32)
    rgb = iio.to_rgb(g)
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.float32
    np.testing.assert_array_equal(rgb[:, :, 2], g[:, :, 0])
    assert iio.to_rgb(rgb) is rgb
    back = iio.to_gray(rgb)
    assert back.shape == (4, 5, 1) and back.dtype == np.float32
    np.testing.assert_allclose(back, g, atol=1e-6)
    px = np.zeros((1, 3, 3), np.float32)
    px[0, 0, 0] = px[0, 1, 1] = px[0, 2, 2] = 1.0
    np.testing.assert_allclose(iio.to_gray(px)[0, :, 0], [0.299, 0.587, 0.114], atol=1e-6)
    assert iio.to_gray(g).shape == (4, 5, 1)
    with pytest.raises(ValueError):
        iio.to_rgb(np.zeros((2, 2, 4)))


def test_resize_alpha():
    a = np.zeros((8, 8), np.float32)
    a[:, 4:] = 1.0
    up = iio.resize_alpha(a, 32, 24)
    assert up.shape == (32, 24) and up.dtype == np.float32
    assert up.min() >= 0.0 and up.max() <= 1.0
    assert up[:, :6].max() < 0.05 and up[:, -6:].min() > 0.95
    down = iio.resize_alpha(np.ones((40, 40), np.float32), 5, 7)
    np.testing.assert_allclose(down, 1.0, atol=1e-5)


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "tiff"])
@pytest.mark.parametrize("with_record", [True, False])
def test_size_fields_follow_the_output_size(tmp_path, ext, with_record):
    # Camera files state the image size in EXIF (PixelX/YDimension) and XMP; after x4
    # super-resolution those must say the output's size, not the source's. Orientation 6: the
    # stored 24x16 source is 16 wide and 24 high once upright, and the fields are the upright size.
    ex = PILImage.Exif()
    ex[0x010F] = "Acme"
    ex[0x0112] = 6
    ex.get_ifd(0x8769).update({0xA002: 24, 0xA003: 16, 0x9003: "2024:05:01 10:00:00"})
    xmp = xmp_packet(6).replace(b' xmp:Rating="4"', b' xmp:Rating="4" xmlns:exif="http://ns.adobe.com/exif/1.0/"'
                                 b' exif:PixelXDimension="24" tiff:ImageWidth="24"')
    xmp = xmp.replace(b"  </rdf:Description>",
                      b"   <exif:PixelYDimension>16</exif:PixelYDimension>\n  </rdf:Description>")
    PILImage.fromarray(noise(16, 24, 3)).save(tmp_path / "cam.jpg", quality=95, exif=ex.tobytes(), xmp=xmp)
    src = read_image(tmp_path / "cam.jpg")
    assert src.pixels.shape == (24, 16, 3)
    big = np.repeat(np.repeat(src.pixels, 4, axis=0), 4, axis=1)  # what x4 SR gives: 64 wide, 96 high
    img = Image(big, None, 8, src.icc_profile, src.exif, src.source_format, dpi=src.dpi, xmp=src.xmp)
    out = write_image(img, tmp_path / f"o.{ext}", provenance={"model": "sr"} if with_record else None)

    pim = pil_open(out)
    sub = pim.getexif().get_ifd(0x8769)
    assert (sub[0xA002], sub[0xA003]) == (64, 96)
    assert sub[0x9003] == "2024:05:01 10:00:00" and pim.getexif()[0x010F] == "Acme"
    root = ElementTree.fromstring(pim.info["xmp"])
    exif_ns, tiff_ns = "{http://ns.adobe.com/exif/1.0/}", "{http://ns.adobe.com/tiff/1.0/}"
    desc = next(d for d in root.iter(f"{{{RDF_NS}}}Description") if d.get(f"{exif_ns}PixelXDimension"))
    assert desc.get(f"{exif_ns}PixelXDimension") == "64" and desc.get(f"{tiff_ns}ImageWidth") == "64"
    assert [el.text for el in root.iter(f"{exif_ns}PixelYDimension")] == ["96"]
    assert xmp_facts(pim.info["xmp"])["rating"] == "4"


def test_exif_size_patch_keeps_every_other_byte():
    # The in-place path (no provenance, PNG): only the two size values change.
    ex = PILImage.Exif()
    ex[0x010F] = "Acme"
    ex.get_ifd(0x8769).update({0xA002: 24, 0xA003: 16})
    raw = ex.tobytes()
    raw = raw if raw.startswith(b"Exif\0\0") else b"Exif\0\0" + raw
    out = output_exif(raw, False, (640, 480))
    assert len(out) == len(raw) and sum(a != b for a, b in zip(out, raw)) <= 4
    sub = exif_of(out).get_ifd(0x8769)
    assert (sub[0xA002], sub[0xA003]) == (640, 480)
    assert output_exif(raw, False, (70000, 480)) is not None  # too big for SHORT: re-encoded, not lost
    sub = exif_of(output_exif(raw, False, (70000, 480))).get_ifd(0x8769)
    assert (sub[0xA002], sub[0xA003]) == (70000, 480)


# ------------------------------------------------------------------------------------ metadata review fixes


def _ifd0_text_exif(values: dict[int, bytes], byteorder: str = "<") -> bytes:
    """An EXIF block whose IFD0 holds ASCII entries with these raw bytes (cameras and Lightroom write UTF-8)."""
    head = b"II" if byteorder == "<" else b"MM"
    off = 8 + 2 + 12 * len(values) + 4
    entries, blob = b"", b""
    for tag, raw in sorted(values.items()):
        raw += b"\0"
        entries += struct.pack(byteorder + "HHII", tag, 2, len(raw), off + len(blob))
        blob += raw + (b"\0" if len(raw) % 2 else b"")
    return b"Exif\0\0" + head + struct.pack(byteorder + "HI", 42, 8) + struct.pack(byteorder + "H", len(values)) \
        + entries + struct.pack(byteorder + "I", 0) + blob


@pytest.mark.parametrize("ext", ["jpg", "webp", "tiff", "png"])
def test_non_ascii_exif_text_survives_with_provenance(tmp_path, ext):
    texts = {0x010E: "Blick auf Zürich".encode(), 0x013B: "Jürgen Müller".encode(), 0x8298: "© 2024 Jürgen".encode()}
    PILImage.fromarray(noise(16, 24, 3)).save(tmp_path / "s.jpg", quality=95, exif=_ifd0_text_exif(texts))
    out = write_image(read_image(tmp_path / "s.jpg"), tmp_path / f"o.{ext}", provenance={"model": "m"})
    ex = pil_open(out).getexif()
    for tag, raw in texts.items():  # Pillow hands ASCII values back as latin-1 text of the stored bytes
        assert ex[tag].encode("latin-1") == raw


def test_exif_is_copied_byte_for_byte_apart_from_orientation_and_size(tmp_path):
    # maker notes and other offset-sensitive data survive only in an exact copy
    ex = PILImage.Exif()
    ex[0x010F], ex[0x0112], ex[0x0131] = "Canon", 6, "Firmware 1.0"
    ex.get_ifd(0x8769)[0x927C] = b"MAKERNOTE\x00\x01\x02" * 4  # MakerNote
    src = ex.tobytes()
    PILImage.fromarray(noise(16, 24, 3)).save(tmp_path / "s.jpg", quality=95, exif=src)
    out = write_image(read_image(tmp_path / "s.jpg"), tmp_path / "o.jpg", provenance={"model": "m"})
    raw = pil_open(out).info["exif"]
    assert len(raw) == len(src) and pil_open(out).getexif()[0x0112] == 1
    assert pil_open(out).getexif()[0x0131] == "Firmware 1.0"  # imgtrans names itself in XMP, not here
    assert b"MAKERNOTE\x00\x01\x02" * 4 in raw


def test_tiff_output_keeps_the_interop_sub_ifd(tmp_path):
    ex = PILImage.Exif()
    ex[0x010F] = "Canon"
    sub = ex.get_ifd(0x8769)
    sub[0x9000] = b"0231"
    sub[0xA005] = {0x0001: "R98"}
    PILImage.fromarray(noise(16, 24, 3)).save(tmp_path / "s.jpg", quality=95, exif=ex.tobytes())
    assert pil_open(tmp_path / "s.jpg").getexif().get_ifd(0xA005) == {1: "R98"}
    out = write_image(read_image(tmp_path / "s.jpg"), tmp_path / "o.tiff", provenance={"model": "m"})
    got = pil_open(out).getexif()
    assert got.get_ifd(0x8769)[0x9000] == b"0231" and got.get_ifd(0xA005) == {1: "R98"}


def _with_thumbnail(exif: bytes) -> bytes:
    """The EXIF block with an IFD1 thumbnail linked after IFD0, as cameras write it (Pillow cannot
    write IFD1 itself)."""
    body = bytearray(exif[6:] if exif.startswith(b"Exif\0\0") else exif)
    e = "<" if body[:2] == b"II" else ">"
    thumb = io.BytesIO()
    PILImage.fromarray(noise(8, 12, 3)).save(thumb, "JPEG")
    (ifd0,) = struct.unpack_from(e + "I", body, 4)
    (count,) = struct.unpack_from(e + "H", body, ifd0)
    ifd1 = len(body)
    struct.pack_into(e + "I", body, ifd0 + 2 + 12 * count, ifd1)
    data_at = ifd1 + 2 + 2 * 12 + 4
    body += struct.pack(e + "H", 2) + struct.pack(e + "HHII", 0x0201, 4, 1, data_at)
    body += struct.pack(e + "HHII", 0x0202, 4, 1, len(thumb.getvalue())) + struct.pack(e + "I", 0) + thumb.getvalue()
    return b"Exif\0\0" + bytes(body)


def _next_ifd(exif: bytes) -> int:
    """IFD0's link to the next IFD (IFD1, the thumbnail) of an EXIF block."""
    body = exif[6:] if exif.startswith(b"Exif\0\0") else exif
    e = "<" if body[:2] == b"II" else ">"
    (ifd0,) = struct.unpack_from(e + "I", body, 4)
    (count,) = struct.unpack_from(e + "H", body, ifd0)
    return struct.unpack_from(e + "I", body, ifd0 + 2 + 12 * count)[0]


def test_exif_thumbnail_of_the_source_is_not_carried(tmp_path):
    ex = PILImage.Exif()
    ex[0x010F], ex[0x0112] = "Canon", 6
    src = _with_thumbnail(ex.tobytes())
    PILImage.fromarray(noise(16, 24, 3)).save(tmp_path / "s.jpg", quality=95, exif=src)
    assert _next_ifd(pil_open(tmp_path / "s.jpg").info["exif"]) != 0
    for ext, prov in (("png", None), ("jpg", None), ("jpg", {"model": "m"}), ("webp", {"model": "m"})):
        out = write_image(read_image(tmp_path / "s.jpg"), tmp_path / f"o.{ext}", provenance=prov)
        assert _next_ifd(pil_open(out).info["exif"]) == 0, (ext, prov)
        assert pil_open(out).getexif()[0x0112] == 1


def test_provenance_description_shares_the_packets_rdf_about(tmp_path):
    about = "uuid:faf5bdd5-ba3d-11da-ad31-d33d75182f1b"
    img = float_img(noise(8, 8, 3) / 255.0, xmp=xmp_packet(1).replace(b'rdf:about=""', f'rdf:about="{about}"'.encode()))
    out = write_image(img, tmp_path / "o.jpg", provenance={"model": "m"})
    root = ElementTree.fromstring(pil_open(out).info["xmp"])
    abouts = [el.get(f"{{{RDF_NS}}}about") for el in root.iter(f"{{{RDF_NS}}}Description")]
    assert abouts == [about, about]
    again = write_image(read_image(out), tmp_path / "o2.jpg", provenance={"model": "n"})  # no second record
    assert xmp_facts(pil_open(again).info["xmp"])["records"] == [{"model": "n"}]


@pytest.mark.parametrize("with_exif", [True, False], ids=["exif-without-orientation", "no-exif"])
def test_orientation_stated_only_in_xmp_is_applied(tmp_path, with_exif):
    ex = PILImage.Exif()
    ex[0x010F] = "Canon"
    kw = {"exif": ex.tobytes()} if with_exif else {}
    PILImage.fromarray(noise(16, 24, 3)).save(tmp_path / "s.jpg", quality=95, xmp=xmp_packet(6), **kw)
    expected = ImageOps.exif_transpose(pil_open(tmp_path / "s.jpg")).size
    img = read_image(tmp_path / "s.jpg")
    assert img.pixels.shape[1::-1] == expected == (16, 24)
    out = write_image(img, tmp_path / "o.jpg", provenance={"model": "m"})
    assert xmp_facts(pil_open(out).info["xmp"])["orientation"] == ["1"]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_xmp_packet_is_read_and_rewritten_as_utf8(tmp_path, codec):
    packet = xmp_packet(6).decode("utf-8").encode(codec)
    PILImage.fromarray(noise(16, 24, 3)).save(tmp_path / "s.tiff", tiffinfo={700: packet})
    img = read_image(tmp_path / "s.tiff")
    assert img.xmp.startswith(b"<?xpacket") and xmp_facts(img.xmp)["rating"] == "4"
    out = write_image(img, tmp_path / "o.tiff", provenance={"model": "m"})
    facts = xmp_facts(pil_open(out).info["xmp"])
    assert facts["records"] == [{"model": "m"}] and facts["orientation"] == ["1"]
    assert iio.read_provenance(out) == {"model": "m"}


# ---------------------------------------------------------------- reading for display


def _as_rgb8(img: Image) -> np.ndarray:
    """read_image's pixels as read_preview gives them: 8-bit RGB(A), rounded, grey repeated."""
    px = np.repeat(img.pixels, 3, axis=2) if img.pixels.shape[2] == 1 else img.pixels
    if img.alpha is not None:
        px = np.concatenate([px, img.alpha[:, :, None]], axis=2)
    return (np.clip(px, 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("case", ["exif-jpeg", "xmp-jpeg", "tiff-16bit-rgba", "palette-gif", "cmyk-jpeg"])
def test_read_preview_is_read_image_in_8_bits(tmp_path, case):
    """The display decoder is the conversion decoder: same orientation (EXIF, XMP, TIFF tag),
    same colour conversions, same size; only rounded to 8 bits."""
    p = tmp_path / "x"
    if case == "exif-jpeg":
        PILImage.fromarray(noise(12, 20, 3, seed=1)).save(p, "JPEG", exif=exif_bytes(6))
    elif case == "xmp-jpeg":
        xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
               b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="8"/>'
               b'</rdf:RDF></x:xmpmeta>')
        PILImage.fromarray(noise(12, 20, 3, seed=2)).save(p, "JPEG", exif=exif_bytes(None), xmp=xmp)
    elif case == "tiff-16bit-rgba":
        p.write_bytes(encode_tiff(noise(6, 9, 4, seed=3, dtype=np.uint16), None, exif_bytes(7), None, None))
    elif case == "palette-gif":
        PILImage.fromarray(noise(10, 14, 3, seed=4)).convert("P").save(p, "GIF", transparency=0)
    else:
        PILImage.fromarray(noise(10, 14, 4, seed=5), "CMYK").save(p, "JPEG")
    img = read_image(p)
    preview = iio.read_preview(p)
    if case in ("exif-jpeg", "xmp-jpeg"):
        assert (img.width, img.height) == (12, 20)  # turned upright
    assert (preview.width, preview.height) == (img.width, img.height)
    assert preview.image.mode == ("RGBA" if img.alpha is not None else "RGB")
    np.testing.assert_array_equal(np.asarray(preview.image), _as_rgb8(img))


@pytest.mark.parametrize("orientation", [1, 6])
def test_read_preview_decodes_large_jpegs_at_reduced_scale(tmp_path, orientation):
    p = tmp_path / "big.jpg"
    PILImage.fromarray(noise(480, 640, 3, seed=6)).save(p, quality=90, exif=exif_bytes(orientation))
    full = iio.read_preview(p)
    small = iio.read_preview(p, min_pixels=100 * 100)  # 1/4 scale keeps 160x120 >= 100x100; 1/8 would not
    upright = (640, 480) if orientation == 1 else (480, 640)
    assert (full.width, full.height) == (small.width, small.height) == upright
    assert full.image.size == upright
    assert small.image.size == (upright[0] // 4, upright[1] // 4)


def test_too_many_pixels_is_an_image_too_large_error_with_the_size(tmp_path):
    p = tmp_path / "huge.png"
    p.write_bytes(crafted_png(30000, 20000))
    for read in (read_image, iio.read_preview):
        with pytest.raises(iio.ImageTooLargeError) as ei:
            read(p)
        assert isinstance(ei.value, ImageReadError) and (ei.value.width, ei.value.height) == (30000, 20000)
        assert str(ei.value) == ("image is 30000x20000 = 600000000 pixels, over the limit of 200000000 "
                                 "(raise --max-pixels)")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_preview_turns_every_orientation_as_read_image(tmp_path, orientation):
    p = tmp_path / "o.png"
    PILImage.fromarray(asymmetric_rgba()).save(p, exif=exif_bytes(orientation))
    np.testing.assert_array_equal(np.asarray(iio.read_preview(p).image), _as_rgb8(read_image(p)))
