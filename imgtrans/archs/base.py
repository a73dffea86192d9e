"""The descriptor every generator family comes with.

An :class:`ArchSpec` says what a family of networks does and how the engine may run it; it builds the
``nn.Module`` from hyper-parameters and recognises the family (and its hyper-parameters) from a bare
state dict, so weights without metadata still load.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

StateDict = Mapping[str, torch.Tensor]

TASKS = ("style", "sr", "denoise")


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
        scale: hyper-parameters -> output/input size ratio.
        size_multiple: input height and width must be a multiple of this (pad, run, crop).
        receptive_radius: hyper-parameters -> how many input pixels around an output pixel affect it.
            Tiles padded by at least this much are exact.
        tile_safe: ``True`` when the output at a pixel depends only on a bounded neighbourhood, so
            independent tiles give the same result. ``False`` for networks with image-wide statistics
            (instance norm): those need :mod:`imgtrans.tiling`'s exact streaming path.
        half_ok: the network may run in float16 on CUDA without visible loss.
        value_range: the range the network reads and writes (``(-1, 1)`` for tanh generators).
        bytes_per_pixel: hyper-parameters -> rough peak activation bytes per *input* pixel in
            float32, used to size tiles from a memory budget.
        edge_context: hyper-parameters -> input pixels mirrored onto every side before the network
            runs and cut from its output after (a multiple of ``size_multiple``), for families that
            draw artifacts along image borders; 0 for none.
    """

    name: str
    task: str
    build: Callable[[dict[str, Any]], nn.Module]
    detect: Callable[[StateDict], dict[str, Any] | None]
    default_hparams: Mapping[str, Any]
    scale: Callable[[Mapping[str, Any]], int] = lambda hp: 1
    size_multiple: Callable[[Mapping[str, Any]], int] = lambda hp: 1
    receptive_radius: Callable[[Mapping[str, Any]], int] = lambda hp: 16
    tile_safe: bool = True
    half_ok: bool = True
    value_range: tuple[float, float] = (0.0, 1.0)
    bytes_per_pixel: Callable[[Mapping[str, Any]], int] = lambda hp: 2048
    normalize_keys: Callable[[StateDict], dict[str, torch.Tensor]] = lambda sd: dict(sd)
    edge_context: Callable[[Mapping[str, Any]], int] = lambda hp: 0

    def hparams(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Defaults completed with ``given``."""
        hp = dict(self.default_hparams)
        if given:
            hp.update(given)
        return hp


def count_prefixed(sd: StateDict, prefix: str, suffix: str) -> set[int]:
    """Indices N of keys ``{prefix}N{suffix}`` present in ``sd``."""
    found = set()
    for key in sd:
        if key.startswith(prefix) and key.endswith(suffix):
            middle = key[len(prefix) : len(key) - len(suffix)]
            if middle.isdigit():
                found.add(int(middle))
    return found
