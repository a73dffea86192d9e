"""CycleGAN ResNet generator and 70x70 PatchGAN discriminator.

Module and key layout follow the reference CycleGAN code (``netG`` = ``ResnetGenerator`` with
``model.N...`` keys and ``model.N.conv_block.M...`` inside residual blocks), so published generator
state dicts load unchanged. ``normalize_cyclegan_keys`` also accepts the ``model.N.block.M`` layout
and drops the stale ``running_mean``/``running_var`` buffers that old PyTorch versions saved in
instance-norm layers.

The generator maps ``(B,C,H,W)`` float in [-1,1] to ``(B,C_out,H,W)`` float in [-1,1]; ``H`` and ``W``
must be multiples of ``2**n_down`` (4 by default).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from imgtrans.archs.base import ArchSpec, StateDict, count_prefixed


def _instance_norm(channels: int, affine: bool) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=affine, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Residual block: ``x + IN(conv(pad(ReLU(IN(conv(pad(x)))))))``. ``(B,dim,h,w)`` -> same."""

    def __init__(self, dim: int, affine: bool = False, use_dropout: bool = False):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            _instance_norm(dim, affine),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            _instance_norm(dim, affine),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def _upsampler(cin: int, cout: int, mode: str) -> nn.Module:
    """x2 upsampling conv, ``(B,cin,h,w)`` -> ``(B,cout,2h,2w)``. ``"deconv"``: the reference's stride-2
    transposed conv (kernel 3), whose uneven kernel overlap can leave a checkerboard; ``"resize"``:
    nearest-neighbour x2 then a 3x3 conv (Odena et al. 2016), which cannot."""
    if mode == "deconv":
        return nn.ConvTranspose2d(cin, cout, kernel_size=3, stride=2, padding=1, output_padding=1, bias=True)
    if mode == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                             nn.Conv2d(cin, cout, kernel_size=3, padding=0, bias=True))
    raise ValueError(f"upsample must be 'deconv' or 'resize', got {mode!r}")


