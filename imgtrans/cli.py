"""``imgtrans`` command line: ``convert`` a batch, list ``models``, show ``info`` on a weight file,
``import``/``remove`` your own models.

Listing and help never import torch, so they answer at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from pathlib import Path

from imgtrans import __version__
from imgtrans.catalog import border_label
from imgtrans.cli_args import (noise_level_arg, noise_level_problem, pixels_or_zero, positive_int, printable,
                               strength_arg)

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
EXECUTION_LABELS = {  # imgtrans.archs.base.EXECUTIONS, as `imgtrans info` says them
    "tiles": "local (exact tiles)",
    "stream": "whole-image statistics (exact band streaming)",
    "whole": "whole image in one piece",
    "whole_if_fits": "whole image when it fits in memory (tiling discouraged), else blended tiles",
}
EXISTING_NAMED = 5  # a re-run names this many "output exists" skips, then counts the rest


EXIT_CODES_TEXT = """exit codes:
  0    everything converted (or already there)
  1    some file failed, the batch stopped early (disk full), or a shard was killed or never ran
  2    usage error (nothing was converted)
  130  cancelled (Ctrl-C); re-run the same command to resume
"""

CONVERT_EPILOG = EXIT_CODES_TEXT + """
many processes (each writes OUTPUT/imgtrans-shard-I-of-N.json; `imgtrans summary OUTPUT` combines them):
  torchrun --nproc-per-node 8 -m imgtrans convert scans/ -o out/ -m sr-x2 -r
  sbatch --array=0-15 --wrap 'imgtrans convert scans/ -o out/ -m sr-x2 -r'
  srun -n 16 imgtrans convert scans/ -o out/ -m sr-x2 -r
  imgtrans convert scans/ -o out/ -m sr-x2 -r --shard 3/16
