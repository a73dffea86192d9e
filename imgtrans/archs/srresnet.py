"""SRGAN family: SRResNet generator (x2/x3/x4) and the SRGAN discriminator.

The generator follows SRGAN's SRResNet without batch norm (as EDSR and BasicSR's MSRResNet do:
batch norm hurts super-resolution and makes tiles depend on batch statistics). Upsampling is a
conv + PixelShuffle per factor 2 (or 3) whose conv is ICNR-initialised, so a fresh network starts
as nearest-neighbour upsampling and never learns checkerboard patterns from its initial state. The
network predicts a residual over bilinear upsampling of its input.

Generator: ``(B,in_ch,h,w)`` float in [0,1] -> ``(B,out_ch,h*scale,w*scale)`` float (about [0,1];
clamp for display).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from imgtrans.archs.base import ArchSpec, BackendChoice, StateDict, count_prefixed


def icnr_(weight: torch.Tensor, factor: int, init=nn.init.kaiming_normal_) -> torch.Tensor:
    """ICNR initialisation (Aitken et al. 2017) of a conv weight feeding ``PixelShuffle(factor)``.

    ``weight`` is ``(C*factor**2, C_in, k, k)``; every group of ``factor**2`` output channels gets the
    same kernel, so the shuffled output is a nearest-neighbour upsampling of one convolution.
    """
    out_ch, in_ch, kh, kw = weight.shape
    sub = torch.empty(out_ch // factor**2, in_ch, kh, kw)
    init(sub)
    with torch.no_grad():
        weight.copy_(sub.repeat_interleave(factor**2, dim=0))
    return weight


class ResidualBlock(nn.Module):
    """``x + conv(PReLU(conv(x)))`` without normalisation. ``(B,nf,h,w)`` -> same."""

    def __init__(self, nf: int):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, padding=1)
        self.act = nn.PReLU(nf)
        self.conv2 = nn.Conv2d(nf, nf, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


def make_upsampler(nf: int, scale: int) -> nn.Sequential:
    """conv -> PixelShuffle -> PReLU, once per factor (2 for x2, 2+2 for x4, 3 for x3).
    ``(B,nf,h,w)`` -> ``(B,nf,h*scale,w*scale)``."""
    factors = {1: [], 2: [2], 3: [3], 4: [2, 2], 8: [2, 2, 2]}.get(scale)
    if factors is None:
        raise ValueError(f"unsupported scale {scale}")
    layers: list[nn.Module] = []
    for f in factors:
        conv = nn.Conv2d(nf, nf * f * f, 3, padding=1)
        icnr_(conv.weight, f)
        nn.init.zeros_(conv.bias)
        layers += [conv, nn.PixelShuffle(f), nn.PReLU(nf)]
    return nn.Sequential(*layers)


class SRResNet(nn.Module):
    """SRResNet generator. ``(B,in_ch,h,w)`` in [0,1] -> ``(B,out_ch,h*scale,w*scale)``."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, nf: int = 64, n_blocks: int = 16, scale: int = 4):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(in_ch, nf, 3, padding=1)
        self.head_act = nn.PReLU(nf)
        self.body = nn.Sequential(*[ResidualBlock(nf) for _ in range(n_blocks)])
        self.body_conv = nn.Conv2d(nf, nf, 3, padding=1)
        self.upsample = make_upsampler(nf, scale)
        self.tail = nn.Conv2d(nf, out_ch, 3, padding=1)
        # start as (almost) bilinear upsampling: a small last layer keeps the residual small
        nn.init.kaiming_normal_(self.tail.weight, a=0.0)
        self.tail.weight.data.mul_(0.1)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.head_act(self.head(x))
        feat = feat + self.body_conv(self.body(feat))
        out = self.tail(self.upsample(feat))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False) if self.scale > 1 else x
        if base.shape[1] != out.shape[1]:
            base = base[:, : out.shape[1]]
        return out + base