class ResnetGenerator(nn.Module):
    """CycleGAN generator: c7s1-ngf, ``n_down`` stride-2 convs, ``n_blocks`` residual blocks,
    ``n_down`` x2 upsampling convs (``upsample``: ``"deconv"`` as the reference, or ``"resize"``:
    nearest x2 + conv, free of checkerboard artifacts), c7s1-out, tanh. Instance norm throughout.

    ``input_skip=True`` adds the input to the last conv's output inside the tanh:
    ``tanh(net(x) + atanh(x))``, so the network learns a change to its input and starts near the
    identity. Without it the instance norms discard each image's mean colour and contrast, which the
    network must then re-guess: a small generator trained on a CPU budget reconstructs its input (the
    cycle) with visible colour shifts and blur. Needs ``in_ch == out_ch``.

    Input ``(B,in_ch,H,W)`` float in [-1,1], ``H,W`` multiples of ``2**n_down``;
    output ``(B,out_ch,H,W)`` float in [-1,1].
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        n_down: int = 2,
        affine: bool = False,
        use_dropout: bool = False,
        upsample: str = "deconv",
        input_skip: bool = False,
    ):
        super().__init__()
        if input_skip and in_ch != out_ch:
            raise ValueError(f"input_skip needs as many output channels as input channels, not {in_ch} -> {out_ch}")
        self.n_blocks = n_blocks
        self.n_down = n_down
        self.input_skip = input_skip
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_ch, ngf, kernel_size=7, padding=0, bias=True),
            _instance_norm(ngf, affine),
            nn.ReLU(True),
        ]
        for i in range(n_down):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=True),
                _instance_norm(ngf * mult * 2, affine),
                nn.ReLU(True),
            ]
        mult = 2**n_down
        layers += [ResnetBlock(ngf * mult, affine, use_dropout) for _ in range(n_blocks)]
        for i in range(n_down):
            mult = 2 ** (n_down - i)
            layers += [
                _upsampler(ngf * mult, ngf * mult // 2, upsample),
                _instance_norm(ngf * mult // 2, affine),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, kernel_size=7, padding=0)]
        if not input_skip:
            layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)

    @property
    def first_block(self) -> int:
        """Index in ``self.model`` of the first residual block."""
        return 4 + 3 * self.n_down

    def encoder(self) -> list[nn.Module]:
        return list(self.model[: self.first_block])

    def blocks(self) -> list[ResnetBlock]:
        return list(self.model[self.first_block : self.first_block + self.n_blocks])

    def decoder(self) -> list[nn.Module]:
        return list(self.model[self.first_block + self.n_blocks :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_skip:
            return torch.tanh(self.model(x) + _atanh(x))
        return self.model(x)


def _atanh(x: torch.Tensor) -> torch.Tensor:
    """``atanh`` of ``x`` clamped to +-0.999 (atanh of +-1 is infinite; 0.999 is 0.13 grey levels from
    white/black), written with ``log`` because the TorchScript ONNX exporter has no ``atanh``."""
    x = x.clamp(-0.999, 0.999)
    return 0.5 * torch.log((1 + x) / (1 - x))


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator (70x70 receptive field with ``n_layers=3``).

    ``(B,in_ch,H,W)`` float in [-1,1] -> ``(B,1,H/8-2,W/8-2)`` real/fake logits, one per patch.
    ``norm`` is ``"instance"`` (reference default for CycleGAN), ``"batch"`` or ``"none"``;
    ``spectral=True`` wraps every conv in spectral normalisation.
    """

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance", spectral: bool = False):
        super().__init__()

        def conv(cin: int, cout: int, stride: int, bias: bool = True) -> nn.Module:
            layer = nn.Conv2d(cin, cout, kernel_size=4, stride=stride, padding=1, bias=bias)
            return nn.utils.parametrizations.spectral_norm(layer) if spectral else layer

        def norm_layer(ch: int) -> list[nn.Module]:
            if norm == "instance":
                return [nn.InstanceNorm2d(ch)]
            if norm == "batch":
                return [nn.BatchNorm2d(ch)]
            return []

        layers: list[nn.Module] = [conv(in_ch, ndf, 2), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [conv(ndf * prev, ndf * mult, 2), *norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [conv(ndf * prev, ndf * mult, 1), *norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [conv(ndf * mult, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


_IGNORED_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


def normalize_cyclegan_keys(sd: StateDict) -> dict[str, torch.Tensor]:
    """Map known third-party layouts of a ResNet generator onto ours.

    Strips ``module.`` (DataParallel) and ``netG.`` prefixes, renames ``.block.`` to ``.conv_block.``
    and drops instance-norm running statistics (the generator uses none).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        for prefix in ("module.", "netG."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        if key.endswith(_IGNORED_SUFFIXES):
            continue
        key = key.replace(".block.", ".conv_block.")
        out[key] = value
    return out


def detect_resnet_generator(sd: StateDict) -> dict[str, Any] | None:
    """Hyper-parameters of a ResNet generator state dict (keys normalised), or ``None``."""
    first = sd.get("model.1.weight")
    if first is None or first.ndim != 4 or first.shape[-1] != 7:
        return None
    blocks = sorted(count_prefixed(sd, "model.", ".conv_block.1.weight"))
    if not blocks:
        return None
    first_block = blocks[0]
    n_down = (first_block - 4) // 3
    if n_down < 0 or 4 + 3 * n_down != first_block or blocks != list(range(first_block, first_block + len(blocks))):
        return None
    n_blocks = len(blocks)
    last_conv = first_block + n_blocks + 3 * n_down + 1
    last = sd.get(f"model.{last_conv}.weight")
    if last is None or last.ndim != 4:
        return None
    up = first_block + n_blocks  # the first upsampling layer: a transposed conv, or (resize) its conv at .2
    if getattr(sd.get(f"model.{up}.weight"), "ndim", 0) == 4:
        upsample = "deconv"
    elif getattr(sd.get(f"model.{up}.2.weight"), "ndim", 0) == 4:
        upsample = "resize"
    else:
        return None
    return {
        "in_ch": int(first.shape[1]),
        "out_ch": int(last.shape[0]),
        "ngf": int(first.shape[0]),
        "n_blocks": n_blocks,
        "n_down": n_down,
        "affine": "model.2.weight" in sd,
        "upsample": upsample,
        # with dropout the second conv moves from conv_block.5 to conv_block.6 (affine norms also own 4-D-less .6 keys)
        "use_dropout": getattr(sd.get(f"model.{first_block}.conv_block.6.weight"), "ndim", 0) == 4,
    }


def _size_multiple(hp: Mapping[str, Any]) -> int:
    return 2 ** int(hp["n_down"])


def _radius(hp: Mapping[str, Any]) -> int:
    d = 2 ** int(hp["n_down"])
    return 3 + (d - 1) + 2 * int(hp["n_blocks"]) * d + (d - 1) + 3


CYCLEGAN_RESNET = ArchSpec(
    name="cyclegan_resnet",
    task="style",
    build=lambda hp: ResnetGenerator(**hp),
    detect=detect_resnet_generator,
    default_hparams={"in_ch": 3, "out_ch": 3, "ngf": 64, "n_blocks": 9, "n_down": 2, "affine": False, "use_dropout": False,
                     "upsample": "deconv", "input_skip": False},
    size_multiple=_size_multiple,
    receptive_radius=_radius,
    tile_safe=False,  # instance norm: statistics span the whole image
    half_ok=True,
    value_range=(-1.0, 1.0),
    bytes_per_pixel=lambda hp: 16 * int(hp["ngf"]),
    normalize_keys=normalize_cyclegan_keys,
    # the stride-2 convs zero-pad a row/column on the top/left only (padding 1, even sizes), and the
    # trained generators answer it with bands along the top and left edges and a glitch in the top-left
    # corner; 32 mirrored pixels per side (for 2 downsamplings) move that into what is cut away
    # (benchmarks/README.md, "Style edges")
    edge_context=lambda hp: 8 * 2 ** int(hp["n_down"]),
)