"""


def _tile_arg(text: str) -> int | None:
    return None if text == "auto" else pixels_or_zero(text)


def _device_arg(text: str) -> str:
    import re

    if re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {text!r}")


def _shard_arg(text: str):
    from imgtrans.shard import ShardError, parse_shard

    try:
        return parse_shard(text)
    except ShardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgtrans",
        description="Style transfer, super-resolution and denoising with GANs.",
        epilog="With no command, imgtrans opens the desktop app.\n\nExamples:\n  imgtrans models\n  imgtrans convert photos/ -o out/ --model sr-x2\n  imgtrans import RealESRGAN_x4.pth --name esrgan-x4\n\n" + EXIT_CODES_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # `--over` must not silently mean --overwrite
    )
    parser.add_argument("--version", action="version", version=f"imgtrans {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (tracebacks go to the log)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = sub.choices  # main() reports stray arguments from the command's own parser

    conv = sub.add_parser("convert", help="convert images or folders with a model",
                          description="Convert images and folders. Existing outputs are skipped, so re-running a killed batch resumes it.",
                          epilog=CONVERT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                          allow_abbrev=False)
    conv.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    conv.add_argument("-m", "--model", required=True, help="model id from `imgtrans models`, or a weight file path")
    conv.add_argument("-o", "--output", required=True, type=Path, help="output folder (created if needed)")
    conv.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                      help="name every file (done and skipped) and log details")
    conv.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders (the tree is kept under OUTPUT)")
    conv.add_argument("--flat", action="store_true", help="do not recreate the input folder tree under OUTPUT")
    conv.add_argument("--tile", type=_tile_arg, default=None, metavar="N|auto",
                      help="tile size in pixels (default auto from free memory; 0 = whole image)")
    conv.add_argument("--device", default="auto", type=_device_arg, metavar="auto|cpu|cuda|cuda:N",
                      help="where to run (default auto: a CUDA GPU when there is one; under torchrun/srun each "
                           "process takes cuda:LOCAL_RANK)")
    conv.add_argument("--fp32", action="store_true", help="never use half precision on CUDA")
    conv.add_argument("--backend", default="auto", choices=["auto", "eager", "compile", "onnx"],
                      help="how the network runs: auto (fastest known for the model and device), eager PyTorch, "
                           "torch.compile (slow first image, needs a C compiler) or onnxruntime "
                           "(pip install 'imgtrans[fast]'); default auto")
    conv.add_argument("--threads", type=positive_int, default=None, metavar="N",
                      help="compute threads (default: all CPUs this process may use)")
    conv.add_argument("--format", dest="fmt", default="same", choices=["same", "png", "jpg", "webp", "tiff"],
                      help="output format (default: same as the input where possible)")
    conv.add_argument("--jpeg-quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality 1-100 (default 95)")
    group = conv.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    group.add_argument("--skip-existing", action="store_true", help="skip inputs whose output exists (default)")
    conv.add_argument("--suffix", default="", help="added to output file names, e.g. _x4")
    conv.add_argument("--style-size", type=pixels_or_zero, default=None, metavar="PX",
                      help="style models: long side in pixels they run at; the result is resized back to the "
                           "input's size (default 512; 0 = full resolution: finer, smaller brush strokes, slower)")
    conv.add_argument("--strength", type=strength_arg, default=None, metavar="S",
                      help="style models: how strong the style is, 0-1 (default 1, the full style); lower "
                           "values make the model's change to each pixel proportionally weaker and keep more of "
                           "the photo's own detail; 0 gives the input back")
    conv.add_argument("--noise-level", type=noise_level_arg, default="auto", metavar="SIGMA",
                      help="denoise strength for models that take one: auto (default: the noise measured on "
                           "each image, shown per file and recorded in the output) or the noise sigma on the "
                           "0-255 scale, 0-100; 0 removes nothing (the input is written unchanged, the network "
                           "does not run); above the range a model was trained on, results degrade")
    conv.add_argument("--max-pixels", type=positive_int, default=None, metavar="N",
                      help="refuse images with more pixels than this (decompression-bomb guard; default 200 million)")
    conv.add_argument("--no-progress", action="store_true",
                      help="no progress on stderr (a bar on a terminal, else a plain line every few seconds)")
    conv.add_argument("--json", action="store_true",
                      help="one JSON object per line on stdout for each event: start, done, skipped, failed "
                           "(with its reason), note, summary (and combined_summary from torchrun's rank 0)")
    conv.add_argument("--shard", type=_shard_arg, default=None, metavar="I/N",
                      help="convert only shard I of N (0-based): a fixed part of the inputs chosen by a hash of "
                           "each input's path relative to its input folder; default: from torchrun "
                           "(RANK/WORLD_SIZE), a Slurm array (SLURM_ARRAY_TASK_ID) or srun (SLURM_PROCID)")

    summ = sub.add_parser("summary", help="combine the shard summaries of a sharded convert in OUTPUT",
                          description="Combine the imgtrans-shard-I-of-N.json files that the shards of a sharded "
                                      "`imgtrans convert` wrote into their output folder: counts, failures, "
                                      "shards that were killed or never ran.",
                          epilog=EXIT_CODES_TEXT, formatter_class=argparse.RawDescriptionHelpFormatter,
                          allow_abbrev=False)
    summ.add_argument("output", type=Path, metavar="OUTPUT", help="the output folder of the sharded run")
    summ.add_argument("--json", action="store_true", help="machine-readable (one JSON object)")

    models = sub.add_parser("models", help="list available models", allow_abbrev=False)
    models.add_argument("--json", action="store_true", help="machine-readable list")
    models.add_argument("--task", choices=["style", "sr", "denoise"], help="only this task")

    gui = sub.add_parser("gui", help="open the desktop app (also: imgtrans with no arguments)", allow_abbrev=False)
    gui.add_argument("paths", nargs="*", help="images or folders to queue")

    cal = sub.add_parser("calibrate", help="time the backends for a model on this machine; --backend auto then uses the fastest",
                         description="Times eager, eager + channels_last and onnxruntime on one image for MODEL and stores "
                                     "the fastest in the user cache folder, where --backend auto finds it (instead of the "
                                     "built-in table) for this architecture and size.",
                         allow_abbrev=False)
    cal.add_argument("-m", "--model", required=True, help="model id or weight file")
    cal.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    cal.add_argument("--size", type=positive_int, default=256, help="test image edge in pixels (default 256)")

    info = sub.add_parser("info", help="describe a model (architecture, licences, where it comes from, metadata)",
                          allow_abbrev=False)
    info.add_argument("file", metavar="MODEL", help="model id from `imgtrans models`, or a weight file path")
    info.add_argument("--json", action="store_true", help="machine-readable output (metadata values as JSON values)")

    imp = sub.add_parser("import", help="check a weight file with the safe loader and add it to your models",
                         description="Checks FILE with the safe loader (safetensors, or tensor-only .pth; a file that "
                                     "would need code execution is refused) and stores it as .safetensors in your "
                                     "models folder (an ONNX graph is run once to measure it and copied as it is, "
                                     "with a .onnx.json record of its range, scale and origin), where `imgtrans models`, `convert` and the desktop app find it. "
                                     "The same code as the app's Models tab.",
                         allow_abbrev=False)
    imp.add_argument("file", metavar="FILE", type=Path, help="a .safetensors or .pth/.pt/.ckpt weight file, or an "
                     "image-to-image .onnx graph (NCHW float; fixed-size graphs run in tiles)")
    imp.add_argument("--name", help="display name (also gives the model id); default: the file's own name")
    imp.add_argument("--range", dest="value_range", choices=("0-1", "-1..1", "0-255"),
                     help="ONNX only: the value range the graph reads and writes, e.g. --range=-1..1 (with '=': "
                          "the value starts with a dash); default: its metadata "
                          "'value_range', else detected by running a photo through it in each range")
    imp.add_argument("--scale", type=positive_int,
                     help="ONNX only: output size / input size (default: its metadata 'scale', else measured)")

    rem = sub.add_parser("remove", help="delete one of your models (imported or trained); bundled ones stay",
                         allow_abbrev=False)
    rem.add_argument("model", metavar="NAME", help="model id from `imgtrans models` (one of yours)")
    return parser


def _err(message: str) -> None:
    print(f"imgtrans: error: {printable(message)}", file=sys.stderr)


def cmd_models(args: argparse.Namespace) -> int:
    from imgtrans.catalog import bundled_models_file, list_models, model_problems
    from imgtrans.paths import user_models_dir

    entries = list_models(args.task)
    for path, reason in model_problems():
        print(f"imgtrans: left out {printable(path)}: {printable(reason)}", file=sys.stderr)
    if args.json:
        print(json.dumps([e.to_json() for e in entries], indent=2))
        return EXIT_OK if entries else EXIT_FAILURES
    folder = printable(user_models_dir())
    if not entries:  # an installation without models is broken for every command but this one: say so, exit 1
        what = {"style": "style transfer ", "sr": "super-resolution ", "denoise": "denoising "}.get(args.task or "", "")
        print(f"No {what}models found.")
        if not any(e.source == "bundled" for e in list_models()):
            print(f"This installation has no bundled models (looked in {printable(bundled_models_file())}); "
                  f"reinstall imgtrans from a wheel or checkout that includes resources/.")
        print(f"Train one with `imgtrans-train` (style pairs: --domain-a PHOTOS --domain-b PAINTINGS), "
              f"`imgtrans import FILE`, or put .safetensors model files in {folder}")
        return EXIT_FAILURES
    width = max(len(e.id) for e in entries)
    for task in ("style", "sr", "denoise"):
        group = [e for e in entries if e.task == task]
        if not group:
            continue
        print({"style": "Style transfer", "sr": "Super-resolution", "denoise": "Denoising"}[task])
        for e in group:
            scale = f"x{e.scale}" if e.scale > 1 else "  "
            print(f"  {e.id:<{width}}  {scale:>3}  {e.name}  [{e.source}]")
    others = [e for e in entries if e.task not in ("style", "sr", "denoise")]
    for e in others:
        print(f"  {e.id:<{width}}  ?    {e.name}  [{e.source}, task {e.task}]")
    print(f"Your models folder: {folder}")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from imgtrans.model_import import import_model
    from imgtrans.weights import ModelLoadError

    if not args.file.expanduser().is_file():
        _err(f"no such file: {args.file}")
        return EXIT_USAGE
    try:
        result = import_model(args.file.expanduser(), args.name, value_range=args.value_range, scale=args.scale)
    except ModelLoadError as exc:
        _err(f"not imported: {exc}")
        return EXIT_USAGE
    except OSError as exc:
        _err(f"not imported: {exc.strerror or exc}")
        return EXIT_FAILURES
    print(result.summary())
    print(f"Stored as {printable(result.path)}; use it with: imgtrans convert ... -m {result.id}")
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    from imgtrans.catalog import CatalogEntry, CatalogError, find_model
    from imgtrans.model_import import remove_model

    try:
        found = find_model(args.model)
    except CatalogError as exc:
        _err(str(exc))
        return EXIT_USAGE
    if not isinstance(found, CatalogEntry):
        _err(f"{args.model} is a file, not one of your models: `imgtrans remove` takes a model id from `imgtrans models`")
        return EXIT_USAGE
    try:
        remove_model(found)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except OSError as exc:
        _err(f"cannot remove {found.path}: {exc.strerror or exc}")
        return EXIT_FAILURES
    print(f"Removed {found.id} ({printable(found.path)})")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from imgtrans.catalog import (CatalogEntry, CatalogError, data_licences_text, find_model, metadata_values,
                                  provenance, read_model_metadata, readable_metadata)
    from imgtrans.weights import ModelLoadError, count_parameters, load_model

    try:
        found = find_model(args.file)
    except CatalogError as exc:
        _err(str(exc))
        return EXIT_USAGE
    args.file = found.path if isinstance(found, CatalogEntry) else found
    try:
        model = load_model(args.file)
    except ModelLoadError as exc:
        _err(str(exc))
        return EXIT_USAGE
    meta = dict(model.metadata)
    if not meta:
        meta = read_model_metadata(args.file)
    origin = provenance(meta, found if isinstance(found, CatalogEntry) else None)
    report = {
        "file": str(args.file),
        "arch": model.arch,
        "task": model.task,
        "scale": model.scale,
        "in_channels": model.in_channels,
        "out_channels": model.out_channels,
        "hparams": model.hparams,
        "parameters": count_parameters(model.module),
        "tile_safe": model.tile_safe,
        "execution": model.execution,
        "edge_context": model.edge_context,
        "half_ok": model.half_ok,
        **origin,
        "metadata": metadata_values(meta),
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return EXIT_OK
    print(f"{args.file}")
    rows = {
        "architecture": model.describe(),
        "parameters": f"{report['parameters']:,}",
        "channels": f"{model.in_channels} -> {model.out_channels}",
        "tiling": _tiling_label(model),
        "edge border": border_label(model.edge_context),
        "origin": origin["origin"],
        "weights licence": origin["weights_licence"],
        "data licences": data_licences_text(origin["training_data_licences"]),
    }
    meta = {k: v for k, v in readable_metadata(meta).items() if k not in ("hparams", "arch", "scale", "task", "edge_context")}
    width = max(len(k) for k in [*rows, *meta])
    for key, value in rows.items():
        print(f"  {key:<{width}}: {value}")
    for key in sorted(meta):
        print(f"  {key:<{width}}: {meta[key]}")
    return EXIT_OK


def _tiling_label(model) -> str:
    """How the engine splits images for ``model``, as ``imgtrans info`` says it."""
    label = EXECUTION_LABELS.get(model.execution, model.execution)
    if model.execution == "tiles" and model.receptive_radius is None:
        label = "local (blended tiles: receptive field unknown)"
    if model.input_size:
        label += f"; every tile padded to the network's fixed {model.input_size[1]}x{model.input_size[0]} input"
    return label


def _model_facts(meta: dict[str, str], task: str = "") -> dict:
    """What the convert checks need to know about a model, from its metadata (no torch): ``task``,
    ``takes_noise`` (None: unknown) and ``sigma_max``, the largest noise sigma it was trained on
    (None: not recorded)."""
    import re

    from imgtrans.catalog import takes_noise_input

    facts: dict = {"task": meta.get("task") or task or None, "takes_noise": takes_noise_input(meta), "sigma_max": None}
    for key in ("noise", "train_options"):  # recorded as {"sigma": [lo, hi]}
        try:
            sigma = json.loads(meta.get(key) or "{}").get("sigma")
            facts["sigma_max"] = float(sigma[1])
            break
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            continue
    if facts["sigma_max"] is None:
        found = re.search(r"sigma\s+(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)", meta.get("description", ""))
        if found:
            facts["sigma_max"] = float(found.group(2))
    return facts


class _ProgressBar:
    """tqdm with whole image counts and one rate unit (seconds per image), while still moving
    smoothly by fractions of an image."""

    def __new__(cls, total: int, **kw):
        from tqdm import tqdm

        class Bar(tqdm):
            @property
            def format_dict(self):
                d = super().format_dict
                n, elapsed = d.get("n") or 0, d.get("elapsed") or 0.0
                d["done"] = int(n + 1e-9)
                d["per_image"] = f"{elapsed / n:.2f} s/img" if n > 0 else "? s/img"
                return d

        return Bar(total=total, unit="img", dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {done}/{total} [{elapsed}<{remaining}, {per_image}]", **kw)


class _PlainProgress:
    """Progress for a log file or pipe (stderr is not a terminal): a plain line when an image
    completes, at most one every ``every`` seconds (and one for the last), with the count, the rate
    and the time left. Same calls as :class:`_ProgressBar` (``update``, ``write``, ``close``)."""

    def __init__(self, total: int, tag: str = "imgtrans", every: float = 10.0, file=None):
        import time

        self._time = time.monotonic
        self.total, self.tag, self.every = total, tag, every
        self.file = file if file is not None else sys.stderr
        self.n, self.t0, self.last, self.shown = 0.0, self._time(), None, 0

    def update(self, amount: float) -> None:
        self.n += amount
        done, now = int(self.n + 1e-9), self._time()
        if done <= self.shown or (self.last is not None and now - self.last < self.every and done < self.total):
            return
        self.shown, self.last = done, now
        per = (now - self.t0) / max(self.n, 1e-9)
        left = int(per * max(self.total - self.n, 0))
        print(f"{self.tag}: progress {done}/{self.total} images ({100 * done // max(self.total, 1)}%), "
              f"{per:.2f} s/image, about {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d} left",
              file=self.file, flush=True)

    def write(self, text: str, file=None) -> None:
        print(text, file=file if file is not None else self.file, flush=True)

    def close(self) -> None:
        pass


def _node_threads(local_world: int) -> int:
    """Compute threads for one of ``local_world`` processes on this node: the CPUs this process may
    use, divided among the node's processes unless the launcher already bound each to its own CPUs
    (srun's CPU binding leaves fewer CPUs in the affinity mask than the machine has)."""
    import os

    try:
        mine = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        mine = os.cpu_count() or 1
    if mine >= (os.cpu_count() or mine):
        return max(1, mine // max(local_world, 1))
    return max(1, mine)


def _shard_plan(plan, shard, inputs: list[str]):
    """The part of ``plan`` (a :class:`~imgtrans.engine.Plan`) that ``shard`` converts and reports:
    its jobs, and the planning skips keyed the same way, so each is reported by one shard only."""
    from imgtrans.engine import Plan
    from imgtrans.shard import relative_key

    roots = [Path(raw).expanduser() for raw in inputs]
    jobs = [job for job in plan.jobs if shard.owns(job.rel if job.rel is not None else Path(job.src.name))]
    kept = {id(job) for job in jobs}
    return Plan(jobs=jobs,
                skipped=[(p, r) for p, r in plan.skipped if shard.owns(relative_key(p, roots))],
                unsearched=plan.unsearched if shard.index == 0 else [],
                renamed=[job for job in plan.renamed if id(job) in kept])


class _Tally:
    """What a convert run did, counted from its events (so a cancelled run, whose engine summary
    never arrives, still reports it)."""

    def __init__(self) -> None:
        self.converted = 0
        self.existing = 0
        self.skipped: list[tuple[str, str]] = []  # every skip but "output exists"
        self.failed: list[tuple[str, str]] = []
        self.stopped = ""
        self.seconds = 0.0

    def as_json(self) -> dict:
        return {"converted": self.converted, "existing": self.existing, "skipped": len(self.skipped),
                "failed": len(self.failed), "failures": [{"path": p, "reason": r} for p, r in self.failed],
                "stopped": self.stopped, "seconds": round(self.seconds, 3)}


def cmd_convert(args: argparse.Namespace) -> int:
    import os

    from imgtrans.catalog import CatalogEntry, CatalogError, find_model, read_model_metadata, recorded_id
    from imgtrans.engine import (EXISTS, OVERWRITES_INPUT, ConvertOptions, convert, device_problem, make_plan,
                                 output_dir_problem)
    from imgtrans.imageio import DEFAULT_MAX_PIXELS, ImageWriteError
    from imgtrans.shard import ShardError, from_env

    # setup errors first, cheap, before torch or the model is loaded and before anything is created
    if not 1 <= args.jpeg_quality <= 100:
        _err("--jpeg-quality must be between 1 and 100")
        return EXIT_USAGE
    if noise_level_problem(args.noise_level):
        _err(noise_level_problem(args.noise_level))
        return EXIT_USAGE
    try:
        launcher = from_env()
    except ShardError as exc:
        if args.shard is None:
            _err(str(exc))
            return EXIT_USAGE
        launcher = None
    shard = args.shard or launcher
    tag = f"imgtrans[{shard.label}]" if shard.active else "imgtrans"

    def note(text: str) -> None:
        print(f"{tag}: {printable(text)}", file=sys.stderr)

    if args.shard is not None and launcher is not None and launcher.active:
        note(f"--shard {args.shard.label} given: the {launcher.source} shard {launcher.label} is not used")
        shard = type(shard)(shard.index, shard.count, shard.source, launcher.local_rank, launcher.local_world)
    missing = [raw for raw in args.inputs if not Path(raw).expanduser().exists()]
    if missing:
        _err(f"no such file or folder: {', '.join(missing)}")
        return EXIT_USAGE
    output = args.output.expanduser()
    if output.exists() and not output.is_dir():
        _err(f"output {args.output} is an existing file, not a folder; choose a folder for -o")
        return EXIT_USAGE
    problem = output_dir_problem(output)
    if problem:
        _err(f"-o {args.output}: {problem}; choose another output folder")
        return EXIT_USAGE
    if args.backend == "onnx":
        from imgtrans.backends import onnxruntime_available

        if not onnxruntime_available():
            _err("--backend onnx needs onnxruntime, which is not installed: pip install 'imgtrans[fast]' (or use --backend auto)")
            return EXIT_USAGE
    try:
        found = find_model(args.model)
    except CatalogError as exc:
        _err(str(exc))
        return EXIT_USAGE
    label = found.id if isinstance(found, CatalogEntry) else str(found)
    weight_file = found.path if isinstance(found, CatalogEntry) else found
    try:
        meta = read_model_metadata(weight_file)
    except (OSError, ValueError):
        meta = {}  # loading the model says what is wrong with it
    facts = _model_facts(meta, found.task if isinstance(found, CatalogEntry) else "")

    threads = args.threads
    if threads is None and (shard.local_world or 0) > 1 and not os.environ.get("IMGTRANS_THREADS"):
        threads = _node_threads(shard.local_world)  # the node's processes share its CPUs
    options = ConvertOptions(
        output_dir=args.output,
        fmt=args.fmt,
        jpeg_quality=args.jpeg_quality,
        overwrite=args.overwrite,
        suffix=args.suffix,
        recursive=args.recursive,
        keep_tree=not args.flat,
        tile=args.tile,
        device=args.device,
        half=False if args.fp32 else None,
        noise_level=args.noise_level,
        max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
        backend=args.backend,
        threads=threads,
    )
    if args.style_size is not None:
        options.style_size = args.style_size
    if args.strength is not None:
        options.style_strength = args.strength
    plan = make_plan(args.inputs, options)
    planned = len(plan.jobs)
    refused = [path for path, reason in plan.skipped if OVERWRITES_INPUT in reason]
    if refused and not plan.jobs:
        _err(f"every output in {args.output} would overwrite its own input; choose another output folder or a --suffix")
        return EXIT_USAGE
    if shard.count > 1:
        plan = _shard_plan(plan, shard, args.inputs)
    jobs = plan.jobs
    for root, count in plan.unsearched:
        note(f"{count} sub-folder{'s' if count != 1 else ''} of {root} not searched (use --recursive)")
    for job in plan.renamed:
        note(f"{job.src} -> {job.dst.name} (another input has the same output name)")
    todo = [job for job in jobs if options.overwrite or not job.dst.exists()]

    group = False
    if shard.source == "torchrun" and shard.count > 1:  # (in an array task, the group is only part of the run)
        from imgtrans.run_summary import all_planned, open_group

        group = open_group()
        if group:
            seen = all_planned(planned)
            if len(set(seen)) > 1 and shard.index == 0:
                note(f"warning: the processes found different numbers of inputs ({', '.join(map(str, seen))}): "
                     "are the input paths the same on every node? Files that arrive during the run are "
                     "converted by the next run")

    model = None
    if todo:
        if shard.local_rank is not None and options.device in ("auto", "cuda"):
            import torch  # a launcher's process: its own GPU, cuda:LOCAL_RANK (modulo the GPUs it can see)

            if torch.cuda.is_available():
                options.device = f"cuda:{shard.local_rank % torch.cuda.device_count()}"
        problem = device_problem(options.device)  # imports torch only for a CUDA choice
        if problem:
            _err(problem)
            return EXIT_USAGE
        from imgtrans.weights import ModelLoadError, load_found

        try:
            model, label = load_found(found)
        except ModelLoadError as exc:
            _err(str(exc))
            return EXIT_USAGE
        facts["task"] = facts["task"] or model.task  # the loaded model fills what the metadata did not say
        if options.style_strength != 1.0 and model.task == "style" and not model.supports_strength:
            _err(f"--strength: {label} has no strength setting (only style generators with an input skip, "
                 "as every style model imgtrans-train makes, have one)")
            return EXIT_USAGE
        if facts["takes_noise"] is None:
            facts["takes_noise"] = model.takes_noise_level
    _warn_unused_options(args, label, facts, tag)
    if model is not None or shard.active:
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _err(f"cannot create output folder {args.output}: {exc.strerror or exc}")
            return EXIT_USAGE
    where = f"shard {shard.label} ({shard.source}): {len(jobs)} of {planned}" if shard.active else f"{len(jobs)}"
    if model is not None:
        note(f"{model.describe()} from {label}; {where} image(s) -> {args.output}")
    else:
        note(f"{label}; {where} image(s) -> {args.output}, nothing to convert")

    def emit(event: str, **fields) -> None:
        if args.json:
            if shard.active:
                fields["shard"] = shard.label
            # one write per line: the shards under torchrun/srun share one stdout, and a write of
            # under 4 KiB to a pipe is never split by another process's
            sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
            sys.stdout.flush()

    record = None
    if shard.active:
        from imgtrans.run_summary import new_record, write_record

        record = new_record(shard, command=sys.argv[1:], model=recorded_id(found, meta), device=options.device,
                            output=args.output, planned=planned, assigned=len(jobs), to_convert=len(todo))
        try:
            write_record(output, record)
        except ImageWriteError as exc:
            note(f"warning: cannot write the shard summary: {exc}")
    emit("start", model=label, output=str(args.output), device=options.device, inputs=planned, assigned=len(jobs),
         to_convert=len(todo))

    cancel = threading.Event()
    bar = None
    if not args.no_progress and todo:
        bar = _ProgressBar(len(todo)) if sys.stderr.isatty() else _PlainProgress(len(todo), tag)
    done_fraction: dict[int, float] = {}
    tally = _Tally()

    prefix = f"{tag}: " if shard.active else ""  # torchrun/srun interleave the shards' lines

    def say(text: str, lead: str = prefix) -> None:
        (bar.write if bar else print)(lead + text, file=sys.stderr)

    def advance(index: int, fraction: float) -> None:
        prev = done_fraction.get(index, 0.0)
        if bar and fraction > prev:
            bar.update(fraction - prev)
        done_fraction[index] = max(prev, fraction)

    summary = None
    existing = 0
    restore_signals = _cancel_on_signals(cancel)
    try:
        for event in convert(args.inputs, model, options, model_ref=label, cancel=cancel, plan=(plan.jobs, plan.skipped),
                             model_id=recorded_id(found, meta)):
            src = str(event.src) if event.src is not None else None
            dst = str(event.dst) if event.dst is not None else None
            if event.kind == "progress":
                advance(event.index, event.fraction)
            elif event.kind == "done":
                tally.converted += 1
                emit("done", src=src, dst=dst, seconds=round(event.seconds, 3))
                advance(event.index, 1.0)
                if args.verbose:
                    say(f"done: {printable(event.src)} -> {printable(event.dst)} ({event.seconds:.1f} s)")
            elif event.kind == "skipped":
                if event.message.startswith(EXISTS):
                    tally.existing += 1
                else:
                    tally.skipped.append((src, event.message))
                emit("skipped", src=src, dst=dst, reason=event.message)
                if event.message.startswith(EXISTS) and not args.verbose:
                    existing += 1  # a resumed batch: the first few are named, the rest counted
                    if existing > EXISTING_NAMED:
                        continue
                say(f"skipped: {printable(event.src)}: {printable(event.message)}")
            elif event.kind == "failed":
                tally.failed.append((src or "<batch>", event.message))
                emit("failed", src=src or "<batch>", dst=dst, reason=event.message)
                if event.dst is not None:
                    advance(event.index, 1.0)
                say(f"failed: {printable(event.src or 'batch')}: {printable(event.message)}")
            elif event.kind == "note":
                emit("note", src=src, dst=dst, message=event.message)
            elif event.kind == "noise":  # a denoiser on auto: the level measured on this file
                emit("noise", src=src, dst=dst, noise_level=event.noise_level, message=event.message)
                say(f"{printable(event.src)}: {printable(event.message)}")
            elif event.kind == "backend":
                say(printable(event.message), f"{tag}: ")
            elif event.kind == "stopped":
                tally.stopped = event.message
                emit("stopped", reason=event.message)
                say(printable(event.message), f"{tag}: ")
            elif event.kind == "cancelled":
                say("cancelled; outputs written so far are complete, re-run the same command to resume", f"{tag}: ")
            elif event.kind == "finished":
                summary = event.summary
                tally.seconds = event.seconds
    except KeyboardInterrupt:
        cancel.set()
        if bar:
            bar.close()
        print(f"{tag}: cancelled; outputs written so far are complete, re-run the same command to resume", file=sys.stderr)
        _finish_shard(record, output, "cancelled", tally, EXIT_CANCELLED, note)
        emit("summary", **tally.as_json(), cancelled=True, exit_code=EXIT_CANCELLED)
        return EXIT_CANCELLED
    finally:
        restore_signals()
        if bar:
            bar.close()
    assert summary is not None
    if existing > EXISTING_NAMED:
        note(f"{existing - EXISTING_NAMED} more input(s) skipped: output exists (--verbose names them)")
    note(f"{len(summary.converted)} converted, {len(summary.skipped)} skipped, "
         f"{len(summary.failed)} failed in {summary.seconds:.1f} s; outputs in {args.output}")
    notes: dict[str, list[Path]] = {}
    for path, what in summary.notes:
        notes.setdefault(what, []).append(path)
    for what, paths in notes.items():
        shown = ", ".join(printable(p.name) for p in paths[:4])
        if len(paths) > 4:
            shown += f" and {len(paths) - 4} more"
        print(f"{tag}: note: {printable(what)}: {shown}", file=sys.stderr)
    if summary.failed:
        print(f"{prefix}failures:", file=sys.stderr)
        for path, reason in summary.failed:
            print(f"{prefix}  {printable(path)}: {printable(reason)}", file=sys.stderr)
    if summary.stopped:
        note(summary.stopped)
    if summary.cancelled:
        code, status = EXIT_CANCELLED, "cancelled"
    else:
        code = EXIT_FAILURES if (summary.failed or summary.stopped) else EXIT_OK
        status = "stopped" if summary.stopped else "finished"
    record = _finish_shard(record, output, status, tally, code, note)
    emit("summary", **tally.as_json(), cancelled=summary.cancelled, exit_code=code)
    if group and record is not None and not summary.cancelled:
        from imgtrans.run_summary import close_group, combine, describe, gather

        records = gather(record)
        if records is not None:  # rank 0: the whole run
            combined = combine(records)
            for line in describe(combined, args.output):
                print(f"imgtrans[all {shard.count} shards]: {printable(line)}", file=sys.stderr)
            emit("combined_summary", **combined)
            code = combined["exit_code"]
        close_group()
    return code


def _cancel_on_signals(cancel: threading.Event):
    """While the batch runs, SIGINT (Ctrl-C) and SIGTERM (Slurm's scancel and time limit, torchrun
    stopping the other ranks when one fails) set ``cancel``: the engine abandons the current image,
    finishes the writes in flight and reports them, so the summary, the shard's file and ``--json``
    name every output on disk; exit 130. A second signal interrupts at once. Returns the function
    that puts the old handlers back."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, previous in old.items():
            signal.signal(sig, previous)

    return restore


def _finish_shard(record, output: Path, status: str, tally: _Tally, code: int, note) -> dict | None:
    """Write a shard's final summary file (nothing outside a sharded run)."""
    if record is None:
        return None
    from imgtrans.imageio import ImageWriteError
    from imgtrans.run_summary import finish_record, write_record

    finish_record(record, status=status, converted=tally.converted, existing=tally.existing, skipped=tally.skipped,
                  failed=tally.failed, stopped=tally.stopped, seconds=tally.seconds, exit_code=code)
    try:
        write_record(output, record)
    except ImageWriteError as exc:
        note(f"warning: cannot write the shard summary: {exc}")
    return record


def cmd_summary(args: argparse.Namespace) -> int:
    from imgtrans.run_summary import combine, describe, read_records

    folder = args.output.expanduser()
    if not folder.is_dir():
        _err(f"{args.output} is not a folder")
        return EXIT_USAGE
    records, problems = read_records(folder)
    for problem in problems:
        print(f"imgtrans: {printable(problem)}", file=sys.stderr)
    if not records:
        _err(f"no shard summaries (imgtrans-shard-I-of-N.json) in {args.output}: was it the output folder "
             "of a sharded convert (--shard, torchrun, Slurm)?")
        return EXIT_USAGE
    combined = combine(records)
    if args.json:
        print(json.dumps(combined, indent=2))
    else:
        for line in describe(combined, args.output):
            print(printable(line))
    return combined["exit_code"]


def _warn_unused_options(args: argparse.Namespace, label: str, facts: dict, tag: str = "imgtrans") -> None:
    """One line per option that does nothing with this model, and a noise level above what the
    model was trained on."""
    def warn(text: str) -> None:
        print(f"{tag}: {printable(text)}", file=sys.stderr)

    if args.noise_level is not None:
        if facts["takes_noise"] is False:
            warn(f"--noise-level has no effect on {label} (it takes no noise level)")
        elif facts["takes_noise"] and facts["sigma_max"] is not None and args.noise_level > facts["sigma_max"]:
            warn(f"warning: --noise-level {args.noise_level:g} is above the noise {label} was trained on "
                 f"(sigma 0-{facts['sigma_max']:g}); expect over-smoothed or odd results")
    if args.style_size is not None and facts["task"] is not None and facts["task"] != "style":
        warn(f"--style-size has no effect on {label} (not a style model)")
    if args.strength is not None and facts["task"] is not None and facts["task"] != "style":
        warn(f"--strength has no effect on {label} (not a style model)")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from imgtrans.backends import calibrate, calibration_path
    from imgtrans.catalog import CatalogError
    from imgtrans.engine import ConvertOptions, prepare_model
    from imgtrans.weights import ModelLoadError, open_model

    try:
        model, label = open_model(args.model)
        prepare_model(model, ConvertOptions(output_dir=Path("."), device=args.device, half=False))
    except (CatalogError, ModelLoadError, RuntimeError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    result = calibrate(model, size=args.size)
    for name, ms in result["timings_ms"].items():
        print(f"  {name:<22} {ms:8.1f} ms")
    choice = result["backend"] + (" + channels_last" if result["channels_last"] else "")
    print(f"imgtrans: --backend auto will use {choice} for {label} (saved in {calibration_path()})")
    return EXIT_OK


def cmd_gui(args: argparse.Namespace) -> int:
    from imgtrans.gui.app import main as gui_main

    return gui_main([str(p) for p in args.paths])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # the command's own usage, not the top-level one, for a typo in its options
            own = parser.commands.get(args.command) if args.command else None
            (own or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # usage errors (exit 2) and --help/--version (exit 0) as return codes
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        return cmd_gui(argparse.Namespace(paths=[]))
    handler = {"convert": cmd_convert, "models": cmd_models, "info": cmd_info, "gui": cmd_gui,
               "calibrate": cmd_calibrate, "summary": cmd_summary, "import": cmd_import, "remove": cmd_remove}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("imgtrans: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - last resort: one line, details with -v
        logging.getLogger("imgtrans").debug("unexpected error", exc_info=True)
        _err(f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (run with -v for details)")
        if args.verbose:
            raise
        return EXIT_FAILURES
