"""Compact VGG-style super-resolution network (the layout of Real-ESRGAN's SRVGGNetCompact, Wang et
al. 2021): a plain stack of 3x3 convolutions with PReLU, all at the input's resolution, whose last
convolution makes ``out_ch * scale**2`` channels that one PixelShuffle turns into the output. No
convolution runs at the upsampled resolution, which is where an SRResNet of the same width spends
most of its time at x4, so this network affords 2-3x the parameters at the same speed.

The network predicts a residual over *bilinear* upsampling of its input (the original adds nearest
upsampling): for a PSNR (L1) model bilinear is the better base. On 12 held-out space-photos at x4 it
is 0.64 dB PSNR-Y closer to the target than nearest (29.47 vs 28.83 dB), so a fresh network starts
there and the body only learns the detail bilinear lacks, instead of first learning to smooth out
nearest's blocks; it is also what our SRResNet adds, so the two families start from the same picture.
The last convolution is ICNR-initialised and scaled down, so the residual starts small and free of
checkerboard patterns.

Key layout: ``head`` (conv in_ch->nf), ``head_act`` (PReLU), ``body.{2i}`` (conv nf->nf) and
``body.{2i+1}`` (PReLU) for each of the ``n_conv`` body convolutions, ``tail`` (conv
nf->out_ch*scale**2). It differs from SRResNet's (``body.N.conv1``, ``body_conv``) and from the
original's (everything under ``body``), so the three are never confused: Real-ESRGAN's compact
weights, which add nearest upsampling, load through spandrel instead.

``(B,in_ch,h,w)`` float in [0,1] -> ``(B,out_ch,h*scale,w*scale)`` float (about [0,1]; clamp for
display).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from imgtrans.archs.base import ArchSpec, BackendChoice, StateDict
from imgtrans.archs.srresnet import icnr_


class SRVGG(nn.Module):
    """Compact VGG-style SR network. ``(B,in_ch,h,w)`` in [0,1] -> ``(B,out_ch,h*scale,w*scale)``."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, nf: int = 64, n_conv: int = 16, scale: int = 4):
        super().__init__()
        if scale < 1:
            raise ValueError(f"unsupported scale {scale}")
        self.scale = scale
        self.head = nn.Conv2d(in_ch, nf, 3, padding=1)
        self.head_act = nn.PReLU(nf)
        layers: list[nn.Module] = []
        for _ in range(n_conv):
            layers += [nn.Conv2d(nf, nf, 3, padding=1), nn.PReLU(nf)]
        self.body = nn.Sequential(*layers)
        self.tail = nn.Conv2d(nf, out_ch * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        # He initialisation for PReLU's starting slope: with PyTorch's default conv init each plain layer
        # shrinks its input's variance several-fold and the default biases take over, so after 24 layers the
        # features hardly depend on the input and the first layers get no gradient (the head's mean gradient
        # on a fresh nf 16 x 24 net: 2e-13, below Adam's epsilon; with this init the features keep their scale
        # through the body). Training such a deep plain stack is still the open question: training/sr_x4_compact
        for conv in (self.head, *self.body[::2]):
            nn.init.kaiming_normal_(conv.weight, a=0.25, nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)
        # start as bilinear upsampling within about a grey level: an ICNR-initialised last layer scaled far
        # down (at SRResNet's 0.1 a fresh nf 64 x 24 net added noise of std 0.08, 20 grey levels; at 0.005,
        # 0.004)
        icnr_(self.tail.weight, scale)
        self.tail.weight.data.mul_(0.005)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shuffle(self.tail(self.body(self.head_act(self.head(x)))))
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False) if self.scale > 1 else x
        if base.shape[1] != out.shape[1]:
            base = base[:, : out.shape[1]]
        return out + base


def detect_srvgg(sd: StateDict) -> dict[str, Any] | None:
    """Hyper-parameters of an SRVGG state dict, or ``None`` (SRResNet's and DnCNN's are rejected)."""
    head, tail = sd.get("head.weight"), sd.get("tail.weight")
    if head is None or tail is None or head.ndim != 4 or tail.ndim != 4 or "body_conv.weight" in sd:
        return None
    # the body is conv/PReLU pairs: body.{2i}.weight/.bias (4-dim) and body.{2i+1}.weight (1-dim); an
    # SRResNet's body.N.conv1.weight or any other key under body. is not of this family
    body: dict[int, set[str]] = {}
    for key in sd:
        if key.startswith("body."):
            parts = key.split(".")
            if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in ("weight", "bias"):
                return None
            body.setdefault(int(parts[1]), set()).add(parts[2])
    if sorted(body) != list(range(len(body))) or len(body) % 2:
        return None
    for i, kinds in body.items():
        conv = i % 2 == 0
        if "weight" not in kinds or sd[f"body.{i}.weight"].ndim != (4 if conv else 1) or (not conv and "bias" in kinds):
            return None
    convs = len(body) // 2
    in_ch, nf = int(head.shape[1]), int(head.shape[0])
    if int(tail.shape[1]) != nf:
        return None
    # out_ch * scale**2 channels: the output has the input's channels where that fits
    for out_ch in dict.fromkeys((in_ch, 3, 1)):
        scale = math.isqrt(int(tail.shape[0]) // out_ch)
        if out_ch * scale * scale == int(tail.shape[0]):
            return {"in_ch": in_ch, "out_ch": out_ch, "nf": nf, "n_conv": convs, "scale": scale}
    return None


SRVGG_SPEC = ArchSpec(
    name="srvgg",
    task="sr",
    build=lambda hp: SRVGG(**hp),
    detect=detect_srvgg,
    default_hparams={"in_ch": 3, "out_ch": 3, "nf": 64, "n_conv": 16, "scale": 4},
    scale=lambda hp: int(hp["scale"]),
    # head + n_conv body convs + tail, 3x3 each, all at the input's resolution; the bilinear base reads
    # one pixel around, inside that
    receptive_radius=lambda hp: int(hp["n_conv"]) + 2,
    half_ok=True,  # no normalisation; the residual is added in the output's precision as SRResNet's is
    # two nf-channel feature maps alive at once, the tail's out_ch*scale**2 channels, the shuffled output
    # and the bilinear base (each out_ch*scale**2 per input pixel), float32
    bytes_per_pixel=lambda hp: 4 * (3 * int(hp["nf"]) + 4 * int(hp["out_ch"]) * int(hp["scale"]) ** 2),
    # measured with nf 64, 24 body convolutions (the sr-x4-compact recipe), 2 threads (benchmarks/README.md,
    # "What auto picks"): at x4 onnxruntime is no faster than eager + channels_last and takes ~250 MB more
    # at a 1024 px input; at x2 it is 1.35x faster, which `imgtrans calibrate` finds per machine
    backends={
        "cpu": BackendChoice("eager", True, "eager + channels_last: as fast as onnxruntime at x4 with ~250 MB "
                             "less memory (onnx's arena is what broke the 3 GB bound for SRResNet), 1.1x faster "
                             "than eager NCHW"),
        "cuda": BackendChoice("eager", True, "fp16 + channels_last (tensor cores)"),
    },
    channels_last={"cpu": True, "cuda": True},
    onnx_export=True,
)
