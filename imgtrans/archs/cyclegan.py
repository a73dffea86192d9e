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

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from imgtrans.archs.base import ArchSpec, BackendChoice, StateDict, count_prefixed
from imgtrans.archs.streaming import BandStreamer, Frozen, RunningStats, normalize as streaming_normalize


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
        self.out_ch = out_ch
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

    def finish(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The output head after ``self.model``: ``y`` is ``self.model``'s output for the input ``x``
        (the same rows of both, so a band-streamed forward can apply it band by band)."""
        if self.input_skip:
            return torch.tanh(y + _atanh(x))
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.finish(self.model(x), x)

    def scale_change(self, s: float) -> None:
        """Scale the change this generator makes to its input by ``s`` (in place; ``input_skip`` only).

        With the input skip the output is ``tanh(net(x) + atanh(x))``, and ``net(x)`` ends in a
        convolution, so scaling that last convolution's weight and bias by ``s`` gives
        ``tanh(s * net(x) + atanh(x))``: the input itself at ``s = 0`` (up to the +-0.999 clamp), the
        trained generator at 1, and between them the same change, weaker, in the tanh domain the
        network learnt it in. Every execution path (whole, streamed, ONNX) runs the scaled weights."""
        if not self.input_skip:
            raise ValueError("only a generator with an input skip can scale its change")
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"strength must be between 0 and 1, not {s}")
        last = self.model[-1]
        with torch.no_grad():
            last.weight.mul_(s)
            if last.bias is not None:
                last.bias.mul_(s)


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

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 spectral: bool = False):
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


def stream_resnet_generator(gen: nn.Module, x: torch.Tensor, band: int, device: torch.device, dtype: torch.dtype,
                            tick=lambda done, total: None) -> torch.Tensor:
    """Exact band-streamed forward of a :class:`ResnetGenerator` (:mod:`imgtrans.archs.streaming`).

    ``x``: ``(1,C,H,W)`` float in [-1,1] (any device), H and W multiples of ``2**n_down``; ``band``:
    rows per band at full resolution (rounded to a multiple of ``2**n_down``). Returns
    ``(1,C_out,H,W)`` float32 in [-1,1] on the CPU, equal to ``gen(x)`` up to float rounding, at
    about 1.3x its cost. Each encoder norm takes one pass over the full-resolution bands; the
    ``2**n_down``-downscaled feature map between encoder and decoder is kept (the peak:
    ``3 * ngf * 2**n_down / 4**n_down`` floats per input pixel), the rest is recomputed band by
    band. ``tick(done, total)`` after every band. One function: the encoder, residual-block and decoder
    passes run in order over the same streamer, frozen norm statistics and deep feature map; split, it reads worse.
    """
    if not isinstance(gen, ResnetGenerator):
        raise TypeError("stream_resnet_generator needs a ResnetGenerator")
    d = 2**gen.n_down
    _, _, h, w = x.shape
    if h % d or w % d:
        raise ValueError(f"H and W must be multiples of {d}, got {h}x{w}")
    band = max(d, band // d * d)
    qband = band // d
    enc_halo = -(-(3 + 2 * d) // d) * d  # conv7 (3) + the stride-2 convs, rounded up to the stride
    dec_halo = 4  # rows at the deepest level: the x2 upsamplers and the last conv7 need < 3

    enc, blocks, dec = gen.encoder(), gen.blocks(), gen.decoder()
    enc_norms = [i for i, layer in enumerate(enc) if isinstance(layer, nn.InstanceNorm2d)]
    dec_norms = [i for i, layer in enumerate(dec) if isinstance(layer, nn.InstanceNorm2d)]
    n_full = -(-h // band)
    n_q = -(-(h // d) // qband)
    total = len(enc_norms) * n_full + len(blocks) * 2 * n_q + (len(dec_norms) + 1) * n_q
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        tick(done, total)

    streamer = BandStreamer(device, dtype, step)
    frozen: Frozen = {}
    with torch.inference_mode():
        src = x.to(device, dtype)
        deep: torch.Tensor | None = None
        for k, pos in enumerate(enc_norms):
            stats = RunningStats()
            last = k == len(enc_norms) - 1
            if last:
                deep = torch.empty(1, enc[pos].num_features, h // d, w // d, device=device, dtype=dtype)
            streamer.run(src, enc[:pos], frozen, factor=1 / 2**k, band=band, halo=enc_halo, stats=stats,
                         dst=deep if last else None)
            frozen[id(enc[pos])] = stats.frozen()
        assert deep is not None
        streamer.normalize_inplace(deep, enc[enc_norms[-1]], frozen[id(enc[enc_norms[-1]])], qband, relu=True)

        for block in blocks:
            layers = list(block.conv_block)
            norms = [i for i, layer in enumerate(layers) if isinstance(layer, nn.InstanceNorm2d)]
            first, second = norms[0], norms[-1]
            s1 = RunningStats()
            mid = torch.empty_like(deep)
            streamer.run(deep, layers[:first], frozen, factor=1, band=qband, halo=1, stats=s1, dst=mid)
            frozen[id(layers[first])] = s1.frozen()
            streamer.normalize_inplace(mid, layers[first], frozen[id(layers[first])], qband, relu=True)
            s2 = RunningStats()
            res = torch.empty_like(deep)
            tail = [layer for layer in layers[first + 2 : second] if not isinstance(layer, nn.Dropout)]
            streamer.run(mid, tail, frozen, factor=1, band=qband, halo=1, stats=s2, dst=res)
            del mid
            frozen[id(layers[second])] = s2.frozen()
            norm2 = layers[second]
            for r0 in range(0, deep.shape[2], qband):
                piece = res[:, :, r0 : r0 + qband]
                deep[:, :, r0 : r0 + qband] += streaming_normalize(piece, norm2, frozen[id(norm2)])
            del res

        for k, pos in enumerate(dec_norms):
            stats = RunningStats()
            streamer.run(deep, dec[:pos], frozen, factor=2 ** (k + 1), band=qband, halo=dec_halo, stats=stats)
            frozen[id(dec[pos])] = stats.frozen()
        out = torch.empty(1, gen.out_ch, h, w, dtype=torch.float32)

        def finish(rows: torch.Tensor, y0: int, y1: int) -> torch.Tensor:
            return gen.finish(rows, src[:, :, y0:y1])

        streamer.run(deep, dec, frozen, factor=d, band=qband, halo=dec_halo, dst=out, finish=finish)
    return out


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
    default_hparams={"in_ch": 3, "out_ch": 3, "ngf": 64, "n_blocks": 9, "n_down": 2, "affine": False,
                     "use_dropout": False,
                     "upsample": "deconv", "input_skip": False},
    size_multiple=_size_multiple,
    # the deepest feature map must be at least 8 rows/columns for the blocks' reflection padding and
    # for instance-norm statistics worth the name
    min_size=lambda hp: 8 * _size_multiple(hp),
    receptive_radius=_radius,
    execution="stream",  # instance norm: statistics span the whole image
    stream=stream_resnet_generator,
    half_ok=True,
    value_range=(-1.0, 1.0),
    bytes_per_pixel=lambda hp: 16 * int(hp["ngf"]),
    normalize_keys=normalize_cyclegan_keys,
    # the stride-2 convs zero-pad a row/column on the top/left only (padding 1, even sizes), and
    # generators trained on crops answer it with bands along the top and left edges and a glitch in
    # the top-left corner; 12 * 2**n_down mirrored pixels per side move that into what is cut away
    # (with 8 * 2**n_down a one-painting style still drew a line along its left edge, and two pairs
    # lines along the top or left of some photos: benchmarks/README.md, "Styles learnt from one painting").
    # written into the metadata of the weights our trainer exports; third-party weights run without
    # one, as their authors ran them (benchmarks/README.md, "Style pairs")
    edge_context=lambda hp: 12 * 2 ** int(hp["n_down"]),
    backends={
        "cpu": BackendChoice("onnx", False, "onnxruntime runs ResNet-9 1.26x faster than eager at 512x512 (more "
                             "memory); images larger than one band use the exact band-streamed path, eager per layer"),
        "cuda": BackendChoice("eager", True, "fp16 + channels_last"),
    },
    # channels_last: no gain for ResNet-9 on the CPU (benchmarks/README.md, "CPU: backends")
    channels_last={"cpu": False, "cuda": True},
    onnx_export=True,
    strength_ok=lambda hp: bool(hp.get("input_skip")),
    set_strength=lambda module, s: module.scale_change(s),
)
