"""How noisy an image is, measured from the image itself (NumPy only: shared by both engines).

The estimator is the patch-PCA method of Chen, Zhu and Heng, "An efficient statistical method for
image noise level estimation" (ICCV 2015): the covariance of an image's small patches has a few large
eigenvalues that carry the picture's structure and many small ones that carry only the noise. For
white noise of variance s^2 those small eigenvalues are all about s^2, so the noise variance is the
mean of the smallest eigenvalues, taken as far up as their mean still splits them into as many above
as below it (the median test of the paper). Unlike the median absolute deviation of a wavelet band
(Donoho), texture and edges do not raise it, and a clean photo measures near 0.

It is measured per channel (colour noise often differs between R, G and B). Signal-dependent
(Poisson-Gaussian) noise comes out as the root mean square of the local levels over the image; JPEG
compression removes part of the noise and the estimate measures what is left (the level a denoiser
is given corrects for that, :func:`level_to_use`). A picture that is partly noise-free (flat
synthetic areas) measures low: the estimator looks for the least textured patches.
"""

from __future__ import annotations

import numpy as np

PATCH = 7
"""Patch side in pixels (49 eigenvalues per channel)."""

MAX_PATCHES = 40_000
"""Patches per channel at most: a regular grid over the image, so a 24 MP photo costs the same as a
small one (a few tens of milliseconds per channel)."""

MIN_PATCHES = 2_000
"""Fewer patches than this without a clipped pixel: clipped ones are measured too."""

WEAK_TEXTURE = 1.5
"""Patches with a variance above this times the noise variance are texture, not noise (see
:func:`_pca_sigma`)."""

MAX_LEVEL = 100.0
"""The largest level an estimate reports, the top of the strength range."""


def _patches(plane: np.ndarray, valid: np.ndarray | None, patch: int, max_patches: int) -> np.ndarray:
    """``(N, patch*patch)`` float64 patches of ``plane`` ``(H,W)`` on a grid with at most
    ``max_patches`` points; those touching a pixel where ``valid`` is False are left out."""
    from numpy.lib.stride_tricks import sliding_window_view

    h, w = plane.shape
    n = (h - patch + 1) * (w - patch + 1)
    stride = max(1, int(np.ceil(np.sqrt(n / max_patches))))
    win = sliding_window_view(plane, (patch, patch))[::stride, ::stride]
    x = win.reshape(-1, patch * patch)
    if valid is not None:
        ok = sliding_window_view(valid, (patch, patch))[::stride, ::stride].reshape(-1, patch * patch).all(axis=1)
        x = x[ok]
    return x.astype(np.float64)


