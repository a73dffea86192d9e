"""Real-world degradations for super-resolution training: Real-ESRGAN's second-order pipeline.

A bicubic-trained SR model has only seen clean, bicubic-downscaled inputs; real low-resolution pictures
(phone and web JPEGs) are blurred, noisy and blocky, and such a model sharpens those defects into the
picture. Real-ESRGAN (Wang et al. 2021, "Training Real-World Blind Super-Resolution with Pure Synthetic
Data") makes each training input by running a clean HR patch through the classical degradation model
*twice*:

    round 1: blur (random kernel) -> random resize -> noise (Gaussian or Poisson, colour or grey) -> JPEG
    round 2: blur (80 %) -> random resize -> noise -> then, in random order, either
             [resize to the LR size + sinc filter] -> JPEG   or   JPEG -> [resize to the LR size + sinc filter]
    finally clamp and quantise to 8 bits.

The probabilities and ranges are the published ``train_realesrgan_x4plus.yml`` settings
(:class:`RealWorldSettings`; the x2plus model used the same degradations). The kernels are Real-ESRGAN's:
isotropic/anisotropic Gaussian, generalized Gaussian and plateau shapes of 7-21 px, and the circular
low-pass (2-D sinc) filter that imitates ringing and overshoot. Written from the paper's and the published
configuration's description, not from its code. Differences: every sample draws its own parameters (the
reference draws the resize scale and mode once per batch, and mixes batches through a pool of 180 pairs to
make up for that; per-sample draws give the mixture directly), and JPEG is the real libjpeg codec at an integer
quality where the reference uses a differentiable JPEG simulation with a float quality (kornia has one
too): the models will meet real JPEGs, and no gradient flows through the data.

Built from library operations where they exist: :func:`kornia.filters.filter2d` (per-sample kernels),
:func:`kornia.color.rgb_to_grayscale`, :func:`torch.nn.functional.interpolate`, :func:`torch.special.bessel_j1`,
:func:`torch.poisson`; JPEG is the real codec through Pillow (:func:`jpeg`).

Every random draw comes from one ``torch.Generator`` passed in, in a fixed order, so a pair is a pure
function of the HR patch and the generator's seed: the dataset seeds it from ``(run seed, epoch, sample
index)``, which keeps resumed runs exact. Images are float ``(3,H,W)`` (or ``(B,3,H,W)`` where noted) in
[0,1]; kernels are ``(k,k)`` float summing to 1.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

KERNEL_SHAPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
KERNEL_SIZES = tuple(range(7, 22, 2))  # odd sizes 7..21, drawn uniformly
RESIZE_MODES = ("area", "bilinear", "bicubic")


@dataclass(frozen=True)
class RealWorldSettings:
    """Probabilities and ranges of the two degradation rounds (Real-ESRGAN x4plus's published values).
    Noise levels are on the 0-255 scale; resize ranges are factors of the current size (round 1) and of the
    final LR size (round 2); ``resize_prob`` is (up, down, keep)."""

    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)  # per KERNEL_SHAPES
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)  # generalized Gaussian shape
    betap_range: tuple[float, float] = (1.0, 2.0)  # plateau shape
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[int, int] = (30, 95)
    # round 2
    second_blur_prob: float = 0.8
    kernel_prob2: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob2: float = 0.1
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    betag_range2: tuple[float, float] = (0.5, 4.0)
    betap_range2: tuple[float, float] = (1.0, 2.0)
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 25.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[int, int] = (30, 95)
    final_sinc_prob: float = 0.8

    def to_dict(self) -> dict:
        """Plain JSON-able values, for a model's metadata."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


REALWORLD = RealWorldSettings()


# ------------------------------------------------------------------------------------ random draws


def uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + float(torch.rand((), generator=g, dtype=torch.float64)) * (hi - lo)


def chance(g: torch.Generator, p: float) -> bool:
    """True with probability ``p`` (always draws one number, so the stream's order never depends on ``p``)."""
    return float(torch.rand((), generator=g, dtype=torch.float64)) < p


def choice(g: torch.Generator, items, probs=None):
    """One of ``items``, uniformly or with the weights ``probs``."""
    w = torch.ones(len(items), dtype=torch.float64) if probs is None else torch.tensor(probs, dtype=torch.float64)
    return items[int(torch.multinomial(w, 1, generator=g))]


# ------------------------------------------------------------------------------------ kernels


def _grid(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) coordinates of a ``k x k`` kernel, 0 at its centre (``k`` odd): two ``(k,k)`` float64."""
    ax = torch.arange(k, dtype=torch.float64) - (k - 1) / 2
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return xx, yy


def shaped_kernel(k: int, sigma_x: float, sigma_y: float, theta: float, shape: str = "gaussian",
                  beta: float = 1.0) -> torch.Tensor:  # fmt: skip
    """A ``(k,k)`` blur kernel summing to 1 from the quadratic form ``q = x^T S^-1 x`` of the covariance
    ``S = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T``:

    - ``gaussian``: ``exp(-q/2)`` (isotropic when ``sigma_x == sigma_y``),
    - ``generalized``: ``exp(-0.5 q^beta)`` (Real-ESRGAN's form): beta < 1 gives heavier tails, beta > 1 a
      flatter top and a sharper fall,
    - ``plateau``: ``1 / (1 + q^beta)``: a flat top and long tails.
    """
    xx, yy = _grid(k)
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    cov = rot @ torch.diag(torch.tensor([sigma_x**2, sigma_y**2], dtype=torch.float64)) @ rot.T
    inv = torch.linalg.inv(cov)
    q = inv[0, 0] * xx * xx + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy * yy
    if shape == "gaussian":
        kernel = torch.exp(-0.5 * q)
    elif shape == "generalized":
        kernel = torch.exp(-0.5 * q.pow(beta))
    elif shape == "plateau":
        kernel = 1.0 / (q.pow(beta) + 1.0)
    else:
        raise ValueError(f"unknown kernel shape {shape!r}")
    return (kernel / kernel.sum()).float()


def sinc_kernel(k: int, cutoff: float) -> torch.Tensor:
    """The circular low-pass filter of cutoff frequency ``cutoff`` (radians per pixel, at most pi): the
    2-D ideal low-pass ``cutoff J1(cutoff r) / (2 pi r)`` on a ``k x k`` grid (``k`` odd), normalised to sum
    1. Its ripples imitate the ringing and overshoot of sharpened, resized and compressed pictures.
    ``(k,k)`` float."""
    xx, yy = _grid(k)
    r = torch.sqrt(xx * xx + yy * yy)
    safe = torch.where(r > 0, r, torch.ones_like(r))
    kernel = cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
    kernel = torch.where(r > 0, kernel, torch.full_like(r, cutoff**2 / (4 * math.pi)))  # the limit at r = 0
    return (kernel / kernel.sum()).float()


def random_kernel(g: torch.Generator, probs: tuple[float, ...], sigma: tuple[float, float],
                  betag: tuple[float, float], betap: tuple[float, float],
                  sinc_prob: float) -> torch.Tensor:  # fmt: skip
    """One random blur kernel as Real-ESRGAN draws them: size uniform over 7..21 (odd); with probability
    ``sinc_prob`` a sinc filter (cutoff in [pi/3, pi] below 13 px, [pi/5, pi] from 13 px), else a shape of
    :data:`KERNEL_SHAPES` by ``probs``, sigmas in ``sigma`` (isotropic shapes: one sigma), rotation in
    [-pi, pi] (anisotropic ones), generalized beta in [betag[0], 1] or [1, betag[1]] (half the time each),
    plateau beta in ``betap``. ``(k,k)`` float, sum 1 (the reference zero-pads every kernel to 21 px to
    batch them; filtering with the unpadded kernel gives the same image at a fraction of the cost)."""
    k = int(choice(g, KERNEL_SIZES))
    if chance(g, sinc_prob):
        lo = math.pi / 3 if k < 13 else math.pi / 5
        return sinc_kernel(k, uniform(g, lo, math.pi))
    shape = choice(g, KERNEL_SHAPES, probs)
    sx = uniform(g, *sigma)
    if shape.endswith("_iso") or shape == "iso":
        sy, theta = sx, 0.0
    else:
        sy, theta = uniform(g, *sigma), uniform(g, -math.pi, math.pi)
    if shape.startswith("generalized"):
        beta = uniform(g, betag[0], 1.0) if chance(g, 0.5) else uniform(g, 1.0, betag[1])
        return shaped_kernel(k, sx, sy, theta, "generalized", beta)
    if shape.startswith("plateau"):
        return shaped_kernel(k, sx, sy, theta, "plateau", uniform(g, *betap))
    return shaped_kernel(k, sx, sy, theta, "gaussian")


# ------------------------------------------------------------------------------------ operations


def blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``(B,C,H,W)`` filtered with ``kernel`` ``(k,k)`` (or one per image, ``(B,k,k)``), same size, reflect
    padding (replicate where the image is too small to reflect)."""
    from kornia.filters import filter2d

    border = "reflect" if min(x.shape[-2:]) > kernel.shape[-1] // 2 else "replicate"
    return filter2d(x, (kernel if kernel.dim() == 3 else kernel[None]).to(x.dtype), border_type=border)


def resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """``(B,C,H,W)`` -> ``(B,C,*size)`` by ``mode`` (area, bilinear or bicubic; no antialiasing, as in
    Real-ESRGAN: aliasing is one of the defects to learn). Bicubic may overshoot [0,1]; the callers clamp."""
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def gaussian_noise(x: torch.Tensor, sigma: float, gray: bool, g: torch.Generator) -> torch.Tensor:
    """``(B,C,H,W)`` in [0,1] plus Gaussian noise of ``sigma`` (0-255 scale), the same on every channel when
    ``gray``; clamped to [0,1]."""
    b, c, h, w = x.shape
    noise = torch.randn((b, 1 if gray else c, h, w), generator=g) * (sigma / 255.0)
    return (x + noise).clamp(0, 1)


def poisson_noise(x: torch.Tensor, scale: float, gray: bool, g: torch.Generator) -> torch.Tensor:
    """``(B,C,H,W)`` in [0,1] plus shot noise as Real-ESRGAN makes it: the image quantised to 8 bits,
    ``Poisson(256 x) / 256 - x`` times ``scale``; for ``gray`` drawn on the luma
    (:func:`kornia.color.rgb_to_grayscale`) and added to every channel. Clamped to [0,1].

    The reference counts the image's distinct 8-bit levels and rounds up to a power of two instead of
    256; on its 400 px crops of photos that is 256 nearly always, while on our smaller patches (down to
    15 px after a resize) the count would fall and the noise grow beyond theirs."""
    from kornia.color import rgb_to_grayscale

    src = rgb_to_grayscale(x) if gray and x.shape[1] == 3 else x
    src = (src * 255.0).round().clamp(0, 255) / 255.0
    noise = torch.poisson(src * 256.0, generator=g) / 256.0 - src
    return (x + noise * scale).clamp(0, 1)


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """``(B,C,H,W)`` in [0,1] (C 1 or 3) -> the same after an 8-bit JPEG round trip at ``quality`` (1-100)
    with the real codec (libjpeg with 4:2:0 chroma, as cameras and the web save them), through the
    trainer's one JPEG helper :func:`imgtrans.training.datasets.jpeg_roundtrip` (Pillow; torchvision's
    ``jpeg`` does the same but its image codecs are deprecated since 0.29). Values come back on the 8-bit
    grid."""
    from imgtrans.training.datasets import jpeg_roundtrip

    return torch.stack([jpeg_roundtrip(img, int(quality)) for img in x])


def usm_sharpen(x: torch.Tensor, weight: float = 0.5, threshold: float = 10.0, sigma: float = 8.0,
                radius: int = 25) -> torch.Tensor:  # fmt: skip
    """Real-ESRGAN's sharpened training target (its ``gt_usm``): ``(B,C,H,W)`` in [0,1] -> the same shape in
    [0,1]. Unsharp masking ``x + weight (x - blur(x))`` (Gaussian of ``sigma`` px over ``2 radius + 1`` px,
    :func:`kornia.filters.gaussian_blur2d`; reflect padding, replicate on images too small for it), applied
    where the detail exceeds ``threshold`` grey levels, with that mask blurred the same way so sharpened and
    untouched regions blend. The defaults are Real-ESRGAN's (radius 50 in OpenCV's terms: a 51 px kernel,
    sigma 8)."""
    from kornia.filters import gaussian_blur2d

    border = "reflect" if min(x.shape[-2:]) > radius else "replicate"

    def smooth(t: torch.Tensor) -> torch.Tensor:
        return gaussian_blur2d(t, (2 * radius + 1, 2 * radius + 1), (sigma, sigma), border_type=border, separable=True)

    residual = x - smooth(x)
    mask = smooth((residual.abs() * 255.0 > threshold).to(x.dtype))
    sharp = (x + weight * residual).clamp(0, 1)
    return (mask * sharp + (1 - mask) * x).clamp(0, 1)


# ------------------------------------------------------------------------------------ the pipeline


def _noise(x: torch.Tensor, g: torch.Generator, p_gauss: float, sigma: tuple[float, float],
           poisson: tuple[float, float], p_gray: float) -> torch.Tensor:  # fmt: skip
    if chance(g, p_gauss):
        level, gray = uniform(g, *sigma), chance(g, p_gray)
        return gaussian_noise(x, level, gray, g)
    scale, gray = uniform(g, *poisson), chance(g, p_gray)
    return poisson_noise(x, scale, gray, g)


def _scale(g: torch.Generator, probs: tuple[float, float, float], lo_hi: tuple[float, float]) -> float:
    kind = choice(g, ("up", "down", "keep"), probs)
    if kind == "up":
        return uniform(g, 1.0, lo_hi[1])
    if kind == "down":
        return uniform(g, lo_hi[0], 1.0)
    return 1.0


def realworld(hr: torch.Tensor, scale: int, g: torch.Generator,
              settings: RealWorldSettings = REALWORLD) -> torch.Tensor:
    """Real-ESRGAN's second-order degradation of one HR image: ``(3,H,W)`` in [0,1] ->
    ``(3,H//scale,W//scale)`` in [0,1] on the 8-bit grid. All parameters are drawn from ``g`` (module
    docstring); the three kernels are drawn first, then the operations in pipeline order."""
    s = settings
    k1 = random_kernel(g, s.kernel_prob, s.blur_sigma, s.betag_range, s.betap_range, s.sinc_prob)
    k2 = random_kernel(g, s.kernel_prob2, s.blur_sigma2, s.betag_range2, s.betap_range2, s.sinc_prob2)
    if chance(g, s.final_sinc_prob):
        final = sinc_kernel(int(choice(g, KERNEL_SIZES)), uniform(g, math.pi / 3, math.pi))
    else:
        final = None  # the reference's "pulse": no filtering
    h, w = hr.shape[-2:]
    lr_size = (h // scale, w // scale)
    x = hr[None].float()
    # round 1
    x = blur(x, k1)
    f = _scale(g, s.resize_prob, s.resize_range)
    x = resize(x, (int(h * f), int(w * f)), choice(g, RESIZE_MODES))
    x = _noise(x, g, s.gaussian_noise_prob, s.noise_range, s.poisson_scale_range, s.gray_noise_prob)
    x = jpeg(x, round(uniform(g, *s.jpeg_range)))
    # round 2
    if chance(g, s.second_blur_prob):
        x = blur(x, k2)
    f = _scale(g, s.resize_prob2, s.resize_range2)
    x = resize(x, (int(lr_size[0] * f), int(lr_size[1] * f)), choice(g, RESIZE_MODES))
    x = _noise(x, g, s.gaussian_noise_prob2, s.noise_range2, s.poisson_scale_range2, s.gray_noise_prob2)
    # the final resize + sinc and the last JPEG, in random order (other orders gave twisted lines)
    resize_first = chance(g, 0.5)
    mode, quality = choice(g, RESIZE_MODES), round(uniform(g, *s.jpeg_range2))
    if resize_first:
        x = resize(x, lr_size, mode)
        x = blur(x, final) if final is not None else x
        x = jpeg(x, quality)
    else:
        x = jpeg(x, quality)
        x = resize(x, lr_size, mode)
        x = blur(x, final) if final is not None else x
    return ((x.clamp(0, 1) * 255.0).round() / 255.0)[0]