def load_grown(net: SRResNet, sd: StateDict) -> int:
    """Load the state dict ``sd`` of an SRResNet with the same features and scale as ``net`` but fewer
    (or as many) residual blocks into ``net``: its blocks fill the first ones, and the blocks it lacks
    are appended as identities (second conv zero), so the grown network computes exactly what ``sd``
    does and a training run starts from its quality with more capacity (the net2net idea, Chen et al.
    2016). Returns the number of blocks added."""
    theirs = len(count_prefixed(sd, "body.", ".conv1.weight"))
    ours = len(net.body)
    if theirs > ours:
        raise ValueError(f"the file has {theirs} residual blocks, more than this network's {ours}")
    missing, unexpected = net.load_state_dict(sd, strict=False)
    if unexpected or any(not k.startswith(tuple(f"body.{i}." for i in range(theirs, ours))) for k in missing):
        raise ValueError(f"state dict does not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")
    with torch.no_grad():
        for block in list(net.body)[theirs:]:
            nn.init.zeros_(block.conv2.weight)
            nn.init.zeros_(block.conv2.bias)
    return ours - theirs


class SRGANDiscriminator(nn.Module):
    """SRGAN discriminator: 8 conv layers (64 -> 512 features, stride 2 every other), LeakyReLU 0.2,
    batch norm after the first, then global pooling and a 1024-unit dense layer as 1x1 convs so
    any input size works. ``(B,in_ch,H,W)`` in [0,1] -> ``(B,1)`` logits."""

    def __init__(self, in_ch: int = 3, nf: int = 64, spectral: bool = False):
        super().__init__()

        def conv(cin: int, cout: int, stride: int) -> nn.Module:
            layer = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral else layer

        chans = [nf, nf, nf * 2, nf * 2, nf * 4, nf * 4, nf * 8, nf * 8]
        layers: list[nn.Module] = []
        cin = in_ch
        for i, cout in enumerate(chans):
            layers.append(conv(cin, cout, 2 if i % 2 else 1))
            if i > 0 and not spectral:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, True))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, nf * 16, 1), nn.LeakyReLU(0.2, True), nn.Conv2d(nf * 16, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).flatten(1)


def detect_srresnet(sd: StateDict) -> dict[str, Any] | None:
    """Hyper-parameters of an SRResNet state dict, or ``None``."""
    head = sd.get("head.weight")
    tail = sd.get("tail.weight")
    if head is None or tail is None or "body_conv.weight" not in sd:
        return None
    convs = sorted(count_prefixed(sd, "upsample.", ".weight"))
    # upsample.{3k}.weight is a conv, upsample.{3k+2}.weight a PReLU
    scale = 1
    nf = int(head.shape[0])
    for idx in convs:
        w = sd[f"upsample.{idx}.weight"]
        if w.ndim == 4:
            scale *= int(round(math.sqrt(w.shape[0] / nf)))
    return {
        "in_ch": int(head.shape[1]),
        "out_ch": int(tail.shape[0]),
        "nf": nf,
        "n_blocks": len(count_prefixed(sd, "body.", ".conv1.weight")),
        "scale": scale,
    }


SRRESNET = ArchSpec(
    name="srresnet",
    task="sr",
    build=lambda hp: SRResNet(**hp),
    detect=detect_srresnet,
    default_hparams={"in_ch": 3, "out_ch": 3, "nf": 64, "n_blocks": 16, "scale": 4},
    scale=lambda hp: int(hp["scale"]),
    receptive_radius=lambda hp: 2 * int(hp["n_blocks"]) + 5,
    half_ok=True,
    bytes_per_pixel=lambda hp: 4 * int(hp["nf"]) * (4 + 2 * int(hp["scale"]) ** 2),
    # thin SRResNets (32 features: every bundled SR model) run a little faster per image under
    # onnxruntime, but eager keeps x4 SR of a 4096x4096 image under 3 GB (benchmarks/README.md, "What auto picks")
    backends={
        "cpu": BackendChoice("eager", True, "eager + channels_last: as fast as onnxruntime for the full-size "
                             "SRResNet with ~330 MB less memory, 1.4x faster than eager NCHW"),
        "cuda": BackendChoice("eager", True, "fp16 + channels_last (tensor cores)"),
    },
    channels_last={"cpu": True, "cuda": True},
    onnx_export=True,
)
