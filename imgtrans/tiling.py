"""Tiled inference: any image size, bounded memory, no seams.

Two paths, chosen from the model's descriptor:

* **Local networks** (``tile_safe``: SRResNet, DnCNN, most third-party SR models) run on 2D tiles.
  Each tile is read with a context margin of at least the network's receptive radius and only its
  core is kept, so tiles are exact; when the radius is unknown (third-party models) neighbouring
  tiles also overlap by a blend zone with raised-cosine weights, which hides what little differs.
* **Instance-norm generators** (CycleGAN ``ResnetGenerator``) normalise with statistics over the
  whole image, so independent tiles would each get their own colours. They run as a stream of
  full-width row bands, one instance-norm layer at a time: a pass over the bands accumulates that
  layer's exact mean and variance (Chan's parallel update, float64), after which the layer is
  frozen with those statistics and the next pass goes one layer deeper. The quarter-resolution
  feature map between encoder and decoder is kept (``3 * 4*ngf/16`` floats per input pixel at the
  peak), the rest is recomputed band by band. The result equals the untiled network's up to float
  rounding, at about 1.3x its cost.

Tensors are ``(1,C,H,W)`` float in [0,1] on the CPU at the interface; work happens on the model's
device. ``step(done, total)`` is called after every tile or band; it may raise to cancel.
"""

from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imgtrans.weights import LoadedModel

StepFn = Callable[[int, int], None]

DEFAULT_CPU_BUDGET = 1_500_000_000  # bytes of activations per tile on the CPU
MIN_CPU_BUDGET = 256_000_000  # what is left for tiles when a huge output takes the rest
MIN_TILE = 64
MAX_TILE = 2048


def _noop(done: int, total: int) -> None:
    pass


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/CPU out-of-memory errors."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def memory_budget(device: torch.device) -> int:
    """Bytes of activations one tile may use on ``device``: 60% of free CUDA memory, or on the CPU
    ``IMGTRANS_CPU_BUDGET`` (bytes) if set, else 1.5 GB capped at a quarter of available RAM."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.6)
    env = os.environ.get("IMGTRANS_CPU_BUDGET")
    if env:
        return int(env)
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        avail = 8 * DEFAULT_CPU_BUDGET
    return int(min(DEFAULT_CPU_BUDGET, avail // 4))


def auto_tile(model: LoadedModel, budget: int | None = None) -> int:
    """Tile edge (input pixels) whose activations fit ``budget``; a multiple of the model's
    size multiple, between 64 and 2048."""
    budget = memory_budget(model.device) if budget is None else budget
    edge = int(math.sqrt(max(budget, 1) / max(model.bytes_per_pixel, 1)))
    m = max(model.size_multiple, 1)
    edge = max(MIN_TILE, min(MAX_TILE, edge))
    return max(m, edge // m * m)


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int = 1) -> tuple[torch.Tensor, int, int]:
    """Pad ``(B,C,H,W)`` at the bottom/right so H and W are multiples of ``multiple`` and at least
    ``minimum``; reflect where the image is big enough, replicate otherwise.
    Returns the padded tensor and the original H, W."""
    _, _, h, w = x.shape
    th = max(minimum, -(-h // multiple) * multiple)
    tw = max(minimum, -(-w // multiple) * multiple)
    th, tw = -(-th // multiple) * multiple, -(-tw // multiple) * multiple
    ph, pw = th - h, tw - w
    if ph == 0 and pw == 0:
        return x, h, w
    mode = "reflect" if (ph < h and pw < w) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), h, w


# --------------------------------------------------------------------------------- local networks


def _edge_weights(lo: int, hi: int, core_lo: int, core_hi: int, blend: int, size: int) -> torch.Tensor:
    """1D blending weights for output positions ``[lo, hi)`` of a tile whose core is
    ``[core_lo, core_hi)``: raised-cosine 0->1 across ``[core_lo - blend, core_lo + blend)`` when a
    neighbour precedes it, 1->0 across ``[core_hi - blend, core_hi + blend)`` when one follows.
    Neighbouring tiles' weights sum to 1 wherever their ramps overlap."""
    p = torch.arange(lo, hi, dtype=torch.float32) + 0.5
    w = torch.ones(hi - lo)
    if blend > 0 and core_lo > 0:
        t = ((p - (core_lo - blend)) / (2 * blend)).clamp(0, 1)
        w = w * (0.5 - 0.5 * torch.cos(math.pi * t))
    if blend > 0 and core_hi < size:
        t = ((p - (core_hi - blend)) / (2 * blend)).clamp(0, 1)
        w = w * (0.5 + 0.5 * torch.cos(math.pi * t))
    return w


