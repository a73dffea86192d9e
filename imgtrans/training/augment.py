"""Differentiable augmentation of what a discriminator sees (DiffAugment, Zhao et al. 2020).

With a handful of target images (six Van Gogh paintings), a discriminator learns them by heart and
the generator is pushed to paint their exact strokes where they do not belong. DiffAugment applies
the same random family of transforms to real and generated images on their way into the
discriminator, in both the generator's and the discriminator's step; the transforms are
differentiable, so the generator still gets its gradient, and since reals and fakes pass through the
same transforms the two distributions must still match. It is a training option only: the
generator never sees augmented images and exported models do not change shape. Measured here on the
photo2vangogh/photo2ukiyoe fine-tune (training/README.md): better FID/KID, but a blind look preferred
the weights trained without it, so the recipes leave it off.

Policies (comma-separated, applied in this order): ``color`` (brightness, saturation, contrast; the
same jitter hits reals and fakes, so colour must still match, but the discriminator judges it less
sharply), ``translation`` (shift by up to 1/8 of the side, zero = mid-grey fill), ``cutout`` (a
mid-grey square of half the side). Random parameters come from a ``torch.Generator`` the caller
seeds, so a resumed run makes the same draws. The trainer seeds it per process (rank): with
``--d-augment`` a run on N processes is reproducible, but does not repeat the 1-process run's draws
(without it, it does: the pool and gradient-penalty draws are made for the global batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(text: str | None) -> tuple[str, ...]:
    """``"translation,cutout"`` -> ``("translation", "cutout")`` in :data:`POLICIES` order; ``""``/``None``/
    ``"none"`` -> ``()``. Raises ``ValueError`` naming an unknown policy."""
    if not text or text.strip().lower() == "none":
        return ()
    parts = {p.strip().lower() for p in text.split(",") if p.strip()}
    unknown = parts - set(POLICIES)
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(sorted(unknown))} (known: {', '.join(POLICIES)}, none)")
    return tuple(p for p in POLICIES if p in parts)


def _rand(n: int, g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """``(n,1,1,1)`` uniform [0,1) drawn on the CPU from ``g`` (device-independent draws), on ``like``'s device."""
    return torch.rand(n, 1, 1, 1, generator=g).to(device=like.device, dtype=like.dtype)


def color(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """``(B,C,H,W)`` in [-1,1] -> same: per image, brightness + U(-0.5,0.5) on the [-1,1] scale (a
    quarter of the range each way), saturation x U(0,2), contrast x U(0.5,1.5), as DiffAugment's
    ``rand_*`` on [-1,1] images."""
    n = x.shape[0]
    x = x + (_rand(n, g, x) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(n, g, x) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(n, g, x) + 0.5) + mean


def translation(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """``(B,C,H,W)`` -> same: each image shifted by a whole number of pixels, up to ``ratio`` of its
    height/width each way, the uncovered border filled with 0 (mid-grey in [-1,1])."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b,), generator=g).tolist()
    dx = torch.randint(-sw, sw + 1, (b,), generator=g).tolist()
    padded = F.pad(x, (sw, sw, sh, sh))
    return torch.stack([padded[i, :, sh - dy[i]:sh - dy[i] + h, sw - dx[i]:sw - dx[i] + w] for i in range(b)])


def cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """``(B,C,H,W)`` -> same: in each image a ``ratio``-sized rectangle (clipped at the border) set to 0."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b,), generator=g)
    cx = torch.randint(0, w + (1 - cw % 2), (b,), generator=g)
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    y0, x0 = (cy - ch // 2).view(b, 1, 1), (cx - cw // 2).view(b, 1, 1)
    inside = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)  # (B,H,W)
    keep = (~inside).unsqueeze(1).to(device=x.device, dtype=x.dtype)
    return x * keep


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], g: torch.Generator) -> torch.Tensor:
    """``(B,C,H,W)`` in [-1,1] -> same shape, every op of ``policy`` applied in turn with fresh draws
    from ``g``; the identity when ``policy`` is empty. Differentiable with respect to ``x``."""
    for name in policy:
        x = _OPS[name](x, g)
    return x
