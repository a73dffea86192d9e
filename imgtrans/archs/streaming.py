"""Building blocks for exact band-streamed forwards of networks with instance norm.

Instance norm normalises with statistics over the whole image, so independent tiles would each get
their own colours. A family whose network uses it streams full-width row bands instead, one
instance-norm layer at a time: a pass over the bands accumulates that layer's exact mean and
variance (Chan's parallel update, float64), after which the layer is frozen with those statistics
and the next pass goes one layer deeper. How a network is split into such passes is the family's
own business (see :func:`imgtrans.archs.cyclegan.stream_resnet_generator`); this module holds the
parts every such split needs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Frozen = dict[int, tuple[torch.Tensor, torch.Tensor]]


class RunningStats:
    """Per-channel mean and variance over many pieces of a feature map (Chan et al.), float64."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def add(self, t: torch.Tensor) -> None:
        """``t``: ``(1,C,h,w)``. The piece's own mean and variance are taken in its dtype (float32:
        exact to ~1e-7 over a band), the pieces are combined in float64."""
        n_b = t.shape[2] * t.shape[3]
        if n_b == 0:
            return
        var_b, mean_b = torch.var_mean(t.detach().float(), dim=(0, 2, 3), correction=0)
        mean_b, m2_b = mean_b.double(), var_b.double() * n_b
        if self.mean is None:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * n_b / n)
        self.n = n

    def frozen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, biased variance)``, each ``(C,)`` float64."""
        assert self.mean is not None and self.m2 is not None, "no data seen"
        return self.mean, self.m2 / self.n


def normalize(x: torch.Tensor, layer: nn.InstanceNorm2d, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``layer`` applied to ``x`` ``(1,C,h,w)`` with given (whole-image) statistics instead of ``x``'s own."""
    mean, var = stats
    mean = mean.to(x.device, x.dtype).view(1, -1, 1, 1)
    inv = torch.rsqrt(var + layer.eps).to(x.device, x.dtype).view(1, -1, 1, 1)
    y = (x - mean) * inv
    if layer.affine:
        y = y * layer.weight.view(1, -1, 1, 1) + layer.bias.view(1, -1, 1, 1)
    return y


def apply_layers(layers: list[nn.Module], x: torch.Tensor, frozen: Frozen) -> torch.Tensor:
    """Run ``layers`` in order; instance norms use their frozen statistics from ``frozen`` (by ``id``)."""
    for layer in layers:
        if isinstance(layer, nn.InstanceNorm2d):
            x = normalize(x, layer, frozen[id(layer)])
        else:
            x = layer(x)
    return x


class BandStreamer:
    """Runs spatially local layer lists over full-width row bands of a feature map.

    ``tick()`` is called after every band (it may raise to cancel)."""

    def __init__(self, device: torch.device, dtype: torch.dtype, tick: Callable[[], None]):
        self.device, self.dtype, self.tick = device, dtype, tick

    def run(
        self,
        src: torch.Tensor,
        layers: list[nn.Module],
        frozen: Frozen,
        *,
        factor: float,
        band: int,
        halo: int,
        stats: RunningStats | None = None,
        dst: torch.Tensor | None = None,
        finish: Callable[[torch.Tensor, int, int], torch.Tensor] | None = None,
    ) -> None:
        """Output rows ``[r0*factor, r1*factor)`` of every band ``[r0, r1)`` of ``src`` are exact: the
        band is read with ``halo`` extra rows on each side. ``band`` and ``halo`` must be multiples of
        the layers' total stride. Accumulates the exact rows into ``stats`` and/or writes them to
        ``dst``; ``finish(rows, y0, y1)`` transforms the exact output rows ``[y0, y1)`` before that."""
        h = src.shape[2]
        for r0 in range(0, h, band):
            r1 = min(h, r0 + band)
            c0, c1 = max(0, r0 - halo), min(h, r1 + halo)
            piece = src[:, :, c0:c1].to(self.device, self.dtype)
            y = apply_layers(layers, piece, frozen)
            o0, o1 = int((r0 - c0) * factor), int((r1 - c0) * factor)
            y = y[:, :, o0:o1]
            if finish is not None:
                y = finish(y, int(r0 * factor), int(r1 * factor))
            if stats is not None:
                stats.add(y)
            if dst is not None:
                dst[:, :, int(r0 * factor) : int(r1 * factor)] = y.to(dst.device, dst.dtype)
            self.tick()

    @staticmethod
    def normalize_inplace(t: torch.Tensor, layer: nn.InstanceNorm2d, stats: tuple, band: int, relu: bool) -> None:
        """``t`` <- ``layer(t)`` with ``stats`` (then ReLU when ``relu``), ``band`` rows at a time."""
        for r0 in range(0, t.shape[2], band):
            piece = normalize(t[:, :, r0 : r0 + band], layer, stats)
            t[:, :, r0 : r0 + band] = piece.clamp_min(0) if relu else piece
