"""What runs the network inside a batch (:class:`Runner`), and the PyTorch one
(:data:`TORCH_RUNNER`): device choice, precision, backend, the per-image forward and the
provenance record. torch is imported inside the functions, never when this module is imported, so
the lite engine can pass its own :class:`Runner` without torch installed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from imgtrans import __version__
from imgtrans.engine.options import ConvertOptions
from imgtrans.engine.settings import noise_settings


def cuda_devices() -> list[str]:
    """The CUDA devices this process can use, as ``cuda:N (name, memory)``; empty without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    found = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        found.append(f"cuda:{i} ({props.name}, {props.total_memory / 2**30:.0f} GiB)")
    return found


def device_problem(choice: str) -> str | None:
    """Why ``--device choice`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``) cannot be used here, naming the
    devices there are; None when it can. Imports torch only for a CUDA choice."""
    if not choice.startswith("cuda"):
        return None
    devices = cuda_devices()
    if not devices:
        return f"--device {choice}: no CUDA GPU is available on this machine (use --device cpu or auto)"
    index = choice.partition(":")[2]
    if index and int(index) >= len(devices):
        return (f"--device {choice}: there is no such device; this machine has {len(devices)} CUDA device(s): "
                f"{', '.join(devices)}")
    return None


def pick_device(choice: str):
    """``auto`` -> CUDA when available, else CPU; ``cuda``/``cuda:N`` without such a GPU is an error
    (:func:`device_problem` says which devices there are)."""
    import torch

    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    problem = device_problem(choice)
    if problem:
        raise RuntimeError(problem)
    return torch.device(choice)


def prepare_model(model, options: ConvertOptions):
    """Move a :class:`~imgtrans.weights.LoadedModel` to the chosen device and precision. A numbered
    GPU (``cuda:1``) also becomes the process's current device, so the caches and streams that
    torch keeps per current device (and ``empty_cache`` between tiles) are that GPU's."""
    import torch

    device = pick_device(options.device)
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    half = options.half if options.half is not None else (device.type == "cuda" and model.half_ok)
    model.to(device, torch.float16 if (half and device.type == "cuda") else torch.float32)
    return model


def prepare_runner(model, options: ConvertOptions):
    """:func:`prepare_model`, then wrap the model in the chosen backend
    (:class:`~imgtrans.backends.BackendModel`); raises :class:`~imgtrans.backends.BackendError`."""
    from imgtrans.backends import prepare_backend

    model = model.with_strength(options.style_strength) if model.task == "style" else model
    prepare_model(model, options)
    return prepare_backend(model, options.backend, threads=options.threads)


def _provenance(model, model_ref: str, options: ConvertOptions, src: Path,
                source: Path | None = None) -> dict[str, str]:
    """The record written into each output. ``source``: the input's path relative to the input it
    was found under (``src``'s file name when not given)."""
    settings = {"tile": options.tile if options.tile is not None else "auto", "device": options.device,
                "backend": getattr(model, "name", options.backend)}
    settings.update(noise_settings(model, options))
    if model.task == "style":
        settings["style_size"] = options.style_size or "full"
        if options.style_strength != 1.0:  # full strength is what a style model does: not recorded
            settings["style_strength"] = options.style_strength
    return {
        "software": f"imgtrans {__version__}",
        "model": model.metadata.get("id") or model_ref,
        "model_name": model.metadata.get("name", ""),
        "arch": model.arch,
        "task": model.task,
        "scale": str(model.scale),
        "settings": json.dumps(settings, sort_keys=True),
        "source": source.as_posix() if source is not None else src.name,
    }


def process_image(model, img, options: ConvertOptions, step=None, out_format: str | None = None):
    """Run ``model`` on a decoded :class:`~imgtrans.imageio.Image`; returns the output Image.

    The per-image steps are :func:`imgtrans.channels.process_image`'s, which the lite engine shares:
    gray inputs go through colour models as RGB and come back gray; a one-channel model runs on
    each colour channel; alpha is resized with the image for SR and passed through otherwise; style
    models run at ``options.style_size`` (long side) and come back at the input's size.

    With ``out_format`` (the output file's suffix) the output of a colour model on a colour image
    is assembled directly as the integers the encoder will store (uint8, or uint16 for 16-bit
    PNG/TIFF), tile by tile: same bytes in the file, a quarter of the memory of a float output."""
    import numpy as np
    import torch

    from imgtrans import channels
    from imgtrans.tiling import run_model, run_model_quantized

    def progress(report):
        return lambda done, total: report(done / max(total, 1))

    def run_integer(pixels, bits, report, level):
        x = torch.from_numpy(pixels).permute(2, 0, 1)[None]  # HWC float32 seen as (1,C,H,W), no copy
        return run_model_quantized(model, x, bits, tile=options.tile, noise_level=level, step=progress(report))

    def run_float(plane, report, level):
        x = torch.from_numpy(np.ascontiguousarray(plane.transpose(2, 0, 1)))[None]
        y = run_model(model, x, tile=options.tile, noise_level=level, step=progress(report))
        return y[0].numpy().transpose(1, 2, 0)

    return channels.process_image(model, img, noise_level=options.noise_level, style_size=options.style_size,
                                  out_format=out_format, run_integer=run_integer, run_float=run_float, step=step,
                                  style_strength=options.style_strength if model.task == "style" else 1.0)


@dataclass(frozen=True)
class Runner:
    """What runs the network inside a batch; the batch itself (planning, resume rules, prefetch,
    atomic writes, the disk-full stop, events) is the same for every engine.

    ``prepare(model, options)`` returns the model as it will run (with ``describe()`` and ``why``);
    ``process(model, img, options, step, out_format)`` converts one decoded image
    (:func:`imgtrans.channels.process_image` does the per-image steps); ``provenance(model,
    model_ref, options, src, rel)`` is the record written into each output."""

    prepare: Callable
    process: Callable
    provenance: Callable


TORCH_RUNNER = Runner(prepare=prepare_runner, process=process_image, provenance=_provenance)
