"""The descriptor every generator family comes with.

An :class:`ArchSpec` says what a family of networks does and how the engine may run it: it builds the
``nn.Module`` from hyper-parameters, recognises the family (and its hyper-parameters) from a bare
state dict so weights without metadata still load, and owns everything that differs between families:
the forward call (:attr:`ArchSpec.forward`), how the engine splits the work (:attr:`ArchSpec.execution`,
with the family's band-streamed forward in :attr:`ArchSpec.stream`), edge handling, size requirements,
backend preferences and whether the network exports to ONNX. The engine, the backends, the ONNX export
and the lite engine read these fields; none of them looks at a family's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

StateDict = Mapping[str, torch.Tensor]

TASKS = ("style", "sr", "denoise")

# how the engine splits an image that does not fit one call
EXECUTIONS = (
    "tiles",  # local network: independent 2D tiles read with a context margin are exact
    "stream",  # image-wide statistics: the family's exact band-streamed forward (ArchSpec.stream)
    "whole",  # the network must see the whole image (it tiles internally, or nothing else is exact)
    "whole_if_fits",  # whole image when it fits the memory budget, else blended tiles (tiling discouraged)
)


@dataclass(frozen=True)
class BackendChoice:
    """What the ``auto`` backend runs for a family on one device kind, and why."""

    backend: str  # "eager" | "onnx"
    channels_last: bool
    why: str


def plain_forward(module: nn.Module, x: torch.Tensor, sigma: torch.Tensor | float | None) -> torch.Tensor:
    """``module(x)``: the forward of a network that takes nothing but the image."""
    return module(x)


# stream(module, x, band, device, dtype, tick) -> output; x and the output in the network's value range
StreamFn = Callable[[nn.Module, torch.Tensor, int, torch.device, torch.dtype, Callable[[int, int], None]], torch.Tensor]


@dataclass(frozen=True)
class ArchSpec:
    """Descriptor of one architecture family.

    Attributes:
        name: stable identifier written into weight metadata (``"cyclegan_resnet"``).
        task: ``"style"``, ``"sr"``, ``"denoise"`` (generators) or ``"discriminator"``.
        build: hyper-parameters -> module.
        detect: state dict -> hyper-parameters, or ``None`` when the dict is not of this family.
            Receives a dict whose keys are already normalised by ``normalize_keys``.
        normalize_keys: maps third-party key layouts onto ours and drops keys we ignore.
        default_hparams: what ``build`` uses for missing keys.
        forward: ``(module, x, sigma)`` -> output, ``x`` in ``value_range``; ``sigma`` (noise level on
            the [0,1] scale, float or ``(1,)`` tensor) is passed where ``takes_noise_level``.
        takes_noise_level: hyper-parameters -> whether ``forward`` uses ``sigma``.
        scale: hyper-parameters -> output/input size ratio.
        size_multiple: input height and width must be a multiple of this (pad, run, crop).
        min_size: hyper-parameters -> smallest input height/width the network runs on (a multiple
            of ``size_multiple``; smaller images are padded).
        receptive_radius: hyper-parameters -> how many input pixels around an output pixel affect it
            (``None``: unknown). Tiles padded by at least this much are exact.
        execution: how the engine splits a large image, one of :data:`EXECUTIONS`.
        stream: the exact band-streamed forward for ``execution == "stream"``.
        half_ok: the network may run in float16 on CUDA without visible loss.
        value_range: the range the network reads and writes (``(-1, 1)`` for tanh generators).
        bytes_per_pixel: hyper-parameters -> rough peak activation bytes per *input* pixel in
            float32, used to size tiles and bands from a memory budget.
        edge_context: hyper-parameters -> the mirrored border (input pixels per side, a multiple of
            ``size_multiple``) that weights *our trainer* exports run with, written into their
            metadata; third-party weights never get one. 0 for none.
        backends: device kind (``"cpu"``, ``"cuda"``) -> what ``auto`` runs (measured choices).
        channels_last: device kind -> whether eager runs in channels_last (also when ``auto``'s
            first choice is unavailable or another backend is asked for).
        input_size: hyper-parameters -> the exact ``(height, width)`` the network runs on, or
            ``None`` (any size): the engine tiles such a network and pads every tile to that size.
        native_backend: the backend the forward already is (``"onnx"`` for an ONNX graph run by
            onnxruntime), or ``None``; every backend request then runs the forward as it is.
        onnx_export: the family's graph exports to ONNX and runs in onnxruntime (tested); others are
            tried only when asked for.
        foreign: a third-party architecture that is not in our registry (spandrel): it cannot be
            rebuilt from hyper-parameters, so its weights are stored as a bare state dict and
            recognised again on load.
        strength_ok: hyper-parameters -> whether ``set_strength`` applies to this network.
        set_strength: ``(module, s)`` scales, in place, the change the network makes to its input:
            ``s = 0`` gives the input back, ``1`` the network as trained, values between a
            proportionally weaker change (the style-strength setting). ``None``: no such setting.
    """

    name: str
    task: str
    build: Callable[[dict[str, Any]], nn.Module]
    detect: Callable[[StateDict], dict[str, Any] | None]
    default_hparams: Mapping[str, Any]
    forward: Callable[[nn.Module, torch.Tensor, Any], torch.Tensor] = plain_forward
    takes_noise_level: Callable[[Mapping[str, Any]], bool] = lambda hp: False
    scale: Callable[[Mapping[str, Any]], int] = lambda hp: 1
    size_multiple: Callable[[Mapping[str, Any]], int] = lambda hp: 1
    min_size: Callable[[Mapping[str, Any]], int] | None = None
    receptive_radius: Callable[[Mapping[str, Any]], int | None] = lambda hp: 16
    execution: str = "tiles"
    stream: StreamFn | None = None
    half_ok: bool = True
    value_range: tuple[float, float] = (0.0, 1.0)
    bytes_per_pixel: Callable[[Mapping[str, Any]], int] = lambda hp: 2048
    normalize_keys: Callable[[StateDict], dict[str, torch.Tensor]] = lambda sd: dict(sd)
    edge_context: Callable[[Mapping[str, Any]], int] = lambda hp: 0
    backends: Mapping[str, BackendChoice] = field(default_factory=dict)
    channels_last: Mapping[str, bool] = field(default_factory=dict)
    input_size: Callable[[Mapping[str, Any]], tuple[int, int] | None] = lambda hp: None
    native_backend: str | None = None
    onnx_export: bool = False
    foreign: bool = False
    strength_ok: Callable[[Mapping[str, Any]], bool] = lambda hp: False
    set_strength: Callable[[nn.Module, float], None] | None = None

    def __post_init__(self) -> None:
        if self.execution not in EXECUTIONS:
            raise ValueError(f"{self.name}: execution must be one of {EXECUTIONS}, not {self.execution!r}")
        if self.execution == "stream" and self.stream is None:
            raise ValueError(f"{self.name}: execution 'stream' needs a stream function")
        if self.input_size(self.default_hparams) is not None and self.execution != "tiles":
            raise ValueError(f"{self.name}: a network with a fixed input size runs in tiles")

    def hparams(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults completed with ``given``."""
        hp = dict(self.default_hparams)
        if given:
            hp.update(given)
        return hp

    def smallest_input(self, hp: Mapping[str, Any]) -> int:
        """``min_size`` (default: ``size_multiple``), rounded up to ``size_multiple``."""
        m = max(1, int(self.size_multiple(hp)))
        low = int(self.min_size(hp)) if self.min_size is not None else m
        return max(m, -(-low // m) * m)

    @property
    def tile_safe(self) -> bool:
        """Independent tiles give the same result (a local network)."""
        return self.execution == "tiles"


def count_prefixed(sd: StateDict, prefix: str, suffix: str) -> set[int]:
    """Indices N of keys ``{prefix}N{suffix}`` present in ``sd``."""
    found = set()
    for key in sd:
        if key.startswith(prefix) and key.endswith(suffix):
            middle = key[len(prefix) : len(key) - len(suffix)]
            if middle.isdigit():
                found.add(int(middle))
    return found
