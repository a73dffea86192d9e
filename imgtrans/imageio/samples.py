"""From a Pillow image to sample arrays: every mode and bit depth Pillow decodes, made grey or RGB.

16-bit multi-channel PNG/TIFF data, which Pillow delivers truncated to 8 bits, is decoded again by
OpenCV; CMYK and LAB are converted to RGB (CMYK colour-managed with its profile); palettes, colour
keys (tRNS) and premultiplied modes become straight alpha. The arrays keep the decoder's integer
type (:class:`Samples`), so a display needs no float copy; :meth:`Samples.float_pixels` gives the
``[0, 1]`` floats of :class:`~imgtrans.imageio.image.Image`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage

from imgtrans.imageio._pillow import Decoded
from imgtrans.imageio.exif import patch_exif_in_place
from imgtrans.imageio.icc import icc_colour_space, icc_for

_log = logging.getLogger(__name__)


def _cmyk_to_rgb(im: PILImage.Image, icc: bytes | None) -> PILImage.Image:
    """CMYK -> RGB, colour-managed to sRGB when the file has a usable CMYK profile."""
    if icc and icc_colour_space(icc) == b"CMYK":
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            return ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
        except Exception:  # noqa: BLE001 - an unusable profile: the naive conversion
            _log.debug("CMYK profile unusable; using naive CMYK->RGB", exc_info=True)
    return im.convert("RGB")


def _lab_to_rgb(im: PILImage.Image) -> PILImage.Image:
    from PIL import ImageCms

    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    return ImageCms.applyTransform(im, transform)


def _is_16bit(im: PILImage.Image, rawmode: Any) -> bool:
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        return True
    if im.format == "PNG" and isinstance(rawmode, str):
        return ";16" in rawmode
    if im.format == "TIFF":
        bits = getattr(im, "tag_v2", {}).get(258)
        if isinstance(bits, int):
            bits = (bits,)
        with contextlib.suppress(TypeError, ValueError):
            return bits is not None and max(int(b) for b in bits) > 8
    return False


def _source_is_gray(im: PILImage.Image, rawmode: Any) -> bool:
    if im.format == "PNG" and isinstance(rawmode, str):
        return rawmode.startswith(("L", "I"))
    if im.format == "TIFF":
        return getattr(im, "tag_v2", {}).get(262) in (0, 1)
    return im.mode in ("1", "L", "LA", "La", "I", "F") or im.mode.startswith("I;16")


@contextlib.contextmanager
def _opencv_quiet(cv2: Any):
    """Silence OpenCV's own stderr logging (it reports decode problems there)."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    try:
        level = logging_api.getLogLevel()
        logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    except Exception:  # noqa: BLE001 - no logging API in this OpenCV: decode unsilenced
        yield
        return
    try:
        yield
    finally:
        logging_api.setLogLevel(level)


