"""DnCNN residual denoiser (Zhang et al. 2017), colour or gray, optionally with an FFDNet-style
noise-level map as an extra input channel so one network serves many noise strengths.

``(B,C,H,W)`` float in [0,1] (plus ``sigma``: noise standard deviation on the [0,1] scale, a float
or a ``(B,)`` tensor, used only when ``noise_map=True``) -> ``(B,C,H,W)`` denoised, float (about
[0,1]). The network predicts the noise and subtracts it from the input.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from imgtrans.archs.base import ArchSpec, BackendChoice, StateDict, count_prefixed


class DnCNN(nn.Module):
    def __init__(self, channels: int = 3, nf: int = 64, depth: int = 17, bn: bool = True, noise_map: bool = False):
        super().__init__()
        self.channels = channels
        self.noise_map = noise_map
        cin = channels + (1 if noise_map else 0)
        layers: list[nn.Module] = [nn.Conv2d(cin, nf, 3, padding=1), nn.ReLU(True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(nf, nf, 3, padding=1, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm2d(nf))
            layers.append(nn.ReLU(True))
        layers.append(nn.Conv2d(nf, channels, 3, padding=1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor | None = None) -> torch.Tensor:
        inp = x
        if self.noise_map:
            if sigma is None:
                raise ValueError("this denoiser takes a noise level: pass sigma (in [0,1] units, e.g. 25/255)")
            level = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
            inp = torch.cat([x, level.expand(x.shape[0], 1, x.shape[2], x.shape[3])], dim=1)
        return x - self.layers(inp)


def conv_stack_hparams(sd: StateDict, prefix: str, planes_per_channel: int = 1) -> dict[str, Any] | None:
    """Hyper-parameters of a plain stack of convolutions at ``prefix`` + ``N`` with an optional noise-level
    plane (DnCNN at ``layers.``; FFDNet at ``body.``, whose first and last convs see ``planes_per_channel``
    = 4 planes per image channel), or ``None``: at least 3 convs from index 0, the last with
    ``planes_per_channel * C`` outputs, the first with as many inputs or one more (the noise map)."""
    convs = sorted(i for i in count_prefixed(sd, prefix, ".weight") if sd[f"{prefix}{i}.weight"].ndim == 4)
    if len(convs) < 3 or convs[0] != 0:
        return None
    first, last = sd[f"{prefix}0.weight"], sd[f"{prefix}{convs[-1]}.weight"]
    out = int(last.shape[0])
    cin = int(first.shape[1])
    if out % planes_per_channel or cin not in (out, out + 1):
        return None
    return {
        "channels": out // planes_per_channel,
        "nf": int(first.shape[0]),
        "depth": len(convs),
        "bn": any(k.endswith(".running_mean") for k in sd),
        "noise_map": cin == out + 1,
    }


def detect_dncnn(sd: StateDict) -> dict[str, Any] | None:
    """Hyper-parameters of a DnCNN state dict, or ``None``."""
    return conv_stack_hparams(sd, "layers.")


DNCNN = ArchSpec(
    name="dncnn",
    task="denoise",
    build=lambda hp: DnCNN(**hp),
    detect=detect_dncnn,
    default_hparams={"channels": 3, "nf": 64, "depth": 17, "bn": True, "noise_map": False},
    receptive_radius=lambda hp: int(hp["depth"]),
    half_ok=False,  # batch-norm statistics and the subtraction of a small residual lose precision in fp16
    bytes_per_pixel=lambda hp: 4 * int(hp["nf"]) * 4,
    forward=lambda module, x, sigma: module(x, sigma) if module.noise_map else module(x),
    takes_noise_level=lambda hp: bool(hp.get("noise_map", False)),
    backends={
        "cpu": BackendChoice("onnx", False, "onnxruntime runs DnCNN 1.7x faster than eager (1.15x faster than "
                             "eager + channels_last) at the same memory"),
        "cuda": BackendChoice("eager", True, "channels_last; fp32 (DnCNN is not half-safe)"),
    },
    channels_last={"cpu": True, "cuda": True},  # faster than NCHW on the CPU (benchmarks/README.md)
    onnx_export=True,
)