def _pca_sigma(x: np.ndarray) -> float:
    """The noise standard deviation in patches ``x`` ``(N, d)`` (Chen et al. 2015), in ``x``'s units."""
    if len(x) < 2 * x.shape[1]:
        return 0.0
    sigma = _pca_once(x)
    # weak-texture patches only (Liu et al. 2013): a patch of pure noise has a variance below
    # sigma^2 * chi2_{0.99}(d-1)/(d-1) ~ 1.5 sigma^2 for d = 49, so few noise-only patches are lost,
    # while edges and texture, which the PCA test reads as noise on small or busy images, are.
    for _ in range(3):
        keep = x[x.var(axis=1, ddof=1) <= WEAK_TEXTURE * sigma**2]
        if len(keep) < max(2 * x.shape[1], len(x) // 20):
            break
        new = _pca_once(keep)
        if abs(new - sigma) <= 1e-3 * max(sigma, 1e-6):
            sigma = new
            break
        sigma = new
    return sigma


def _pca_once(x: np.ndarray) -> float:
    x = x - x.mean(axis=0)
    eig = np.sort(np.linalg.eigvalsh(x.T @ x / len(x)))
    eig = np.maximum(eig, 0.0)
    for i in range(len(eig), 0, -1):
        low = eig[:i]
        tau = low.mean()
        if np.count_nonzero(low > tau) == np.count_nonzero(low < tau):
            return float(np.sqrt(tau))
    return float(np.sqrt(eig[0]))


def estimate_noise(pixels: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """The noise standard deviation of each channel of an image, on the 0-255 scale.

    ``pixels``: ``(H,W)`` or ``(H,W,C)``, float in [0,1] (any bit depth decoded to [0,1]) or uint8 /
    uint16 (scaled to [0,1] here). ``alpha``: optional ``(H,W)`` coverage in [0,1]; patches with a
    pixel below half coverage are not measured (what lies under transparent pixels is often
    flat or garbage), nor those with a non-finite value. Returns ``(C,)`` float64 in [0, :data:`MAX_LEVEL`]; 0 for a
    flat image or one too small to measure (under 7x7 usable pixels)."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.dtype == np.uint8:
        scale = 1.0
    elif a.dtype == np.uint16:
        scale = 255.0 / 65535.0
    else:
        scale = 255.0
    valid = None if alpha is None else np.asarray(alpha).reshape(a.shape[:2]) >= 0.5
    out = np.zeros(a.shape[2])
    if a.shape[0] < PATCH or a.shape[1] < PATCH:
        return out
    top = 1.0 if scale == 255.0 else 255.0 / scale
    for c in range(a.shape[2]):
        plane = a[:, :, c]
        # clipped pixels (black or white) hold less noise than the rest: measured only where too
        # little of the image is left without them
        usable = np.isfinite(plane) if valid is None else np.isfinite(plane) & valid
        x = _patches(plane, usable & (plane != 0) & (plane != top), PATCH, MAX_PATCHES)
        if len(x) < MIN_PATCHES:
            x = _patches(plane, usable, PATCH, MAX_PATCHES)
        out[c] = min(MAX_LEVEL, _pca_sigma(x) * scale)
    return out


def level_to_use(per_channel: np.ndarray, jpeg_quality: int | None = None) -> float:
    """The one strength (0-255 scale) a denoiser with one level input for the whole image gets for
    an image whose channels measure ``per_channel`` (:func:`estimate_noise`), rounded to 0.1 so the
    level recorded in the output is exactly the level used. The bundled denoisers were trained with
    the same Gaussian level in every channel: a colour model gets the channels' root mean square,
    then two corrections measured on held-out photos (``benchmarks/noise_auto.py``, figures in
    ``benchmarks/README.md``):

    - ``jpeg_quality`` (a JPEG source, :attr:`imgtrans.imageio.Image.jpeg_quality`): compression
      and chroma subsampling remove the finest part of the noise and leave blotchy, correlated
      noise that the network, trained on white noise, removes only when told a higher level: x1.6
      at quality 80 and above, rising to x2.5 at quality 71 and below (:func:`jpeg_factor`);
    - below 15 the bundled networks leave part of the noise at the true level: up to +3
      (:func:`low_level_offset`).

    A one-channel model run on each channel of a colour image gets each channel's own level
    instead (:func:`levels_to_use`)."""
    level = float(np.sqrt(np.mean(np.square(per_channel)))) if len(per_channel) else 0.0
    return _corrected(level, jpeg_quality)


def levels_to_use(per_channel: np.ndarray, jpeg_quality: int | None = None) -> tuple[float, ...]:
    """The strength each channel gets when a one-channel denoiser runs on the channels one at a time:
    :func:`level_to_use` of each channel's own measure (same corrections, same rounding), so a
    channel noisier than the others (often blue on a camera) is not under-cleaned and the quieter ones
    are not over-smoothed by one level for all. ``(C,)`` in, ``C`` levels out."""
    return tuple(_corrected(float(v), jpeg_quality) for v in per_channel)


def _corrected(level: float, jpeg_quality: int | None) -> float:
    level *= jpeg_factor(jpeg_quality)
    level += low_level_offset(level)
    return round(min(MAX_LEVEL, level), 1)


def jpeg_factor(jpeg_quality: int | None) -> float:
    """How much more noise a JPEG of this quality held before compression than is measured in it
    (1 for other sources); see :func:`level_to_use`."""
    if jpeg_quality is None:
        return 1.0
    return float(np.clip(1.6 + 0.1 * (80 - jpeg_quality), 1.6, 2.5))


def low_level_offset(level: float) -> float:
    """What is added to a measured level below 15 (see :func:`level_to_use`): 3 between 3 and 8,
    tapering to 0 at 0 (a clean picture stays untouched) and at 15."""
    return 3.0 * min(1.0, level / 3.0) * float(np.clip((15.0 - level) / 7.0, 0.0, 1.0))


def describe(level: float | tuple[float, ...], per_channel: np.ndarray) -> str:
    """What auto measured and used, for the log and the GUI: ``"noise level 12.3 (estimated; R 11.0,
    G 12.5, B 13.2)"``, the channels named when they differ; for one level per channel
    (:func:`levels_to_use`), ``"noise level R 14, G 15.5, B 16.2 (estimated; R 11.0, G 12.5, B 13.2)"``."""
    if isinstance(level, tuple):
        return f"noise level {format_levels(level)} (estimated; " + ", ".join(
            f"{n} {v:.1f}" for n, v in zip(_names(len(per_channel)), per_channel)) + ")"
    text = f"noise level {level:g} (estimated"
    if len(per_channel) == 3 and np.ptp(per_channel) >= 0.5:
        text += "; " + ", ".join(f"{n} {v:.1f}" for n, v in zip("RGB", per_channel))
    return text + ")"


def format_levels(level) -> str:
    """A recorded or used level as people read it: ``R 8, G 12, B 25`` for one per channel (a list or
    tuple, as :func:`levels_to_use` gives and an output's settings record), one level as it is."""
    if isinstance(level, (list, tuple)):
        return ", ".join(f"{n} {float(v):g}" for n, v in zip(_names(len(level)), level))
    return str(level)


def _names(n: int) -> str:
    return "RGB" if n == 3 else "".join(str(i) for i in range(1, n + 1))