def _decode_16bit_cv2(dec: Decoded) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Decode 16-bit multi-channel PNG/TIFF data with OpenCV.

    Returns (pixels (H,W,C) uint16, alpha (H,W) uint16 or None) in RGB order
    and in the file's stored orientation, or None if OpenCV is unavailable
    or its result does not match what Pillow saw (the caller then falls back
    to Pillow's 8-bit decode).
    """
    try:
        import cv2
    except ImportError:
        return None
    im, data = dec.im, dec.data
    w, h = im.size
    if im.format == "TIFF":
        w, h = im.tag_v2.get(256, w), im.tag_v2.get(257, h)
        if dec.tiff_orientation != 1:  # OpenCV may or may not rotate; make it not
            buf = bytearray(data)
            try:
                patch_exif_in_place(buf)
            except (ValueError, struct.error):
                return None
            data = bytes(buf)
    with _opencv_quiet(cv2):
        try:
            arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except Exception:  # noqa: BLE001 - OpenCV cannot decode it: the caller falls back
            return None
    if arr is None or arr.dtype != np.uint16 or arr.shape[:2] != (h, w):
        return None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    gray = _source_is_gray(im, dec.rawmode)
    wants_alpha = "A" in im.mode
    c = arr.shape[2]
    alpha = None
    if c == 1:
        px = arr
    elif c == 2:
        px, alpha = arr[:, :, :1], arr[:, :, 1]
    elif c == 3:
        px = arr[:, :, ::-1]
    elif c == 4:
        px, alpha = arr[:, :, 2::-1], arr[:, :, 3]
    else:
        return None
    if gray and px.shape[2] == 3:
        px = px[:, :, :1]
    if not wants_alpha:
        alpha = None
    elif alpha is None:
        return None
    return px, alpha


def _to_float(arr: np.ndarray, scale: float) -> np.ndarray:
    out = arr.astype(np.float32)
    out /= np.float32(scale)
    return out


def _to_uint8(arr: np.ndarray, scale: float) -> np.ndarray:
    """Samples of full intensity ``scale`` -> uint8, rounded (for display)."""
    out = _to_float(arr, scale)
    np.clip(out, 0.0, 1.0, out=out)
    out *= np.float32(255.0)
    out += np.float32(0.5)
    return out.astype(np.uint8)


@dataclass
class Samples:
    """Decoded samples, in the file's stored orientation (see ``via_opencv``).

    pixels: (H, W, 1|3) grey or RGB, of the decoder's type (uint8, uint16, int32 or float32), full
    intensity at ``scale`` (255, 65535 or 1). alpha: (H, W) straight alpha of full intensity
    ``alpha_scale`` (a bool colour-key mask has 1), or None. bit_depth: the source's precision, 8 or
    16. icc: the source's profile if it describes ``pixels`` (None after a conversion to RGB).
    via_opencv: the pixels come from OpenCV, i.e. in the file's stored orientation even where
    Pillow would have rotated them.
    """

    pixels: np.ndarray
    scale: float
    alpha: np.ndarray | None
    alpha_scale: float
    bit_depth: int
    icc: bytes | None
    via_opencv: bool = False

    def float_pixels(self) -> np.ndarray:
        """(H, W, 1|3) float32 in [0, 1]."""
        return _to_float(self.pixels, self.scale)

    def float_alpha(self) -> np.ndarray | None:
        """(H, W) float32 in [0, 1], or None."""
        return None if self.alpha is None else _to_float(self.alpha, self.alpha_scale)

    def rgb8(self) -> np.ndarray:
        """(H, W, 3) RGB or (H, W, 4) RGBA uint8 for display (grey repeated); 8-bit samples are
        used as they are, without a float copy."""
        px = self.pixels if self.pixels.dtype == np.uint8 else _to_uint8(self.pixels, self.scale)
        if px.shape[2] == 1:
            px = np.repeat(px, 3, axis=2)
        if self.alpha is None:
            return np.ascontiguousarray(px)
        a = self.alpha if self.alpha.dtype == np.uint8 else _to_uint8(self.alpha, self.alpha_scale)
        return np.concatenate([px, a[:, :, None]], axis=2)


def _transparency_mask(arr: np.ndarray, key: Any) -> np.ndarray | None:
    """Alpha (0 where the pixel equals the tRNS colour key, else 1), or None if *key* is unusable."""
    try:
        key_arr = np.asarray(key, dtype=arr.dtype).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        return None
    if key_arr.size != arr.shape[2]:
        return None
    return np.any(arr != key_arr, axis=2)



def _mask(arr: np.ndarray, key: Any) -> np.ndarray | None:
    """The colour-key alpha of (H, W, C) ``arr`` for a tRNS ``key`` (None without a usable key)."""
    if key is None or isinstance(key, bytes):
        return None
    return _transparency_mask(arr, key)


def samples_from_pil(dec: Decoded, icc: bytes | None) -> Samples:
    """The samples of a decoded image (see :class:`Samples`); ``icc`` is the file's usable profile."""
    im = dec.im
    key = im.info.get("transparency")
    # 16-bit samples that Pillow itself can only deliver truncated to 8 bits.
    if _is_16bit(im, dec.rawmode) and im.mode in ("RGB", "RGBA", "LA"):
        decoded = _decode_16bit_cv2(dec)
        if decoded is not None:
            px16, a16 = decoded
            alpha, alpha_scale = a16, 65535.0
            if alpha is None and im.mode == "RGB":
                alpha, alpha_scale = _mask(px16, key), 1.0
            return Samples(px16, 65535.0, alpha, alpha_scale, 16, icc_for(icc, px16.shape[2] == 1), True)
        _log.warning("16-bit %s data could not be decoded at full precision; using 8 bits", im.format)

    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "I;16S", "I;32", "I;32S", "I;32B"):
        arr = np.asarray(im)
        if im.mode.startswith("I;16"):
            px = arr.astype(np.uint16, copy=False)
        else:  # 32-bit integer: taken as 16-bit-range data
            px = np.clip(arr, 0, 65535)
        return Samples(px[:, :, None], 65535.0, _mask(arr[:, :, None], key), 1.0, 16, icc_for(icc, True))
    if im.mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        peak = float(arr.max()) if arr.size else 0.0
        if peak > 1.0:  # float data in 8- or 16-bit units rather than [0, 1]
            arr = arr / np.float32(255.0 if peak <= 255.0 else 65535.0)
        return Samples(np.clip(arr, 0.0, 1.0)[:, :, None], 1.0, None, 1.0, 16, icc_for(icc, True))
    return _samples_8bit(im, icc, key)


def _samples_8bit(im: PILImage.Image, icc: bytes | None, key: Any) -> Samples:
    """Samples of an 8-bit mode: palettes, bilevel, premultiplied, CMYK, LAB and the rest made
    L, LA, RGB or RGBA first (a palette of greys stays grey)."""
    mode = im.mode
    gray_palette = False
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or key is not None or (im.palette is not None and im.palette.mode == "RGBA")
        im = im.convert("RGBA" if has_alpha else "RGB")
        gray_palette = icc is None or icc_colour_space(icc) == b"GRAY"
    elif mode == "1":
        im = im.convert("L")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode == "CMYK":
        im, icc = _cmyk_to_rgb(im, icc), None
    elif mode == "LAB":
        im, icc = _lab_to_rgb(im), None
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
        if mode != "RGBX":
            icc = None  # the profile described the original colour model

    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    colour = arr.shape[2] in (3, 4)
    ncol = 3 if colour else 1
    px8, alpha = arr[:, :, :ncol], (arr[:, :, ncol] if arr.shape[2] in (2, 4) else None)
    alpha_scale = 255.0
    if alpha is None and im.mode in ("L", "RGB"):
        alpha, alpha_scale = _mask(px8, key), 1.0
    if gray_palette and colour and np.array_equal(px8[:, :, 0], px8[:, :, 1]) \
            and np.array_equal(px8[:, :, 1], px8[:, :, 2]):
        px8 = px8[:, :, :1]
    return Samples(px8, 255.0, alpha, alpha_scale, 8, icc_for(icc, px8.shape[2] == 1))
