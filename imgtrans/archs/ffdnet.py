"""FFDNet denoiser (Zhang, Zuo and Zhang 2018, "FFDNet: Toward a fast and flexible solution for CNN
based image denoising"), colour or gray, with the noise level as an input plane.

``(B,C,H,W)`` float in [0,1], H and W even (``size_multiple`` 2: the engine pads odd sizes by
reflection), plus ``sigma``: noise standard deviation on the [0,1] scale, a float or a ``(B,)``
tensor, used when ``noise_map=True`` -> ``(B,C,H,W)`` denoised, float (about [0,1]).

The image is pixel-unshuffled by 2 (``4C`` channels at half resolution), the noise level is
concatenated as one constant channel, then conv + ReLU, ``depth - 2`` x (conv, BN, ReLU) and a
conv back to ``4C`` channels, pixel-shuffled to full resolution. Working at a quarter of the pixels,
a net of width ``nf`` costs per image pixel what a DnCNN of width ``nf / 2`` costs, sees twice as far
(receptive radius ``2 depth + 1``) and has about four times its parameters.

As in the paper, the network maps straight to the clean image. Predicting the noise instead (``x -
net``, as DnCNN does) trained worse on this CPU budget: 800 steps (nf 32, depth 10, 64 px patches,
batch 16, sigma 0-50, linear LR decay) gave 26.85 dB at sigma 25 on 8 held-out space photos for the
direct form, 20.75 for the residual one and 23.27 for the residual one with a zero-initialised last
conv (noisy input: 20.17 dB).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from imgtrans.archs.base import ArchSpec, BackendChoice, StateDict
from imgtrans.archs.dncnn import conv_stack_hparams


class FFDNet(nn.Module):
    def __init__(self, channels: int = 3, nf: int = 64, depth: int = 12, bn: bool = True, noise_map: bool = True):
        super().__init__()
        self.channels = channels
        self.noise_map = noise_map
        cin = 4 * channels + (1 if noise_map else 0)
        layers: list[nn.Module] = [nn.Conv2d(cin, nf, 3, padding=1), nn.ReLU(True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(nf, nf, 3, padding=1, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm2d(nf))
            layers.append(nn.ReLU(True))
        layers.append(nn.Conv2d(nf, 4 * channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-2] % 2 or x.shape[-1] % 2:
            raise ValueError(f"FFDNet needs an even height and width, not {x.shape[-1]}x{x.shape[-2]} (pad first)")
        inp = F.pixel_unshuffle(x, 2)
        if self.noise_map:
            if sigma is None:
                raise ValueError("this denoiser takes a noise level: pass sigma (in [0,1] units, e.g. 25/255)")
            level = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
            inp = torch.cat([inp, level.expand(x.shape[0], 1, inp.shape[2], inp.shape[3])], dim=1)
        return F.pixel_shuffle(self.body(inp), 2)


def detect_ffdnet(sd: StateDict) -> dict[str, Any] | None:
    """Hyper-parameters of an FFDNet state dict, or ``None``: convs at ``body.N``, the last one with
    ``4C`` outputs, the first with ``4C`` or ``4C + 1`` inputs, and nothing outside ``body.`` (DnCNN's live
    at ``layers.N``; the compact SR family has ``body.N`` too, between a ``head`` and a ``tail``)."""
    if any(not k.startswith("body.") for k in sd):
        return None
    return conv_stack_hparams(sd, "body.", planes_per_channel=4)


FFDNET = ArchSpec(
    name="ffdnet",
    task="denoise",
    build=lambda hp: FFDNet(**hp),
    detect=detect_ffdnet,
    default_hparams={"channels": 3, "nf": 64, "depth": 12, "bn": True, "noise_map": True},
    size_multiple=lambda hp: 2,
    # depth 3x3 convs at half resolution reach depth half-resolution pixels, 2 depth + 1 full-resolution
    # ones from the far corner of a 2x2 cell
    receptive_radius=lambda hp: 2 * int(hp["depth"]) + 1,
    half_ok=False,  # batch-norm statistics lose precision in fp16 (as DnCNN's; not measured on a GPU)
    # a quarter of DnCNN's 4 feature maps of nf float32 per pixel, plus the input, its unshuffled copy and
    # the output: 320 at nf 64, where eager at 1024x768 peaked at 205 more bytes per pixel of RSS (the
    # bundled DnCNN: 399 against its 512)
    bytes_per_pixel=lambda hp: int(hp["nf"]) * 4 + 64,
    forward=lambda module, x, sigma: module(x, sigma) if module.noise_map else module(x),
    takes_noise_level=lambda hp: bool(hp.get("noise_map", True)),
    backends={
        # 1024x768, 2 threads, through run_model, on a loaded machine: nf 64, depth 12 eager 7.30, eager +
        # channels_last 5.64, onnx 2.98 s/MP (the bundled DnCNN nf 32, depth 12 in the same run: 8.84 / 5.14 /
        # 2.97: same cost per pixel, as the FLOPs say); nf 48: 4.89 / 3.08 / 1.70
        "cpu": BackendChoice("onnx", False, "onnxruntime runs FFDNet 2.4x faster than eager and 1.9x faster than "
                             "eager + channels_last (1024x768, 2 threads)"),
        "cuda": BackendChoice("eager", True, "channels_last; fp32 (FFDNet is not half-safe)"),
    },
    channels_last={"cpu": True, "cuda": True},  # 1.3x faster than NCHW eager on the CPU (above)
    onnx_export=True,
)
