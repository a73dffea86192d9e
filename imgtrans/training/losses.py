"""GAN losses, gradient penalty and the CycleGAN image pool.

Discriminator outputs are raw scores (no sigmoid) of any shape, e.g. PatchGAN's ``(B,1,h,w)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def gan_loss(pred: torch.Tensor, target_is_real: bool, mode: str) -> torch.Tensor:
    """The reference ``GANLoss``: ``lsgan`` = MSE to 1/0, ``vanilla`` = BCE with logits to 1/0,
    ``wgangp`` = -mean (real) / +mean (fake). Always a scalar mean over all patches."""
    pred = pred.float()
    if mode == "lsgan":
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        return F.mse_loss(pred, target)
    if mode == "vanilla":
        target = torch.ones_like(pred) if target_is_real else torch.zeros_like(pred)
        return F.binary_cross_entropy_with_logits(pred, target)
    if mode == "wgangp":
        return -pred.mean() if target_is_real else pred.mean()
    raise ValueError(f"unknown GAN loss {mode!r}")


def lattice_magnitudes(x: torch.Tensor, period: int = 4) -> torch.Tensor:
    """``(B,C,H,W)`` float -> ``(B,C,K)``: each channel's :func:`~imgtrans.training.metrics.amplitude_spectrum`
    at the :func:`~imgtrans.training.metrics.lattice_bins` for ``period`` and their 8 neighbouring
    bins (amplitude units: a sinusoid of amplitude ``a`` there gives ``a``). Differentiable, fp32."""
    from imgtrans.training.metrics import amplitude_spectrum, around, lattice_bins

    h, w = x.shape[-2:]
    spec = amplitude_spectrum(x)
    rows, cols = zip(*(around(by, bx, h, w, 1) for by, bx in lattice_bins(h, w, period)))
    idx = torch.cat([(r * w + c).flatten() for r, c in zip(rows, cols)]).to(x.device)
    return spec.flatten(-2)[..., idx]


def border_line_steps(x: torch.Tensor, lines: int = 6, inner: int = 12) -> torch.Tensor:
    """How far each of the outer ``lines`` rows/columns of ``x`` ``(B,3,H,W)`` float in [0,1] is from the
    mean colour of the ``inner`` px strip inside them, per side (worst channel, [0,1] scale):
    ``(B,4,lines)`` for top, bottom, left, right, the border line first. Line by line, so a band cannot
    hide inside a wider strip's mean."""
    def side(edge: torch.Tensor, strip: torch.Tensor) -> torch.Tensor:  # edge (B,C,lines,L), strip (B,C,inner,L)
        return (edge.mean(-1) - strip.mean((-2, -1))[..., None]).abs().amax(1)

    o, i = lines, lines + inner
    t = x.float()
    cols = t.transpose(-2, -1)  # columns as rows: left and right the same way as top and bottom
    return torch.stack([side(t[..., :o, :], t[..., o:i, :]), side(t[..., -o:, :].flip(-2), t[..., -i:-o, :]),
                        side(cols[..., :o, :], cols[..., o:i, :]),
                        side(cols[..., -o:, :].flip(-2), cols[..., -i:-o, :])], 1)


def edge_band_loss(out: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """Bands along the borders of ``out`` beyond what ``photo`` has there: both ``(B,3,H,W)`` float in
    [0,1]; each of the outer 6 rows/columns against the 12 px inside them (:func:`border_line_steps`),
    the excess over the photo's own step at that line (never negative), averaged over lines and sides,
    on the [0,1] scale. ``(B,)``. Differentiable in ``out``. A generator that meets a mirrored border
    (the app's ``edge_context``) can paint a line there that the whole-picture style and content
    losses are blind to; this is what sees it. Per line: a loss on 6 px strip means let a first trial
    move the band into a two-pixel line with compensating columns next to it."""
    with torch.no_grad():
        own = border_line_steps(photo)
    return F.relu(border_line_steps(out) - own).flatten(1).mean(1)


def grid_loss(fake: torch.Tensor, source: torch.Tensor, period: int = 4) -> torch.Tensor:
    """What a translation adds at the frequencies where strided and upsampling layers leave their
    periodic patterns (checkerboard, hatching), beyond what its source image has there: the mean
    of ``relu(|F(fake)| - |F(source)|)`` over those few bins (:func:`lattice_magnitudes`), in
    amplitude units of the images' range. Both ``(B,C,H,W)`` in the same range ([-1,1] here); a
    scalar. Texture at every other frequency is left to the GAN."""
    return F.relu(lattice_magnitudes(fake, period) - lattice_magnitudes(source.detach(), period)).mean()


def gradient_penalty(netD: nn.Module, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): ``mean((||grad D(x_hat)||_2 - 1)^2)`` at
    ``x_hat = alpha*real + (1-alpha)*fake``; ``alpha`` is ``(B,1,1,1)`` in [0,1]. Computed in fp32."""
    x_hat = (alpha * real.detach().float() + (1 - alpha) * fake.detach().float()).requires_grad_(True)
    with torch.autocast(device_type=x_hat.device.type, enabled=False):
        out = netD(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def discriminator_loss(netD: nn.Module, real: torch.Tensor, fake: torch.Tensor, mode: str,
                       lambda_gp: float = 10.0, alpha: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """The reference ``backward_D_basic``: ``(loss(D(real), real) + loss(D(fake), fake)) * 0.5``;
    for WGAN-GP the unhalved critic loss plus ``lambda_gp`` times the gradient penalty."""
    loss_real = gan_loss(netD(real), True, mode)
    loss_fake = gan_loss(netD(fake.detach()), False, mode)
    if mode == "wgangp":
        assert alpha is not None, "WGAN-GP needs the interpolation weights"
        return loss_real + loss_fake + lambda_gp * gradient_penalty(netD, real, fake, alpha)
    return (loss_real + loss_fake) * 0.5


class ImagePool:
    """The reference ``ImagePool`` (Shrivastava et al. 2017): a buffer of up to ``size`` generated
    images; once full, each query image is, with probability 1/2, swapped for a random stored one.

    Unlike the reference (Python's global ``random``), choices come from a generator passed per query,
    so the pool's only state is its images (``state_dict``), and resumed runs make the same choices.
    """

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """``(B,C,H,W)`` -> ``(B,C,H,W)`` (detached)."""
        if self.size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=g)) > 0.5:
                idx = int(torch.randint(0, self.size, (), generator=g))
                out.append(self.images[idx].clone())
                self.images[idx] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": [t.cpu() for t in self.images]}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.images = [t.to(device) for t in state["images"]]


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """The reference ``init_weights(..., 'normal', 0.02)``: conv/linear weights ~ N(0, gain), biases 0,
    norm-layer weights ~ N(1, gain). Spectral-normalised convs get it on their original weight."""
    for m in net.modules():
        name = m.__class__.__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name):
            parametrized = getattr(m, "parametrizations", None)
            weight = parametrized.weight.original if parametrized is not None and "weight" in parametrized else m.weight
            nn.init.normal_(weight.data, 0.0, gain)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias.data, 0.0)
        elif "BatchNorm2d" in name or ("InstanceNorm2d" in name and getattr(m, "weight", None) is not None):
            nn.init.normal_(m.weight.data, 1.0, gain)
            nn.init.constant_(m.bias.data, 0.0)
    return net
