"""Third-party architectures, through spandrel (optional: ``pip install 'imgtrans[foreign]'``).

A state dict that none of our families recognises goes to spandrel's ``ModelLoader``. Its
descriptor becomes an :class:`~imgtrans.archs.base.ArchSpec` for that one model, so the engine runs
it like ours:

* the forward is the descriptor's own call (its padding, its extra inputs, its output unpacking:
  FBCNN returns a tuple), except for networks whose first layer takes one channel more than the
  image: those (FDnCNN, DRUNet) read a noise-level map as that channel, which spandrel fixes at
  15/255; here the map carries the user's noise level, so they get the strength option the
  bundled denoisers have;
* size requirements (minimum, multiple of) and half-precision support come from the descriptor;
* spandrel's tiling advice decides the execution: ``SUPPORTED`` -> blended tiles (the receptive
  field is unknown), ``DISCOURAGED`` -> the whole image when it fits the memory budget, blended
  tiles (with a warning) when it does not, ``INTERNAL`` -> always the whole image.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from imgtrans.archs.base import ArchSpec, StateDict

PREFIX = "spandrel:"


def _first_conv_inputs(module: nn.Module) -> int | None:
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            return int(layer.in_channels)
    return None


def _noise_map_forward(module: nn.Module, x: torch.Tensor, sigma: Any) -> torch.Tensor:
    """``module(cat(x, sigma map))``: ``x`` ``(B,C,H,W)`` in [0,1], ``sigma`` on the [0,1] scale."""
    level = torch.as_tensor(15 / 255 if sigma is None else sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    return module(torch.cat([x, level.expand(x.shape[0], 1, x.shape[2], x.shape[3])], dim=1))


def spandrel_available() -> bool:
    try:
        import spandrel  # noqa: F401
    except ImportError:
        return False
    return True


def load_foreign(sd: StateDict) -> tuple[ArchSpec, nn.Module, dict[str, Any]] | None:
    """``(spec, module, facts)`` for a state dict spandrel recognises as an image-to-image model,
    ``None`` when spandrel is missing or does not recognise it. Raises ``ValueError`` for a model
    spandrel knows that is not image-to-image (inpainting, face restoration with extra inputs...)."""
    try:
        from spandrel import ImageModelDescriptor, ModelLoader, ModelTiling
    except ImportError:
        return None
    try:
        desc = ModelLoader().load_from_state_dict(dict(sd))
    except Exception:  # noqa: BLE001 - spandrel raises UnsupportedModelError and assorted errors on odd dicts
        return None
    if not isinstance(desc, ImageModelDescriptor):
        raise ValueError(f"{desc.architecture.name} is not an image-to-image model")
    module = desc.model.eval()
    in_ch, out_ch = int(desc.input_channels), int(desc.output_channels)
    noise_map = _first_conv_inputs(module) == in_ch + 1

    def call(mod: nn.Module, x: torch.Tensor, sigma: Any) -> torch.Tensor:
        return desc(x)

    execution = {ModelTiling.SUPPORTED: "tiles", ModelTiling.DISCOURAGED: "whole_if_fits"}.get(desc.tiling, "whole")
    req = desc.size_requirements
    spec = ArchSpec(
        name=f"{PREFIX}{desc.architecture.name}",
        task="sr" if desc.scale > 1 else "denoise",
        build=_not_buildable,
        detect=lambda sd: None,
        default_hparams={},
        forward=_noise_map_forward if noise_map else call,
        takes_noise_level=lambda hp: noise_map,
        scale=lambda hp: int(desc.scale),
        size_multiple=lambda hp: int(req.multiple_of),
        min_size=lambda hp: int(req.minimum),
        receptive_radius=lambda hp: None,
        execution=execution,
        half_ok=bool(desc.supports_half),
        foreign=True,
    )
    facts = {"in_ch": in_ch, "out_ch": out_ch, "tags": list(desc.tags), "tiling": desc.tiling.name}
    return spec, module, facts


def _not_buildable(hp: dict[str, Any]) -> nn.Module:
    raise TypeError("a spandrel architecture is built from its state dict, not from hyper-parameters")
