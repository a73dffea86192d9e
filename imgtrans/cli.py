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
from imgtrans.cli_args import noise_level_problem, pixels_or_zero, positive_int, printable

EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
EXISTING_NAMED = 5  # a re-run names this many "output exists" skips, then counts the rest


def _tile_arg(text: str) -> int | None:
    return None if text == "auto" else pixels_or_zero(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgtrans",
        description="Style transfer, super-resolution and denoising with GANs.",
        epilog="With no command, imgtrans opens the desktop app.\n\nExamples:\n  imgtrans models\n  imgtrans convert photos/ -o out/ --model sr-x2\n  imgtrans import RealESRGAN_x4.pth --name esrgan-x4\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # `--over` must not silently mean --overwrite
    )
    parser.add_argument("--version", action="version", version=f"imgtrans {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details (tracebacks go to the log)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = sub.choices  # main() reports stray arguments from the command's own parser

    conv = sub.add_parser("convert", help="convert images or folders with a model",
                          description="Convert images and folders. Existing outputs are skipped, so re-running a killed batch resumes it.",
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
    conv.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to run (default auto)")
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
    conv.add_argument("--noise-level", type=float, default=None, metavar="SIGMA",
                      help="denoise strength for models that take one: the noise sigma on the 0-255 scale, "
                           "0-100 (default 25); 0 removes nothing (the input is written unchanged, the network "
                           "does not run); above the range a model was trained on, results degrade")
    conv.add_argument("--max-pixels", type=positive_int, default=None, metavar="N",
                      help="refuse images with more pixels than this (decompression-bomb guard; default 200 million)")
    conv.add_argument("--no-progress", action="store_true", help="no progress bar")

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
                                     "models folder, where `imgtrans models`, `convert` and the desktop app find it. "
                                     "The same code as the app's Models tab.",
                         allow_abbrev=False)
    imp.add_argument("file", metavar="FILE", type=Path, help="a .safetensors or .pth/.pt/.ckpt weight file")
    imp.add_argument("--name", help="display name (also gives the model id); default: the file's own name")

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
        result = import_model(args.file.expanduser(), args.name)
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
                                  provenance, read_safetensors_metadata)
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
    if args.file.suffix.lower() == ".safetensors" and not meta:
        meta = read_safetensors_metadata(args.file)
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
        "tiling": "local (exact tiles)" if model.tile_safe else "whole-image statistics (exact band streaming)",
        "origin": origin["origin"],
        "weights licence": origin["weights_licence"],
        "data licences": data_licences_text(origin["training_data_licences"]),
    }
    meta = {k: v for k, v in meta.items() if k not in ("hparams", "arch", "scale", "task")}
    width = max(len(k) for k in [*rows, *meta])
    for key, value in rows.items():
        print(f"  {key:<{width}}: {value}")
    for key in sorted(meta):
        print(f"  {key:<{width}}: {meta[key]}")
    return EXIT_OK


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