def _starts(size: int, tile: int, multiple: int) -> list[tuple[int, int]]:
    """Split ``[0, size)`` into about equal pieces of at most ``tile`` (multiples of ``multiple``)."""
    n = max(1, -(-size // tile))
    cuts = sorted({min(size, round(i * size / n / multiple) * multiple) for i in range(n + 1)} | {0, size})
    return [(a, b - a) for a, b in zip(cuts, cuts[1:]) if b > a]


def run_tiled(
    model: LoadedModel,
    x: torch.Tensor,
    *,
    tile: int,
    noise_level: float | None = None,
    context: int | None = None,
    blend: int | None = None,
    step: StepFn = _noop,
    out: torch.Tensor | None = None,
    store: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Run a local network over 2D tiles. ``x``: ``(1,C,H,W)`` float in [0,1], H and W multiples of
    the model's size multiple. Returns ``(1,C_out,H*s,W*s)`` float in [0,1] on the CPU.

    ``context`` (input pixels read around each tile and thrown away) defaults to the receptive
    radius; ``blend`` (raised-cosine overlap) defaults to 0 when that radius is known, else 16.
    Out-of-memory on a tile splits it in four and retries.

    ``out``/``store``: write each finished tile with ``store(out_region, tile)`` into a caller-owned
    output (e.g. a uint8 image being assembled), so no float copy of the whole output ever exists;
    only for exact tiles (``blend`` 0).
    """
    _, _, h, w = x.shape
    s = model.scale
    m = max(model.size_multiple, 1)
    radius = model.receptive_radius
    if context is None:
        context = radius if radius is not None else 32
    if blend is None:
        blend = 0 if radius is not None else 16
    context = -(-context // m) * m
    blend = -(-blend // m) * m
    tile = max(m, tile // m * m)
    if out is None:
        out = torch.zeros(1, model.out_channels, h * s, w * s)
    elif blend:
        raise ValueError("a caller-provided output needs exact tiles (blend 0)")
    weight = torch.zeros(1, 1, h * s, w * s) if blend else None
    regions = [(y, xx, th, tw) for y, th in _starts(h, tile, m) for xx, tw in _starts(w, tile, m)]
    total = len(regions)

    def process(y0: int, x0: int, th: int, tw: int) -> None:
        # kept area: the core grown by the blend zone where a neighbour exists
        ky0, kx0 = max(0, y0 - blend), max(0, x0 - blend)
        ky1, kx1 = min(h, y0 + th + blend), min(w, x0 + tw + blend)
        cy0, cx0 = max(0, ky0 - context), max(0, kx0 - context)
        cy1, cx1 = min(h, ky1 + context), min(w, kx1 + context)
        try:
            y = model.run(x[:, :, cy0:cy1, cx0:cx1], noise_level).cpu()
        except Exception as exc:  # noqa: BLE001 - only OOM is handled, the rest re-raised
            if not is_oom(exc) or min(th, tw) <= 2 * m:
                raise
            if model.device.type == "cuda":
                torch.cuda.empty_cache()
            hh, hw = max(m, th // 2 // m * m), max(m, tw // 2 // m * m)
            for sy, sh in ((y0, hh), (y0 + hh, th - hh)):
                for sx, sw in ((x0, hw), (x0 + hw, tw - hw)):
                    if sh > 0 and sw > 0:
                        process(sy, sx, sh, sw)
            return
        y = y[:, :, (ky0 - cy0) * s : (ky1 - cy0) * s, (kx0 - cx0) * s : (kx1 - cx0) * s]
        if weight is None:
            region = out[:, :, ky0 * s : ky1 * s, kx0 * s : kx1 * s]
            if store is not None:
                store(region, y)
            else:
                region.copy_(y)
            return
        wy = _edge_weights(ky0 * s, ky1 * s, y0 * s, (y0 + th) * s, blend * s, h * s)
        wx = _edge_weights(kx0 * s, kx1 * s, x0 * s, (x0 + tw) * s, blend * s, w * s)
        wmap = (wy[:, None] * wx[None, :])[None, None]
        out[:, :, ky0 * s : ky1 * s, kx0 * s : kx1 * s] += y * wmap
        weight[:, :, ky0 * s : ky1 * s, kx0 * s : kx1 * s] += wmap

    for i, region in enumerate(regions):
        process(*region)
        step(i + 1, total)
    if weight is not None:
        out /= weight.clamp_min(1e-8)
    return out


# ------------------------------------------------------------------- instance-norm generators


class _RunningStats:
    """Per-channel mean and variance over many pieces of a feature map (Chan et al.), float64."""

    def __init__(self) -> None:
        self.n = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def add(self, t: torch.Tensor) -> None:
        """``t``: ``(1,C,h,w)``."""
        t = t.detach().double()
        n_b = t.shape[2] * t.shape[3]
        if n_b == 0:
            return
        mean_b = t.mean(dim=(0, 2, 3))
        m2_b = ((t - mean_b.view(1, -1, 1, 1)) ** 2).sum(dim=(0, 2, 3))
        if self.mean is None:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * n_b / n)
        self.n = n

    def frozen(self) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.mean is not None and self.m2 is not None, "no data seen"
        return self.mean, self.m2 / self.n


def _normalize(x: torch.Tensor, layer: nn.InstanceNorm2d, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    mean, var = stats
    mean = mean.to(x.device, x.dtype).view(1, -1, 1, 1)
    inv = torch.rsqrt(var + layer.eps).to(x.device, x.dtype).view(1, -1, 1, 1)
    y = (x - mean) * inv
    if layer.affine:
        y = y * layer.weight.view(1, -1, 1, 1) + layer.bias.view(1, -1, 1, 1)
    return y


def _apply_layers(layers: list[nn.Module], x: torch.Tensor, frozen: dict[int, tuple]) -> torch.Tensor:
    for layer in layers:
        if isinstance(layer, nn.InstanceNorm2d):
            x = _normalize(x, layer, frozen[id(layer)])
        else:
            x = layer(x)
    return x


class _BandStreamer:
    """Runs spatially local layer lists over full-width row bands of a feature map."""

    def __init__(self, device: torch.device, dtype: torch.dtype, step: Callable[[], None]):
        self.device, self.dtype, self.step = device, dtype, step

    def run(
        self,
        src: torch.Tensor,
        layers: list[nn.Module],
        frozen: dict[int, tuple],
        *,
        factor: float,
        band: int,
        halo: int,
        stats: _RunningStats | None = None,
        dst: torch.Tensor | None = None,
    ) -> None:
        """Output rows ``[r0*factor, r1*factor)`` of every band ``[r0, r1)`` of ``src`` are exact: the
        band is read with ``halo`` extra rows on each side. ``band`` and ``halo`` must be multiples of
        the layers' total stride. Accumulates the exact rows into ``stats`` and/or writes them to ``dst``."""
        h = src.shape[2]
        for r0 in range(0, h, band):
            r1 = min(h, r0 + band)
            c0, c1 = max(0, r0 - halo), min(h, r1 + halo)
            piece = src[:, :, c0:c1].to(self.device, self.dtype)
            y = _apply_layers(layers, piece, frozen)
            o0, o1 = int((r0 - c0) * factor), int((r1 - c0) * factor)
            y = y[:, :, o0:o1]
            if stats is not None:
                stats.add(y)
            if dst is not None:
                dst[:, :, int(r0 * factor) : int(r1 * factor)] = y.to(dst.device, dst.dtype)
            self.step()

    @staticmethod
    def normalize_inplace(t: torch.Tensor, layer: nn.InstanceNorm2d, stats: tuple, band: int, relu: bool) -> None:
        for r0 in range(0, t.shape[2], band):
            piece = _normalize(t[:, :, r0 : r0 + band], layer, stats)
            t[:, :, r0 : r0 + band] = piece.clamp_min(0) if relu else piece


def run_resnet_generator_streamed(
    model: LoadedModel, x: torch.Tensor, *, band: int, step: StepFn = _noop
) -> torch.Tensor:
    """Exact band-streamed forward of a CycleGAN ``ResnetGenerator``.

    ``x``: ``(1,C,H,W)`` float in [0,1] on the CPU, H and W multiples of ``2**n_down``; ``band``: rows
    per band at full resolution (rounded to a multiple of ``2**n_down``). Returns ``(1,C_out,H,W)``
    float in [0,1] on the CPU, equal to the untiled forward up to float rounding.
    """
    gen = model.module
    from imgtrans.archs.cyclegan import ResnetGenerator

    if not isinstance(gen, ResnetGenerator):
        raise TypeError("run_resnet_generator_streamed needs a ResnetGenerator")
    d = 2**gen.n_down
    _, _, h, w = x.shape
    if h % d or w % d:
        raise ValueError(f"H and W must be multiples of {d}, got {h}x{w}")
    band = max(d, band // d * d)
    qband = band // d
    enc_halo = -(-(3 + 2 * d) // d) * d  # conv7 (3) + the stride-2 convs, rounded up to the stride
    dec_halo = 4  # quarter-res rows: two transposed convs and the last conv7 need < 3

    enc, blocks, dec = gen.encoder(), gen.blocks(), gen.decoder()
    enc_norms = [i for i, layer in enumerate(enc) if isinstance(layer, nn.InstanceNorm2d)]
    dec_norms = [i for i, layer in enumerate(dec) if isinstance(layer, nn.InstanceNorm2d)]
    n_full = -(-h // band)
    n_q = -(-(h // d) // qband)
    total = len(enc_norms) * n_full + len(blocks) * 2 * n_q + (len(dec_norms) + 1) * n_q
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        step(done, total)

    device, dtype = model.device, model.dtype
    streamer = _BandStreamer(device, dtype, tick)
    frozen: dict[int, tuple] = {}
    store = device  # feature maps live with the model
    with torch.inference_mode():
        src = model.to_model_range(x)
        quarter: torch.Tensor | None = None
        for k, pos in enumerate(enc_norms):
            stats = _RunningStats()
            last = k == len(enc_norms) - 1
            if last:
                quarter = torch.empty(1, enc[pos].num_features, h // d, w // d, device=store, dtype=dtype)
            streamer.run(src, enc[:pos], frozen, factor=1 / 2**k, band=band, halo=enc_halo, stats=stats,
                         dst=quarter if last else None)
            frozen[id(enc[pos])] = stats.frozen()
        assert quarter is not None
        streamer.normalize_inplace(quarter, enc[enc_norms[-1]], frozen[id(enc[enc_norms[-1]])], qband, relu=True)

        for block in blocks:
            layers = list(block.conv_block)
            norms = [i for i, layer in enumerate(layers) if isinstance(layer, nn.InstanceNorm2d)]
            first, second = norms[0], norms[-1]
            s1 = _RunningStats()
            mid = torch.empty_like(quarter)
            streamer.run(quarter, layers[:first], frozen, factor=1, band=qband, halo=1, stats=s1, dst=mid)
            frozen[id(layers[first])] = s1.frozen()
            streamer.normalize_inplace(mid, layers[first], frozen[id(layers[first])], qband, relu=True)
            s2 = _RunningStats()
            res = torch.empty_like(quarter)
            tail = [layer for layer in layers[first + 2 : second] if not isinstance(layer, nn.Dropout)]
            streamer.run(mid, tail, frozen, factor=1, band=qband, halo=1, stats=s2, dst=res)
            del mid
            frozen[id(layers[second])] = s2.frozen()
            for r0 in range(0, quarter.shape[2], qband):
                quarter[:, :, r0 : r0 + qband] += _normalize(res[:, :, r0 : r0 + qband], layers[second], frozen[id(layers[second])])
            del res

        for k, pos in enumerate(dec_norms):
            stats = _RunningStats()
            streamer.run(quarter, dec[:pos], frozen, factor=2 ** (k + 1), band=qband, halo=dec_halo, stats=stats)
            frozen[id(dec[pos])] = stats.frozen()
        out = torch.empty(1, model.out_channels, h, w, dtype=torch.float32)
        streamer.run(quarter, dec, frozen, factor=d, band=qband, halo=dec_halo, dst=out)
    return model.from_model_range(out)


def auto_band(model: LoadedModel, width: int, budget: int | None = None) -> int:
    """Rows per band for the streamed path so that one band's activations fit ``budget``."""
    budget = memory_budget(model.device) if budget is None else budget
    rows = budget // max(1, width * model.bytes_per_pixel)
    d = max(model.size_multiple, 1)
    return max(4 * d, min(4096, rows) // d * d)


# ------------------------------------------------------------------------------------ dispatcher


def run_model(
    model: LoadedModel,
    x: torch.Tensor,
    *,
    tile: int | None = None,
    noise_level: float | None = None,
    step: StepFn = _noop,
    budget: int | None = None,
) -> torch.Tensor:
    """Run ``model`` on ``x`` (``(1,C,H,W)`` float in [0,1], CPU, any size) the right way for its
    architecture. ``tile``: ``None`` = automatic from the memory budget, ``0`` = whole image at once,
    else the tile edge (or, for instance-norm generators, the band height) in input pixels.
    Returns ``(1,C_out,H*scale,W*scale)`` float in [0,1] on the CPU.

    ``model`` may be a :class:`~imgtrans.backends.BackendModel`: whole-image and tile calls go
    through its backend; the band-streamed instance-norm path runs the PyTorch layers."""
    return _dispatch(model, x, tile=tile, noise_level=noise_level, step=step, budget=budget)


def run_model_quantized(
    model: LoadedModel,
    x: torch.Tensor,
    bits: int,
    *,
    tile: int | None = None,
    noise_level: float | None = None,
    step: StepFn = _noop,
    budget: int | None = None,
) -> np.ndarray:
    """Like :func:`run_model` but returns the output as an ``(H*s, W*s, C_out)`` uint8 (``bits`` 8) or
    uint16 (``bits`` 16) array, quantised exactly as :func:`imgtrans.imageio.write_image` would
    (``round(clip(x, 0, 1) * max)``, NaN -> 0). Local networks with a known receptive field write
    each finished tile straight into that array, so peak memory is the integer output plus one
    tile's activations, never a float copy of the whole output (a 16384x16384 float32 RGB image
    is 3.2 GB; the uint8 one is 0.8 GB)."""
    from imgtrans.imageio import _quantize

    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    m = max(model.size_multiple, 1)
    s = model.scale
    _, _, h, w = x.shape
    direct = (tile != 0 and model.tile_safe and model.receptive_radius is not None
              and model.arch != "cyclegan_resnet" and not model.edge_context)
    if not direct:
        y = _dispatch(model, x, tile=tile, noise_level=noise_level, step=step, budget=budget)
        return np.ascontiguousarray(_quantize(y[0].numpy().transpose(1, 2, 0), bits))
    padded, h, w = pad_to_multiple(x, m, minimum=m)
    ph, pw = padded.shape[2], padded.shape[3]
    arr = np.empty((ph * s, pw * s, model.out_channels), dtype=np.uint8 if bits == 8 else np.uint16)
    view = torch.from_numpy(arr).permute(2, 0, 1)[None]  # (1,C,H,W) view; tiles land in arr

    def store(region: torch.Tensor, y: torch.Tensor) -> None:
        q = _quantize(y[0].numpy().transpose(1, 2, 0), bits)
        region.copy_(torch.from_numpy(q).permute(2, 0, 1)[None])

    if not tile and budget is None and model.device.type == "cpu":
        # the output array shares the machine with the tiles: take it out of the activation budget,
        # twice: tiles of changing edge sizes leave the heap fragmented about as much again (x4 SR of a
        # 4096x4096 image, bundled sr-x4: peak 3135 MiB with budget - 1x the output's 0.8 GB, 2363 MiB
        # with 256 MB tiles, at the same speed; benchmarks/README.md, Memory)
        budget = max(MIN_CPU_BUDGET, memory_budget(model.device) - 2 * arr.nbytes)
    edge = tile if tile else auto_tile(model, budget)
    run_tiled(model, padded, tile=edge, noise_level=noise_level, step=step, out=view, store=store, blend=0)
    if (ph, pw) != (h, w):
        arr = np.ascontiguousarray(arr[: h * s, : w * s])
    return arr


def add_edge_context(x: torch.Tensor, context: int) -> torch.Tensor:
    """``(B,C,H,W)`` -> ``(B,C,H+2c,W+2c)``: ``context`` pixels mirrored onto every side (reflect;
    replicate where the image is too small to mirror)."""
    if context <= 0:
        return x
    mode = "reflect" if min(x.shape[-2:]) > context else "replicate"
    return F.pad(x, (context, context, context, context), mode=mode)


def run_with_edge_context(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, context: int,
                          scale: int = 1) -> torch.Tensor:
    """``fn`` on ``(B,C,H,W)`` ``x`` with ``context`` pixels mirrored onto every side
    (:func:`add_edge_context`), the border's output (``context * scale`` pixels) cut away ->
    ``(B,C',H*scale,W*scale)``. ``context`` 0: ``fn(x)``. The app's path and the trainer's
    (``--edge-context``) both run through here."""
    if context <= 0:
        return fn(x)
    y = fn(add_edge_context(x, context))
    c = context * scale
    return y[:, :, c : y.shape[2] - c, c : y.shape[3] - c]


def _dispatch(model, x, *, tile, noise_level, step, budget) -> torch.Tensor:
    def run(padded: torch.Tensor) -> torch.Tensor:
        return _dispatch_padded(model, padded, tile=tile, noise_level=noise_level, step=step, budget=budget)

    return run_with_edge_context(run, x, model.edge_context, model.scale)


def _dispatch_padded(model, x, *, tile, noise_level, step, budget) -> torch.Tensor:
    m = max(model.size_multiple, 1)
    padded, h, w = pad_to_multiple(x, m, minimum=max(m, 8 * m if model.arch == "cyclegan_resnet" else m))
    s = model.scale
    band = None
    if model.arch == "cyclegan_resnet" and tile != 0:
        band = tile if tile else auto_band(model, padded.shape[3], budget)
    y = None
    if band is not None and not tile and band >= padded.shape[2]:
        # an instance-norm generator whose whole image fits the memory budget: one call, statistics
        # over the whole image as the network computes them itself (exact, ~1.3x cheaper than
        # streaming, and served by any backend); streaming with smaller bands if that runs out of memory
        try:
            y = model.run(padded, noise_level).cpu()
            step(1, 1)
        except Exception as exc:  # noqa: BLE001 - only OOM falls through
            if not is_oom(exc):
                raise
            if model.device.type == "cuda":
                torch.cuda.empty_cache()
            band = max(4 * m, padded.shape[2] // 2 // m * m)
    if y is not None:
        pass
    elif tile == 0 or (not model.tile_safe and model.arch != "cyclegan_resnet"):
        y = model.run(padded, noise_level).cpu()
        step(1, 1)
    elif model.arch == "cyclegan_resnet":
        assert band is not None
        while True:
            try:
                y = run_resnet_generator_streamed(model, padded, band=band, step=step)
                break
            except Exception as exc:  # noqa: BLE001 - only OOM is retried
                if not is_oom(exc) or band <= 4 * m:
                    raise
                if model.device.type == "cuda":
                    torch.cuda.empty_cache()
                band //= 2
    else:
        edge = tile if tile else auto_tile(model, budget)
        y = run_tiled(model, padded, tile=edge, noise_level=noise_level, step=step)
    return y[:, :, : h * s, : w * s]
