"""What the user chose for a batch (:class:`ConvertOptions`): read by planning (output names), by
the resume checks (which settings an existing output must have been made with) and by the runners."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imgtrans.channels import DEFAULT_STYLE_SIZE
from imgtrans.imageio import DEFAULT_MAX_PIXELS


@dataclass
class ConvertOptions:
    """What the user chose. ``tile``: ``None`` automatic, ``0`` whole image, else tile edge in pixels."""

    output_dir: Path
    fmt: str = "same"  # same | png | jpg | webp | tiff
    jpeg_quality: int = 95
    overwrite: bool = False  # False: skip inputs whose output exists
    suffix: str = ""
    recursive: bool = False
    keep_tree: bool = True
    tile: int | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    half: bool | None = None  # None: fp16 on CUDA when the model allows it
    noise_level: float | None = None  # denoisers with a noise-level input: sigma on 0-255; None: auto (per image)
    # set on the per-image copy whose noise_level was measured (recorded as auto); that copy's
    # noise_level is a tuple, one per channel, for a one-channel model on a colour image
    noise_auto: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    io_threads: int = 2
    backend: str = "auto"  # auto | eager | compile | onnx (see imgtrans.backends)
    threads: int | None = None  # compute threads; None: the CPUs this process may use
    style_size: int = DEFAULT_STYLE_SIZE  # style models: long side they run at; 0 = full resolution
    style_strength: float = 1.0  # style models with the setting: 0 = the input unchanged, 1 = the full style
