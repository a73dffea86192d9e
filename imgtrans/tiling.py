"""Tiled inference: any image size, bounded memory, no seams.

How a model's image is split comes from its architecture's descriptor (``model.execution``,
:mod:`imgtrans.archs.base`); this module runs the split, it never looks at which family a model is:

* ``tiles`` (local networks: SRResNet, DnCNN, most third-party SR models) run on 2D tiles. Each
  tile is read with a context margin of at least the network's receptive radius and only its core
  is kept, so tiles are exact; when the radius is unknown (third-party models) neighbouring tiles
  also overlap by a blend zone with raised-cosine weights, which hides what little differs.
* ``stream`` (networks with image-wide statistics: the instance-norm ResNet generator) run in one
  call when the image fits the memory budget, else through the family's own exact band-streamed
  forward (``spec.stream``), which equals the one-call result up to float rounding.
* ``whole`` runs in one call; ``whole_if_fits`` in one call when the budget allows, else in blended
  tiles, with a warning.
* a network with a fixed input size (``model.input_size``, e.g. an ONNX graph exported for 256x256)
  always runs in tiles, each padded to exactly that size.

Tile cut points, padding to a size multiple and the mirrored edge border come from
:mod:`imgtrans.tilegrid`, which the torch-free lite engine uses too.

Tensors are ``(1,C,H,W)`` float in [0,1] on the CPU at the interface; work happens on the model's
device. ``step(done, total)`` is called after every tile or band; it may raise to cancel.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from imgtrans import tilegrid
from imgtrans.weights import LoadedModel

StepFn = Callable[[int, int], None]
log = logging.getLogger(__name__)

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


def available_memory(meminfo: str = "/proc/meminfo") -> int | None:
    """Bytes of RAM that can be used without swapping: ``MemAvailable`` from ``meminfo`` (free pages
    plus reclaimable page cache), else free pages from ``sysconf``, else ``None``."""
    try:
        with open(meminfo, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget(device: torch.device) -> int:
    """Bytes of activations one tile may use on ``device``: 60% of free CUDA memory, or on the CPU
    ``IMGTRANS_CPU_BUDGET`` (bytes) if set, else 1.5 GB capped at a quarter of available RAM
    (:func:`available_memory`: page cache the kernel would give back counts as available)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.6)
    env = os.environ.get("IMGTRANS_CPU_BUDGET")
    if env:
        return int(env)
    avail = available_memory()
    if avail is None:
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
    ``minimum`` (:func:`imgtrans.tilegrid.padded_size`; reflect where the image is big enough,
    replicate otherwise). Returns the padded tensor and the original H, W."""
    _, _, h, w = x.shape
    th, tw = tilegrid.padded_size(h, w, multiple, minimum)
    ph, pw = th - h, tw - w
    if ph == 0 and pw == 0:
        return x, h, w
    return F.pad(x, (0, pw, 0, ph), mode=tilegrid.pad_mode(h, w, ph, pw)), h, w


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


def _pad_to(x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """``(B,C,h,w)`` padded at the bottom/right to exactly ``size`` = ``(H, W)`` (``None``: unchanged),
    reflecting where the tile is big enough, replicating otherwise; the caller crops the output."""
    if size is None:
        return x
    ph, pw = size[0] - x.shape[2], size[1] - x.shape[3]
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode=tilegrid.pad_mode(x.shape[2], x.shape[3], ph, pw))


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
    Out-of-memory on a tile splits it in four and retries. A network with a fixed input size
    (``model.input_size``) gets tiles that fit it with their context and blend zone (both default to
    at most an eighth of its shorter side), each padded to exactly that size.

    ``out``/``store``: write each finished tile with ``store(out_region, tile)`` into a caller-owned
    output (e.g. a uint8 image being assembled), so no float copy of the whole output ever exists;
    only for exact tiles (``blend`` 0).

    One function: the resolved defaults, the tile grid and the OOM-retrying ``process`` closure share the same
    locals (sizes, output, weight map); split, they would pass them all around and read worse.
    """
    _, _, h, w = x.shape
    s = model.scale
    m = max(model.size_multiple, 1)
    radius = model.receptive_radius
    fixed = model.input_size
    short = min(fixed) if fixed else None
    if context is None:
        context = radius if radius is not None else 32 if not fixed else min(32, short // 8)
    if blend is None:
        blend = 0 if radius is not None else 16 if not fixed else min(16, short // 8)
    context = -(-context // m) * m
    blend = -(-blend // m) * m
    if fixed:  # every window read (tile + blend + context on both sides) must fit the network's input
        tile = min(tile, short - 2 * (context + blend))
        if tile < m:
            raise ValueError(f"a {fixed[1]}x{fixed[0]} input leaves no room for tiles with {context} px context")
    tile = max(m, tile // m * m)
    if out is None:
        out = torch.zeros(1, model.out_channels, h * s, w * s)
    elif blend:
        raise ValueError("a caller-provided output needs exact tiles (blend 0)")
    weight = torch.zeros(1, 1, h * s, w * s) if blend else None
    regions = tilegrid.regions(h, w, tile, m)
    total = len(regions)

    def process(y0: int, x0: int, th: int, tw: int) -> None:
        (ky0, kx0, ky1, kx1), (cy0, cx0, cy1, cx1) = tilegrid.tile_window(y0, x0, th, tw, h, w, context, blend)
        try:
            y = model.run(_pad_to(x[:, :, cy0:cy1, cx0:cx1], fixed), noise_level).cpu()
        except Exception as exc:  # only OOM is handled, the rest re-raised
            if not is_oom(exc) or min(th, tw) <= 2 * m:
                raise
            _free_cuda(model)
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


# ------------------------------------------------------------------------------ streamed networks


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
    from imgtrans.imageio.encode import quantize

    if bits not in (8, 16):
        raise ValueError("bits must be 8 or 16")
    m = max(model.size_multiple, 1)
    s = model.scale
    _, _, h, w = x.shape
    direct = tile != 0 and model.tile_safe and model.receptive_radius is not None and not model.edge_context
    if not direct:
        y = _dispatch(model, x, tile=tile, noise_level=noise_level, step=step, budget=budget)
        return np.ascontiguousarray(quantize(y[0].numpy().transpose(1, 2, 0), bits))
    padded, h, w = pad_to_multiple(x, m, minimum=m)
    ph, pw = padded.shape[2], padded.shape[3]
    arr = np.empty((ph * s, pw * s, model.out_channels), dtype=np.uint8 if bits == 8 else np.uint16)
    view = torch.from_numpy(arr).permute(2, 0, 1)[None]  # (1,C,H,W) view; tiles land in arr

    def store(region: torch.Tensor, y: torch.Tensor) -> None:
        q = quantize(y[0].numpy().transpose(1, 2, 0), bits)
        region.copy_(torch.from_numpy(q).permute(2, 0, 1)[None])

    if not tile and budget is None and model.device.type == "cpu":
        # the output array shares the machine with the tiles: take it out of the activation budget
        # twice, because tiles of changing edge sizes leave the heap fragmented about as much again;
        # smaller tiles cost no speed (benchmarks/README.md, "Memory")
        budget = max(MIN_CPU_BUDGET, memory_budget(model.device) - 2 * arr.nbytes)
    edge = tile if tile else auto_tile(model, budget)
    run_tiled(model, padded, tile=edge, noise_level=noise_level, step=step, out=view, store=store, blend=0)
    if (ph, pw) != (h, w):
        arr = np.ascontiguousarray(arr[: h * s, : w * s])
    return arr


def add_edge_context(x: torch.Tensor, context: int) -> torch.Tensor:
    """``(B,C,H,W)`` -> ``(B,C,H+2c,W+2c)``: ``context`` pixels mirrored onto every side
    (:func:`imgtrans.tilegrid.border_mode`)."""
    if context <= 0:
        return x
    mode = tilegrid.border_mode(x.shape[-2], x.shape[-1], context)
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


def _whole(model, x, noise_level, step) -> torch.Tensor:
    y = model.run(x, noise_level).cpu()
    step(1, 1)
    return y


def _free_cuda(model) -> None:
    if model.device.type == "cuda":
        torch.cuda.empty_cache()


def _dispatch_padded(model, x, *, tile, noise_level, step, budget) -> torch.Tensor:
    m = max(model.size_multiple, 1)
    padded, h, w = pad_to_multiple(x, m, minimum=max(m, model.min_size))
    s = model.scale
    if model.input_size:  # a fixed-size network only ever sees its own size: tiles
        edge = tile if tile else auto_tile(model, budget)
        y = run_tiled(model, padded, tile=edge, noise_level=noise_level, step=step)
    elif tile == 0 or model.execution == "whole":
        y = _whole(model, padded, noise_level, step)
    elif model.execution == "stream":
        y = _run_streamed(model, padded, tile=tile, noise_level=noise_level, step=step, budget=budget)
    elif model.execution == "whole_if_fits" and not tile and _fits(model, padded, budget):
        y = _whole(model, padded, noise_level, step)
    else:
        if model.execution == "whole_if_fits":
            log.warning("%s: tiling is discouraged for this model, but the %dx%d image does not fit the memory "
                        "budget in one piece; running it in blended tiles (--tile 0 forces one piece)",
                        model.arch, padded.shape[3], padded.shape[2])
        edge = tile if tile else auto_tile(model, budget)
        y = run_tiled(model, padded, tile=edge, noise_level=noise_level, step=step)
    return y[:, :, : h * s, : w * s]


def _fits(model, x: torch.Tensor, budget: int | None) -> bool:
    budget = memory_budget(model.device) if budget is None else budget
    return x.shape[2] * x.shape[3] * model.bytes_per_pixel <= budget


def _run_streamed(model, x, *, tile, noise_level, step, budget) -> torch.Tensor:
    """A network with image-wide statistics: one call when the whole image fits one band of the
    memory budget (statistics over the whole image as the network computes them itself, cheaper
    than streaming, and served by any backend), else the architecture's exact band-streamed
    forward with bands of ``tile`` rows (default: from the budget), halved on out-of-memory."""
    m = max(model.size_multiple, 1)
    band = tile if tile else auto_band(model, x.shape[3], budget)
    if not tile and band >= x.shape[2]:
        try:
            return _whole(model, x, noise_level, step)
        except Exception as exc:  # only OOM falls through to streaming
            if not is_oom(exc):
                raise
            _free_cuda(model)
            band = max(4 * m, x.shape[2] // 2 // m * m)
    stream = model.spec.stream
    while True:
        try:
            with torch.inference_mode():
                src = model.to_model_range(x.to(torch.float32))
                y = stream(model.module, src, band, model.device, model.dtype, step)
            return model.from_model_range(y)
        except Exception as exc:  # only OOM is retried
            if not is_oom(exc) or band <= 4 * m:
                raise
            _free_cuda(model)
            band //= 2
