"""Training options, presets, and how a run's options are resolved.

Precedence, lowest first: :class:`TrainConfig` defaults < the options stored with a run being resumed
< ``--preset`` < a ``--config`` file (TOML or JSON; a run's own ``config.json`` can start a new run) <
options given on the command line. So ``imgtrans-train --name X --resume`` continues with
exactly the options X was started with, and an explicit option that changes the architecture is
caught by the checkpoint check (:mod:`imgtrans.training.checkpoint`).

The seconds per iteration that ``--help`` shows for each preset come from ``benchmarks/train_speed.py`` on
the 2-core CPU these presets are made for (``benchmarks/README.md``, "Training speed"); ``paper`` belongs on a GPU.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TASKS = ("cyclegan", "sr", "denoise", "style")
GAN_MODES = ("lsgan", "vanilla", "wgangp")

# Per task: preset -> option overrides. "seconds_per_it" is documentation (2-core CPU), not an option.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "cyclegan": {
        # Zhu et al. 2017 / the reference implementation: ResNet-9 generator, 256 px crops of 286 px
        # resized images, batch 1, 100 epochs at lr 2e-4 then 100 epochs of linear decay.
        "paper": dict(ngf=64, n_blocks=9, ndf=64, size=256, batch_size=1, epochs=200),
        # The reference's 128 px configuration (6 residual blocks), at half width.
        "cpu-small": dict(ngf=32, n_blocks=6, ndf=32, size=128, batch_size=1, epochs=100),
        "cpu-tiny": dict(ngf=16, n_blocks=6, ndf=16, size=64, batch_size=1, epochs=100),
    },
    "sr": {
        # SRResNet (Ledig et al. 2017): 16 blocks, 64 features, 96 px HR crops, batch 16.
        "paper": dict(nf=64, n_blocks=16, size=96, batch_size=16, epochs=100),
        "cpu-small": dict(nf=32, n_blocks=8, size=64, batch_size=8, epochs=100),
        "cpu-tiny": dict(nf=16, n_blocks=4, size=48, batch_size=8, epochs=100),
    },
    "denoise": {
        # DnCNN-B (Zhang et al. 2017): 20 layers for blind denoising, 64 features, batch norm, 50 px
        # patches, batch 128.
        "paper": dict(nf=64, depth=20, size=50, batch_size=128, epochs=50),
        "cpu-small": dict(nf=32, depth=12, size=48, batch_size=16, epochs=100),
        "cpu-tiny": dict(nf=16, depth=8, size=40, batch_size=16, epochs=100),
    },
    "style": {
        # Johnson et al. 2016: 32/64/128 channels, 5 residual blocks, 256 px crops, batch 4, 40000
        # iterations (2 epochs of COCO) at lr 1e-3 (2e-4 here); instance norm (Ulyanov et al.).
        "paper": dict(ngf=32, n_blocks=5, size=256, batch_size=4, steps=40000),
        # The same generator on 144 px crops, batch 2: about 3 hours on one thread of the 2-core CPU.
        "cpu-small": dict(ngf=32, n_blocks=5, size=144, batch_size=2, steps=7000),
        "cpu-tiny": dict(ngf=16, n_blocks=3, size=96, batch_size=1, steps=2000),
    },
}

# Shown in ``--help``: the figures, how and when they were measured, are in benchmarks/README.md ("Training
# speed"); the CycleGAN and denoise ``paper`` and the style figures come from a loaded machine (upper bounds).
SECONDS_PER_IT: dict[str, dict[str, str]] = {
    # CycleGAN CPU figures: from the transposed-conv generator up to the default resize + conv one
    "cyclegan": {"paper": "~19-26 s", "cpu-small": "~0.9-1.2 s", "cpu-tiny": "~0.15-0.23 s"},
    "sr": {"paper": "~1.0 s", "cpu-small": "~0.054 s", "cpu-tiny": "~0.017 s"},
    "denoise": {"paper": "~20 s", "cpu-small": "~0.19 s", "cpu-tiny": "~0.034 s"},
    # style: one torch thread; "busy" = on a shared machine under load; the loss network costs most
    "style": {"paper": "~29 s (1 thread, busy)", "cpu-small": "~1.5 s (1 thread; 2-4 s busy)",
              "cpu-tiny": "~0.7-1.0 s (1 thread, busy)"},
}


@dataclass
class TrainConfig:
    """All options of one training run. Sizes are pixels; ``sigma`` is on the 0-255 scale."""

    task: str = "cyclegan"
    name: str = "run"
    preset: str | None = None
    seed: int = 0
    # length: stop after ``steps`` iterations; the LR schedule spans ``epochs`` when given, else ``steps``
    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 1  # global batch: split over the processes of a torchrun job
    size: int = 256  # training crop (CycleGAN), HR patch (SR), clean patch (denoise)
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_start: float = 0.5  # fraction of the schedule after which the LR falls linearly to 0
    gan_mode: str = "lsgan"
    lambda_gp: float = 10.0
    spectral: bool = False
    # where and how
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (CUDA: bf16 if supported, else fp16; CPU: fp32) | bf16 (CPU too) | fp16 | off
    workers: int | None = None  # data loader processes; None: 0 on CPU, 4 on CUDA
    cache_mb: int = 2048  # decoded images kept in memory
    # progress and checkpoints
    save_every_min: float = 10.0
    save_every_steps: int | None = None
    keep: int = 3  # last K checkpoints, plus the best by metric
    eval_every: int = 1000
    eval_images: int = 16
    sample_every: int = 200
    tensorboard: bool = True
    export: bool = True  # export the generator(s) to the user models folder when finished
    # CycleGAN
    domain_a: str | None = None
    domain_b: str | None = None
    ngf: int = 64
    n_blocks: int = 9
    ndf: int = 64
    n_layers_d: int = 3
    load_size: int | None = None  # resize before cropping; None: size * 286 / 256 (reference)
    # how images reach the load size: short-side (keep the aspect, short side = load size; what the
    # app does at inference) | square (the reference's resize_and_crop, squashes non-square photos)
    resize: str = "short-side"
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.0  # the reference's 0.5 held input-skip generators at the identity (training/README.md)
    # CycleGAN, SRGAN phase: weight of losses.grid_loss (periodic patterns beyond the source's/HR's); 0 = off
    lambda_grid: float = 0.0
    # style: weight of losses.edge_band_loss (bands along the output's borders beyond the photo's); 0 = off
    lambda_edge: float = 0.0
    pool_size: int = 50
    d_augment: str = ""  # CycleGAN: DiffAugment policy for the discriminators' inputs (training.augment), "" = none
    # CycleGAN: train on crops with this many mirrored pixels per side, cut from the output (the app's
    # ArchSpec.edge_context)
    edge_context: int = 0
    use_dropout: bool = False
    upsample: str = "resize"  # generator x2 layers: resize (nearest + conv, no checkerboard) | deconv (reference)
    input_skip: bool = True  # generator output tanh(net(x) + atanh(x)): learns a change to its input (False: reference)
    flip: bool = True
    # SR and denoise
    data: str | None = None
    patches_per_image: int = 16  # SR/denoise: random patches drawn from each image per epoch
    scale: int = 4
    # SR/denoise: the network family (TASK_DEFAULTS: srresnet / dncnn); sr: srresnet | srvgg (n_blocks = its
    # body convolutions), denoise: a denoise family of imgtrans.archs (dncnn | ffdnet)
    arch: str = ""
    nf: int = 64
    degrade: str = "bicubic"  # SR: how LR inputs are made, datasets.DEGRADATIONS: bicubic | blur | realworld
    # SR: train towards unsharp-masked HR patches (Real-ESRGAN's gt_usm), D's reals unsharpened
    usm_target: bool = False
    pixel_loss: str = "l1"  # l1 | mse
    gan_after: int | None = None  # SR: adversarial + perceptual fine-tuning from this step on
    init_from: str | None = None  # SR: start the generator from this model file (e.g. SRGAN from SRResNet)
    perceptual: str = "auto"  # auto | inception | feature-matching
    lambda_pixel: float = 1e-2  # SR fine-tuning weights (ESRGAN's)
    lambda_perceptual: float = 1.0
    lambda_adv: float = 5e-3
    d_nf: int = 64
    depth: int = 17
    bn: bool = True
    noise_map: bool = False
    channels: int = 3  # denoise: 3 = colour, 1 = grey (trained on luma; the app runs it on each plane)
    sigma: tuple[float, float] = (5.0, 50.0)
    jpeg: tuple[int, int] | None = None  # denoise: also JPEG-compress with quality in this range
    poisson: bool = False  # denoise: also add Poisson (shot) noise
    # style (one or more paintings; photos from ``data``); generator: ngf, n_blocks, upsample, input_skip,
    # load_size (short side of the photos), flip, edge_context above
    style_images: list[str] | None = None
    style_image_size: int = 512  # long side the paintings are learnt at (the app's default style size)
    lambda_content: float = 1.0
    lambda_style: float = 10.0
    lambda_tv: float = 0.3

    # ------------------------------------------------------------------------------------------------
    @classmethod
    def fields(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def for_task(cls, task: str, preset: str | None = None, **options: Any) -> TrainConfig:
        """Defaults < task defaults < preset < ``options``."""
        return resolve(task, options, stored=None, preset=preset)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in ("sigma", "jpeg"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        known = cls.fields()
        kwargs = {k: v for k, v in d.items() if k in known}
        for key in ("sigma", "jpeg"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @property
    def effective_load_size(self) -> int:
        return self.load_size or int(round(self.size * 286 / 256))


# Differences from the generic defaults per task, before any preset.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "cyclegan": dict(lr=2e-4, beta1=0.5, gan_mode="lsgan", epochs=200),
    # SRResNet: Adam 1e-4, beta1 0.9; SRGAN fine-tuning uses the vanilla GAN loss
    "sr": dict(arch="srresnet", lr=1e-4, beta1=0.9, gan_mode="vanilla", pixel_loss="l1", size=96, epochs=100),
    # DnCNN: Adam 1e-3, MSE
    "denoise": dict(arch="dncnn", lr=1e-3, beta1=0.9, pixel_loss="mse", size=50, epochs=50),
    # feed-forward style transfer: Adam at 2e-4 (Johnson et al.'s 1e-3 made the colour of bright regions flip
    # between magenta, cyan and yellow from one hundred iterations to the next here, training/README.md); photos
    # at the app's style size (512 px long side for 2:1 landscapes); the identity-start generator (input skip)
    # with resize-conv upsampling; the 2/4-px pattern penalty at the weight the recipes use (without it the
    # pattern grows, training/common.sh), so a run from the GUI or a bare command gets the same objective
    "style": dict(lr=2e-4, beta1=0.9, load_size=256, upsample="resize", input_skip=True, epochs=None, steps=7000,
                  lambda_grid=300.0),
}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The options of a ``--config`` file: TOML (``.toml``) or JSON (anything else, e.g. the
    ``config.json`` every run writes). Keys are option names with ``_`` or ``-`` (``batch_size`` or
    ``batch-size``); ranges (``sigma``, ``jpeg``) are lists or ``"5-50"`` strings. Raises
    ``ValueError`` with one line naming the file for unreadable files and unknown keys."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except OSError as exc:
        raise ValueError(f"--config {path}: {exc.strerror or exc}") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:  # JSONDecodeError is a ValueError
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ValueError(f"--config {path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a table of options, not {type(data).__name__}")
    options = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = set(options) - TrainConfig.fields()
    if unknown:
        raise ValueError(f"--config {path}: unknown option(s): {', '.join(sorted(unknown))}")
    for key in ("sigma", "jpeg"):
        value = options.get(key)
        if isinstance(value, str):
            parts = value.replace(":", "-").split("-")
            options[key] = [float(parts[0]), float(parts[-1])] if key == "sigma" else [int(parts[0]), int(parts[-1])]
        elif isinstance(value, (int, float)):
            options[key] = [value, value]
    return options


def _length_rule(values: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """--steps alone sets the length (and the LR schedule) and drops an epoch count from a lower
    layer; --epochs alone likewise."""
    if layer.get("steps") is not None and "epochs" not in layer:
        values["epochs"] = None
    elif layer.get("epochs") is not None and "steps" not in layer:
        values["steps"] = None


def resolve(
    task: str,
    explicit: Mapping[str, Any],
    stored: Mapping[str, Any] | None = None,
    preset: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Build a run's options. New run: task defaults < preset < ``config`` (a ``--config`` file's
    options, :func:`read_config_file`) < ``explicit`` (the command line). Continued run: task
    defaults < ``stored`` (the run's own options) < a preset given now < ``config`` < ``explicit``.

    ``preset`` (or ``explicit["preset"]``, else ``config["preset"]``) may be ``"auto"`` (the default
    for new runs): ``paper`` on CUDA, ``cpu-small`` otherwise.
    Raises ``ValueError`` with a readable message for unknown tasks, presets and options.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    config = {k: v for k, v in (config or {}).items() if k != "task"}
    unknown = (set(explicit) | set(config)) - TrainConfig.fields()
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    values: dict[str, Any] = dict(TASK_DEFAULTS[task])
    if stored is not None:
        values.update({k: v for k, v in stored.items() if k in TrainConfig.fields()})
        if task == "cyclegan" and "upsample" not in stored:
            values["upsample"] = "deconv"  # runs started before the option existed used the reference's
        if task == "cyclegan" and "input_skip" not in stored:
            values["input_skip"] = False  # likewise: the reference's generator, without the input skip
        if task == "cyclegan" and "resize" not in stored:
            values["resize"] = "square"  # likewise: they squashed every image to the load size
    given = explicit.get("preset", preset)
    if given is None:
        given = config.get("preset")
    preset = given if given is not None else (stored.get("preset") if stored is not None else "auto")
    if preset == "auto":
        preset = "paper" if _cuda_available() else "cpu-small"
    if preset is not None:
        if preset not in PRESETS[task]:
            raise ValueError(f"unknown preset {preset!r} for {task} (known: {', '.join(PRESETS[task])}, auto)")
        if given is not None or stored is None:
            values.update(PRESETS[task][preset])
    for layer in (config, explicit):
        values.update({k: v for k, v in layer.items() if k != "preset"})
        _length_rule(values, layer)
    values["task"] = task
    values["preset"] = preset
    cfg = TrainConfig.from_dict(values)
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Reject option values that cannot work, with a message naming the option."""
    if cfg.gan_mode not in GAN_MODES:
        raise ValueError(f"--gan-mode must be one of {', '.join(GAN_MODES)}, not {cfg.gan_mode!r}")
    if cfg.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    if cfg.steps is not None and cfg.steps < 1:
        raise ValueError("--steps must be at least 1")
    if cfg.epochs is not None and cfg.epochs < 1:
        raise ValueError("--epochs must be at least 1")
    if cfg.task in ("cyclegan", "style") and cfg.size % 4:
        raise ValueError(f"--size must be a multiple of 4 for the ResNet generator, not {cfg.size}")
    if cfg.task == "style":
        if not cfg.style_images:
            raise ValueError("style training needs at least one --style-image")
        if cfg.size < 40:
            raise ValueError(f"--size must be at least 40 for the Inception loss network, not {cfg.size}")
        if cfg.style_image_size < 40:
            raise ValueError(f"--style-image-size must be at least 40, not {cfg.style_image_size}")
        if not cfg.input_skip:
            raise ValueError("style models need the input skip (the generator starts as a copy of the photo)")
    if cfg.upsample not in ("resize", "deconv"):
        raise ValueError(f"--upsample must be resize or deconv, not {cfg.upsample!r}")
    if cfg.resize not in ("short-side", "square"):
        raise ValueError(f"--resize must be short-side or square, not {cfg.resize!r}")
    if cfg.task == "sr":
        if cfg.scale not in (2, 3, 4, 8):
            raise ValueError(f"--scale must be 2, 3, 4 or 8, not {cfg.scale}")
        if cfg.size % cfg.scale:
            raise ValueError(f"--size (the HR patch) must be a multiple of --scale {cfg.scale}, not {cfg.size}")
        if cfg.degrade not in ("bicubic", "blur", "realworld"):
            raise ValueError(f"--degrade must be bicubic, blur or realworld, not {cfg.degrade!r}")
        if cfg.perceptual not in ("auto", "inception", "feature-matching"):
            raise ValueError(f"--perceptual must be auto, inception or feature-matching, not {cfg.perceptual!r}")
    if cfg.task == "denoise":
        if cfg.channels not in (1, 3):
            raise ValueError(f"denoise models have 1 (--gray) or 3 channels, not {cfg.channels}")
        lo, hi = cfg.sigma
        if not 0 <= lo <= hi <= 255:
            raise ValueError(f"--sigma must be a level or range within 0-255, not {lo}-{hi}")
        if cfg.jpeg is not None and not 1 <= cfg.jpeg[0] <= cfg.jpeg[1] <= 100:
            raise ValueError(f"--jpeg must be a quality range within 1-100, not {cfg.jpeg}")
        families = denoise_archs()
        if cfg.arch not in families:
            raise ValueError(f"--arch must be one of {', '.join(families)}, not {cfg.arch!r}")
        from imgtrans.archs import get_arch

        multiple = get_arch(cfg.arch).size_multiple({})
        if cfg.size % multiple:
            raise ValueError(f"--size must be a multiple of {multiple} for {cfg.arch}, not {cfg.size}")
    if cfg.d_augment:
        from imgtrans.training.augment import parse_policy

        try:
            parse_policy(cfg.d_augment)
        except ValueError as e:
            raise ValueError(f"--d-augment: {e}") from None
    if cfg.task in ("cyclegan", "style") and not 0 <= cfg.edge_context < cfg.size:
        raise ValueError(f"--edge-context must be 0 or more and under the crop size {cfg.size}, not {cfg.edge_context}")
    if cfg.pixel_loss not in ("l1", "mse"):
        raise ValueError(f"--pixel-loss must be l1 or mse, not {cfg.pixel_loss!r}")
    if cfg.amp not in ("auto", "bf16", "fp16", "off"):
        raise ValueError(f"--amp must be auto, bf16, fp16 or off, not {cfg.amp!r}")


def denoise_archs() -> list[str]:
    """The registered denoise families (``--arch`` of ``imgtrans-train denoise``), registry order."""
    from imgtrans.archs import ARCHS

    return [a.name for a in ARCHS if a.task == "denoise"]


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False
