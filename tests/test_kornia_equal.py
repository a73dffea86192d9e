"""Each place where kornia replaced our own code gives the result the old code gave. The old code is
kept here, verbatim, as the reference."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent


def old_ssim(x, y):
    """imgtrans.training.metrics.ssim before kornia (separable 11x11 Gaussian, valid region)."""
    x, y = x.clamp(0, 1).float(), y.clamp(0, 1).float()
    size = min(11, x.shape[-1], x.shape[-2])
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * 1.5**2))
    w = (g / g.sum()).float()
    c = x.shape[1]
    kh, kw = w.view(1, 1, -1, 1).expand(c, 1, -1, 1), w.view(1, 1, 1, -1).expand(c, 1, 1, -1)

    def filt(t):
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def old_luma(x):
    """imgtrans.training.datasets.luma (and detail_ratio's luma) before kornia."""
    return (x * torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(3, 1, 1)).sum(0, keepdim=True)


def old_y_channel(img):
    """benchmarks/quality.py y_channel before kornia: BT.601 luma, 16-235."""
    x = torch.from_numpy(img).double() / 255.0
    y = (16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
    return y[None, None].float()


def old_gaussian_blur(x, sigma):
    """imgtrans.training.datasets.gaussian_blur before kornia (the SR trainer's --degrade blur)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _pair(seed=0, shape=(3, 3, 40, 52)):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    return x, (x + 0.15 * torch.randn(shape, generator=g)).clamp(0, 1)


def test_ssim_is_the_old_ssim():
    from imgtrans.training.metrics import ssim

    x, y = _pair()
    assert torch.allclose(ssim(x, y), old_ssim(x, y), atol=1e-6)
    assert torch.allclose(ssim(x, y, border=4), old_ssim(x[..., 4:-4, 4:-4], y[..., 4:-4, 4:-4]), atol=1e-6)
    assert torch.allclose(ssim(x, x), torch.ones(3))
    g1, g2 = _pair(1, (2, 1, 11, 11))  # one window exactly
    assert torch.allclose(ssim(g1, g2), old_ssim(g1, g2), atol=1e-6)


def test_luma_is_the_old_luma():
    from imgtrans.training.datasets import luma
    from imgtrans.training.metrics import detail_ratio

    x, y = _pair(2)
    assert torch.allclose(luma(x[0]), old_luma(x[0]), atol=1e-6)
    k = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)

    def old_energy(t):
        return torch.stack([F.conv2d(old_luma(i)[None], k).abs().mean() for i in t])

    assert torch.allclose(detail_ratio(x, y), old_energy(x) / old_energy(y), rtol=1e-5)


def test_gaussian_blur_is_the_old_blur():
    from imgtrans.training.datasets import gaussian_blur

    x, _ = _pair(3, (2, 3, 37, 30))
    for sigma in (0.2, 0.7, 1.3, 2.0):  # --degrade blur draws sigma in [0.2, scale/2]
        assert torch.allclose(gaussian_blur(x, sigma), old_gaussian_blur(x, sigma), atol=1e-6), sigma


def test_benchmark_luma_is_the_old_luma(monkeypatch):
    spec = importlib.util.spec_from_file_location("quality", REPO / "benchmarks" / "quality.py")
    quality = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "quality", quality)  # its dataclasses look themselves up there
    spec.loader.exec_module(quality)
    img = np.random.default_rng(0).integers(0, 256, (24, 30, 3), dtype=np.uint8)
    assert torch.allclose(quality.y_channel(img), old_y_channel(img), atol=1e-6)
