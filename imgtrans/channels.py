"""How an image's channels are fed to a model and put back together (no torch: shared by the torch
engine and the onnxruntime lite CLI).

- A colour model on a colour image with an integer output format takes the fast path: the output is
  assembled directly as the integers the encoder stores (:func:`direct_bits`).
- Otherwise the image is split into *planes*: grey images go through colour models as RGB and come
  back grey; a one-channel model runs on each colour channel (:func:`model_planes`,
  :func:`merge_planes`).
- Style models run at a working size (long side, :func:`work_size`) and their output is resized back
  to the input's size (:func:`at_work_size`): a CycleGAN learns brush strokes at the scale of its
  training images, and at full resolution of a 24 MP photo they shrink to a fine noise.
- A denoiser with a strength input and no level given (``noise_level=None``: "auto") gets the noise
  level measured on the image itself (:func:`auto_noise_level`, :mod:`imgtrans.noise`): one level for
  a colour model, each channel's own level for a one-channel model run on a colour image's channels.
- Alpha is resized with the image for SR and passed through otherwise; colour profile, EXIF, DPI
  and bit depth are kept (:func:`with_pixels`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from imgtrans.imageio import Image, resize_alpha, resize_pixels, to_gray, to_rgb

DEFAULT_STYLE_SIZE = 512
"""Long side in pixels at which style models run unless told otherwise (0: the full resolution)."""

_JPEG = ("jpg", "jpeg", "jpe")
_INTEGER_FORMATS = ("png", "tif", "tiff", "jpg", "jpeg", "jpe", "webp", "bmp")


def output_bits(img: Image, out_format: str | None) -> int | None:
    """The bit depth :func:`~imgtrans.imageio.write_image` will store for ``img`` written as
    ``out_format`` (a suffix such as ``"png"``), or ``None`` when unknown."""
    if not out_format:
        return None
    fmt = out_format.lower().lstrip(".")
    if fmt not in _INTEGER_FORMATS:
        return None
    return 16 if img.bit_depth == 16 and fmt in ("png", "tif", "tiff") else 8


def direct_bits(img: Image, in_channels: int, out_channels: int, out_format: str | None) -> int | None:
    """The bit depth (8 or 16) at which a model's output can be assembled directly as the stored
    integers, or ``None`` when the float path is needed: grey input, a one-channel model, or alpha
    that a JPEG writer has to composite onto white first."""
    bits = output_bits(img, out_format)
    if bits is None or img.pixels.shape[2] != 3 or in_channels != 3 or out_channels != 3:
        return None
    if img.alpha is not None and (out_format or "").lower().lstrip(".") in _JPEG:
        return None
    return bits


def model_planes(pixels: np.ndarray, in_channels: int) -> list[np.ndarray]:
    """The ``(H,W,C)`` arrays to run a model with ``in_channels`` inputs on, for ``pixels``
    ``(H,W,1|3)`` float in [0,1]: the RGB image for a colour model, each channel for a grey one."""
    if in_channels == 3:
        return [to_rgb(pixels)]
    if in_channels == 1:
        return [pixels[:, :, c : c + 1] for c in range(pixels.shape[2])]
    raise ValueError(f"models with {in_channels} input channels are not supported")


def merge_planes(outs: list[np.ndarray], gray_in: bool) -> np.ndarray:
    """The model outputs for :func:`model_planes` back as one ``(H',W',C)`` float32 image, grey again
    when the input was grey."""
    out = np.concatenate(outs, axis=2) if len(outs) > 1 else outs[0]
    if gray_in and out.shape[2] == 3:
        out = to_gray(out)
    return np.ascontiguousarray(out, dtype=np.float32)


def with_pixels(img: Image, pixels: np.ndarray) -> Image:
    """``img`` with new ``pixels`` (any size): alpha resized to match, metadata kept."""
    alpha = img.alpha
    if alpha is not None and (alpha.shape[0], alpha.shape[1]) != pixels.shape[:2]:
        alpha = resize_alpha(alpha, pixels.shape[0], pixels.shape[1])
    return dataclasses.replace(img, pixels=pixels, alpha=alpha)


def work_size(height: int, width: int, long_side: int | None) -> tuple[int, int] | None:
    """``(h, w)`` with the aspect ratio of ``height`` x ``width`` and a long side of ``long_side``,
    or ``None`` when no downscale is needed (``long_side`` 0 or None, or the image fits)."""
    if not long_side or max(height, width) <= long_side:
        return None
    r = long_side / max(height, width)
    return max(1, round(height * r)), max(1, round(width * r))


def at_work_size(img: Image, long_side: int | None, run: Callable[[Image], Image], detail: float = 0.0) -> Image:
    """``run(img)`` for a size-preserving model, with ``img`` first shrunk to ``long_side`` (Lanczos)
    and the result resized back to the input's size; alpha and metadata are kept from ``img``.

    ``detail`` in [0, 1]: how much of the input's own fine detail, the part the shrinking removed
    (``img - up(down(img))``), is added back to the result; 0 adds none. A weakened style passes
    ``1 - strength``, so that strength 0 gives the input itself, not a blurred copy of it."""
    size = work_size(img.height, img.width, long_side)
    if size is None:
        return run(img)
    small_pixels = resize_pixels(img.pixels, *size)
    out = run(dataclasses.replace(img, pixels=small_pixels, alpha=None))
    pixels = resize_pixels(out.pixels, img.height, img.width)
    if detail > 0.0:
        lost = img.pixels.astype(np.float32) - resize_pixels(small_pixels, img.height, img.width)
        pixels = np.clip(pixels + np.float32(detail) * lost, 0.0, 1.0)
    return dataclasses.replace(img, pixels=pixels)


def auto_noise_level(img: Image, in_channels: int = 3) -> tuple[float | tuple[float, ...], np.ndarray]:
    """The strength (noise sigma on 0-255) a denoiser with ``in_channels`` inputs gets for ``img`` when
    the user left it on auto, and the per-channel estimates it comes from (``(C,)``, for the log):
    measured on the opaque pixels of ``img.pixels`` (:func:`imgtrans.noise.estimate_noise`), corrected
    for a JPEG source's compression. One level (:func:`imgtrans.noise.level_to_use`) for a colour model
    or a grey image; a one-channel model on a colour image runs on each channel (:func:`model_planes`)
    and gets a tuple, each channel's own level (:func:`imgtrans.noise.levels_to_use`): a camera's
    channels are often noisy to different degrees (``benchmarks/README.md``, "Automatic noise level")."""
    from imgtrans import noise

    per_channel = noise.estimate_noise(img.pixels, img.alpha)
    if in_channels == 1 and len(per_channel) > 1:
        return noise.levels_to_use(per_channel, img.jpeg_quality), per_channel
    return noise.level_to_use(per_channel, img.jpeg_quality), per_channel


def plane_levels(noise_level: float | tuple[float, ...] | None, planes: int) -> list[float | None]:
    """The level each of ``planes`` planes (:func:`model_planes`) runs with: one level for all, or a
    tuple with one level per plane (a one-channel model on a colour image, :func:`auto_noise_level`)."""
    if not isinstance(noise_level, tuple):
        return [noise_level] * planes
    if len(noise_level) != planes:
        raise ValueError(f"{len(noise_level)} noise levels for {planes} plane(s): one level per channel is for a "
                         "one-channel model on a colour image")
    return list(noise_level)


def process_image(model, img: Image, *, noise_level: float | tuple[float, ...] | None, style_size: int | None,
                  out_format: str | None,
                  run_integer: Callable[[np.ndarray, int, Callable[[float], None], float | None], np.ndarray],
                  run_float: Callable[[np.ndarray, Callable[[float], None], float | None], np.ndarray],
                  step: Callable[[float], None] | None = None, style_strength: float = 1.0) -> Image:
    """The per-image steps both engines take: ``img`` (an :class:`~imgtrans.imageio.Image`) in, the
    output Image out, whatever runs the network.

    ``model`` needs ``in_channels``, ``out_channels``, ``scale``, ``task`` and ``takes_noise_level``.
    A noise level of 0 for a denoiser returns ``img`` itself (nothing to remove, no network run);
    ``None`` for a denoiser with a strength input measures it on ``img`` (:func:`auto_noise_level`;
    the batch does that first, to report and record it, and passes the number). A tuple gives each
    plane its own level (a one-channel model on a colour image; a plane at 0 is passed through).
    ``run_integer`` and ``run_float`` take the level to use as their last argument (``None`` for other models).
    Style models run at ``style_size`` (long side; 0 or None: full resolution) and come back at the
    input's size; ``style_strength`` below 1 (the caller already weakened the model's change,
    :meth:`~imgtrans.weights.LoadedModel.with_strength`) also puts back ``1 - style_strength`` of the
    detail the working size lost (:func:`at_work_size`). A colour model on a colour image with an integer output format
    goes through ``run_integer(pixels (H,W,C) float32 in [0,1], bits, step, level) -> (H*s,W*s,C_out) uint8/uint16``,
    assembled as the integers the encoder stores (:func:`direct_bits`); every other case through
    ``run_float(plane (H,W,C_in) float32, step, level) -> (H*s,W*s,C_out) float32 in [0,1]`` on each plane
    (:func:`model_planes`, :func:`merge_planes`). ``step(fraction)`` reports progress in [0, 1]."""
    if model.takes_noise_level and noise_level is None:
        noise_level = auto_noise_level(img, model.in_channels)[0]
    nothing_to_remove = model.takes_noise_level and model.scale == 1
    if nothing_to_remove and noise_level == 0:
        return img
    long_side = (style_size or 0) if model.task == "style" else 0
    report = step or (lambda fraction: None)
    if work_size(img.height, img.width, long_side) is not None:
        return at_work_size(img, long_side, lambda small: process_image(
            model, small, noise_level=noise_level, style_size=0, out_format=None, run_integer=run_integer,
            run_float=run_float, step=step), detail=1.0 - style_strength)
    bits = direct_bits(img, model.in_channels, model.out_channels, out_format)
    if bits is not None and not isinstance(noise_level, tuple):
        return with_pixels(img, run_integer(img.pixels, bits, report, noise_level))
    # float output: the writer composites alpha onto white / converts to grey before quantising
    planes = model_planes(img.pixels, model.in_channels)
    outs = []
    for i, (plane, level) in enumerate(zip(planes, plane_levels(noise_level, len(planes)))):
        if nothing_to_remove and level == 0:
            outs.append(plane)
            continue
        outs.append(run_float(plane, lambda f, i=i: report((i + f) / len(planes)), level))
    return with_pixels(img, merge_planes(outs, gray_in=img.pixels.shape[2] == 1))
