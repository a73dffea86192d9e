"""Explicit, ordered registry of generator families (no folder scanning).

Detection from a bare state dict tries the families in this order. DnCNN and FFDNet share their
hyper-parameters but not their key layout (``layers.N`` / ``body.N``), so neither takes the other's
weights.
"""

from __future__ import annotations

from imgtrans.archs.base import TASKS, ArchSpec
from imgtrans.archs.cyclegan import CYCLEGAN_RESNET, NLayerDiscriminator, ResnetGenerator
from imgtrans.archs.dncnn import DNCNN, DnCNN
from imgtrans.archs.ffdnet import FFDNET, FFDNet
from imgtrans.archs.srresnet import SRRESNET, SRGANDiscriminator, SRResNet
from imgtrans.archs.srvgg import SRVGG, SRVGG_SPEC

ARCHS: tuple[ArchSpec, ...] = (CYCLEGAN_RESNET, SRRESNET, DNCNN, FFDNET, SRVGG_SPEC)


def get_arch(name: str) -> ArchSpec:
    """The registered family called ``name``; ``KeyError`` listing the known ones otherwise."""
    for spec in ARCHS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown architecture {name!r} (known: {', '.join(s.name for s in ARCHS)})")


__all__ = [
    "ARCHS",
    "SRVGG",
    "TASKS",
    "ArchSpec",
    "DnCNN",
    "FFDNet",
    "NLayerDiscriminator",
    "ResnetGenerator",
    "SRGANDiscriminator",
    "SRResNet",
    "get_arch",
]