def cmd_convert(args: argparse.Namespace) -> int:
    from imgtrans.catalog import CatalogEntry, CatalogError, find_model, read_safetensors_metadata, recorded_id
    from imgtrans.engine import EXISTS, OVERWRITES_INPUT, ConvertOptions, convert, make_plan, output_dir_problem
    from imgtrans.imageio import DEFAULT_MAX_PIXELS

    # setup errors first, cheap, before torch or the model is loaded and before anything is created
    if not 1 <= args.jpeg_quality <= 100:
        _err("--jpeg-quality must be between 1 and 100")
        return EXIT_USAGE
    if noise_level_problem(args.noise_level):
        _err(noise_level_problem(args.noise_level))
        return EXIT_USAGE
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
        meta = read_safetensors_metadata(weight_file) if weight_file.suffix.lower() == ".safetensors" else {}
    except (OSError, ValueError):
        meta = {}  # loading the model says what is wrong with it
    facts = _model_facts(meta, found.task if isinstance(found, CatalogEntry) else "")

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
        threads=args.threads,
    )
    if args.style_size is not None:
        options.style_size = args.style_size
    plan = make_plan(args.inputs, options)
    jobs = plan.jobs
    refused = [path for path, reason in plan.skipped if OVERWRITES_INPUT in reason]
    if refused and not jobs:
        _err(f"every output in {args.output} would overwrite its own input; choose another output folder or a --suffix")
        return EXIT_USAGE
    for root, count in plan.unsearched:
        print(f"imgtrans: {count} sub-folder{'s' if count != 1 else ''} of {printable(root)} not searched "
              f"(use --recursive)", file=sys.stderr)
    for job in plan.renamed:
        print(f"imgtrans: {printable(job.src)} -> {printable(job.dst.name)} (another input has the same output name)",
              file=sys.stderr)
    todo = [job for job in jobs if options.overwrite or not job.dst.exists()]

    model = None
    if todo:
        if args.device == "cuda":  # only now that the device will be used, and only then import torch
            import torch

            if not torch.cuda.is_available():
                _err("--device cuda: no CUDA GPU is available on this machine (use --device cpu or auto)")
                return EXIT_USAGE
        from imgtrans.weights import ModelLoadError, load_found

        try:
            model, label = load_found(found)
        except ModelLoadError as exc:
            _err(str(exc))
            return EXIT_USAGE
        facts["task"] = facts["task"] or model.task  # the loaded model fills what the metadata did not say
        if facts["takes_noise"] is None:
            facts["takes_noise"] = model.takes_noise_level
    _warn_unused_options(args, label, facts)
    if model is not None:
        try:
            output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            _err(f"cannot create output folder {args.output}: {exc.strerror or exc}")
            return EXIT_USAGE
        print(f"imgtrans: {model.describe()} from {label}; {len(jobs)} image(s) -> {args.output}", file=sys.stderr)
    else:
        print(f"imgtrans: {label}; {len(jobs)} image(s) -> {args.output}, nothing to convert", file=sys.stderr)

    cancel = threading.Event()
    bar = _ProgressBar(len(todo)) if not args.no_progress and todo else None
    done_fraction: dict[int, float] = {}

    def say(text: str) -> None:
        (bar.write if bar else print)(text, file=sys.stderr)

    def advance(index: int, fraction: float) -> None:
        prev = done_fraction.get(index, 0.0)
        if bar and fraction > prev:
            bar.update(fraction - prev)
        done_fraction[index] = max(prev, fraction)

    summary = None
    existing = 0
    try:
        for event in convert(args.inputs, model, options, model_ref=label, cancel=cancel, plan=(plan.jobs, plan.skipped),
                             model_id=recorded_id(found, meta)):
            if event.kind == "progress":
                advance(event.index, event.fraction)
            elif event.kind == "done":
                advance(event.index, 1.0)
                if args.verbose:
                    say(f"done: {printable(event.src)} -> {printable(event.dst)} ({event.seconds:.1f} s)")
            elif event.kind == "skipped":
                if event.message.startswith(EXISTS) and not args.verbose:
                    existing += 1  # a resumed batch: the first few are named, the rest counted
                    if existing > EXISTING_NAMED:
                        continue
                say(f"skipped: {printable(event.src)}: {printable(event.message)}")
            elif event.kind == "failed":
                if event.dst is not None:
                    advance(event.index, 1.0)
                say(f"failed: {printable(event.src or 'batch')}: {printable(event.message)}")
            elif event.kind == "backend":
                say(f"imgtrans: {printable(event.message)}")
            elif event.kind == "stopped":
                say(f"imgtrans: {printable(event.message)}")
            elif event.kind == "finished":
                summary = event.summary
    except KeyboardInterrupt:
        cancel.set()
        if bar:
            bar.close()
        print("imgtrans: cancelled; outputs written so far are complete, re-run the same command to resume", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        if bar:
            bar.close()
    assert summary is not None
    if existing > EXISTING_NAMED:
        print(f"imgtrans: {existing - EXISTING_NAMED} more input(s) skipped: output exists (--verbose names them)",
              file=sys.stderr)
    print(
        f"imgtrans: {len(summary.converted)} converted, {len(summary.skipped)} skipped, "
        f"{len(summary.failed)} failed in {summary.seconds:.1f} s; outputs in {args.output}",
        file=sys.stderr,
    )
    notes: dict[str, list[Path]] = {}
    for path, note in summary.notes:
        notes.setdefault(note, []).append(path)
    for note, paths in notes.items():
        shown = ", ".join(printable(p.name) for p in paths[:4])
        if len(paths) > 4:
            shown += f" and {len(paths) - 4} more"
        print(f"imgtrans: note: {note}: {shown}", file=sys.stderr)
    if summary.failed:
        print("failures:", file=sys.stderr)
        for path, reason in summary.failed:
            print(f"  {printable(path)}: {printable(reason)}", file=sys.stderr)
    if summary.stopped:
        print(f"imgtrans: {printable(summary.stopped)}", file=sys.stderr)
    if summary.cancelled:
        return EXIT_CANCELLED
    return EXIT_FAILURES if (summary.failed or summary.stopped) else EXIT_OK


def _warn_unused_options(args: argparse.Namespace, label: str, facts: dict) -> None:
    """One line per option that does nothing with this model, and a noise level above what the
    model was trained on."""
    def warn(text: str) -> None:
        print(f"imgtrans: {printable(text)}", file=sys.stderr)

    if args.noise_level is not None:
        if facts["takes_noise"] is False:
            warn(f"--noise-level has no effect on {label} (it takes no noise level)")
        elif facts["takes_noise"] and facts["sigma_max"] is not None and args.noise_level > facts["sigma_max"]:
            warn(f"warning: --noise-level {args.noise_level:g} is above the noise {label} was trained on "
                 f"(sigma 0-{facts['sigma_max']:g}); expect over-smoothed or odd results")
    if args.style_size is not None and facts["task"] is not None and facts["task"] != "style":
        warn(f"--style-size has no effect on {label} (not a style model)")


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
               "calibrate": cmd_calibrate, "import": cmd_import, "remove": cmd_remove}[args.command]
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
