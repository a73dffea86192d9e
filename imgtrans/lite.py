"""Torch-free inference: ONNX graphs exported at build time, run by onnxruntime, tiling in NumPy.

This is the engine of the small "lite" desktop bundle (``packaging/imgtrans-lite.spec``): no torch,
no Qt, a command line only. ``packaging/export_onnx.py`` (run where torch is installed) exports the
bundled models with :func:`imgtrans.backends.export_onnx` into a folder with an ``index.json``::

    {"format": 1, "models": {"sr-x2-quick": {"file": "sr-x2-quick.onnx", "task": "sr", "scale": 2,
     "size_multiple": 1, "min_size": 1, "halo": 17, "execution": "tiles", "takes_noise_level": false,
     "value_range": [0.0, 1.0], "in_channels": 3, "out_channels": 3, ...}}}

Images are read and written with :mod:`imgtrans.imageio` (written atomically). How an image is cut,
padded and bordered comes from :mod:`imgtrans.tilegrid`, the same torch-free code the torch engine
uses, with what the architecture's descriptor said at export time (``execution``, size multiple and
minimum, ``edge_context``, ``halo``). Local networks (``execution`` ``tiles``) run over tiles read
with a margin of ``halo`` input pixels (the receptive radius) that is thrown away, so the tiles are
exact, and each finished tile is quantised straight into the integer output array. Networks with
whole-image statistics run in one call on the whole image, up to :data:`WHOLE_IMAGE_MAX_PIXELS` (the
full bundle streams larger ones in bands through the architecture's own streamed forward, which
needs torch).

Importing this module never imports torch (``tests/test_lite.py`` checks it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgtrans import __version__, tilegrid
from imgtrans.channels import DEFAULT_STYLE_SIZE
from imgtrans.cli_args import noise_level_arg, noise_level_problem, pixels_or_zero, positive_int, printable

log = logging.getLogger(__name__)

INDEX_NAME = "index.json"
INDEX_FORMAT = 1
DEFAULT_TILE = 512  # input pixels per tile edge (plus the halo on each side)
DEFAULT_HALO = 32  # when the index does not say (a local network of unknown radius)
WHOLE_IMAGE_MAX_PIXELS = 6_000_000  # CycleGAN in one call: ~1.1 KB of activations per pixel
DEFAULT_NOISE_LEVEL = 25.0
EXIT_OK, EXIT_FAILURES, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130

StepFn = Callable[[int, int], None]


class LiteError(Exception):
    """A problem the user can fix; ``str(e)`` is one line."""


def _noop(done: int, total: int) -> None:
    pass


# --------------------------------------------------------------------------------------- models


def models_dir() -> Path:
    """Where the exported graphs are: ``IMGTRANS_ONNX_MODELS`` if set, else ``<resources>/onnx``
    (inside the lite bundle: ``_internal/resources/onnx``)."""
    env = os.environ.get("IMGTRANS_ONNX_MODELS")
    if env:
        return Path(env).expanduser()
    from imgtrans.paths import resources_dir

    return resources_dir() / "onnx"


@dataclass
class LiteModel:
    """One exported model (an ``index.json`` entry) and its onnxruntime session (made on first use)."""

    id: str
    path: Path
    task: str
    arch: str
    scale: int = 1
    in_channels: int = 3
    out_channels: int = 3
    size_multiple: int = 1
    min_size: int = 1
    edge_context: int = 0  # mirrored border added before and cut after a run (the weights' metadata)
    halo: int | None = DEFAULT_HALO
    execution: str = "tiles"  # ArchSpec.execution at export time
    takes_noise_level: bool = False
    value_range: tuple[float, float] = (0.0, 1.0)
    name: str = ""
    description: str = ""
    licence: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    _session: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_index(cls, model_id: str, entry: dict[str, Any], folder: Path) -> LiteModel:
        vr = entry.get("value_range") or (0.0, 1.0)
        halo = entry.get("halo")
        tile_safe = bool(entry.get("tile_safe", True))
        multiple = max(1, int(entry.get("size_multiple", 1)))
        # indexes written before "execution"/"min_size" existed: tile_safe, and a CycleGAN's 8 x multiple
        execution = str(entry.get("execution") or ("tiles" if tile_safe else "stream"))
        minimum = int(entry.get("min_size") or (multiple if tile_safe else 8 * multiple))
        return cls(
            id=model_id,
            path=folder / entry["file"],
            task=str(entry.get("task", "unknown")),
            arch=str(entry.get("arch", "")),
            scale=int(entry.get("scale", 1)),
            in_channels=int(entry.get("in_channels", 3)),
            out_channels=int(entry.get("out_channels", 3)),
            size_multiple=multiple,
            min_size=max(multiple, minimum),
            edge_context=max(0, int(entry.get("edge_context", 0))),
            halo=int(halo) if halo is not None else (DEFAULT_HALO if tile_safe else None),
            execution=execution,
            takes_noise_level=bool(entry.get("takes_noise_level", False)),
            value_range=(float(vr[0]), float(vr[1])),
            name=str(entry.get("name", model_id)),
            description=str(entry.get("description", "")),
            licence=str(entry.get("licence", "")),
            info=dict(entry),
        )

    def session(self):
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime as ort
                except ImportError:
                    raise LiteError("onnxruntime is not installed (pip install onnxruntime)") from None
                if not self.path.is_file():
                    raise LiteError(f"model graph {self.path} is missing")
                so = ort.SessionOptions()
                so.intra_op_num_threads = self.threads or default_threads()
                so.inter_op_num_threads = 1
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                so.log_severity_level = 3
                try:
                    self._session = ort.InferenceSession(str(self.path), sess_options=so,
                                                         providers=["CPUExecutionProvider"])
                except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types
                    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                    raise LiteError(f"cannot load {self.path.name}: {first}") from None
            return self._session

    why = "the lite bundle runs ONNX graphs exported at build time"

    def describe(self) -> str:
        return "onnxruntime (imgtrans-lite)"

    def run(self, x: np.ndarray, noise_level: float | None = None) -> np.ndarray:
        """``(1,C,H,W)`` float32 in [0,1] (H, W multiples of ``size_multiple``) ->
        ``(1,C_out,H*s,W*s)`` float32 in [0,1], clipped; same as the torch engine's ``model.run``."""
        lo, hi = self.value_range
        inp = x.astype(np.float32, copy=False)
        if (lo, hi) != (0.0, 1.0):
            inp = inp * np.float32(hi - lo) + np.float32(lo)
        feeds = {"x": np.ascontiguousarray(inp)}
        if self.takes_noise_level:
            sigma = noise_level if noise_level is not None else DEFAULT_NOISE_LEVEL
            feeds["sigma"] = np.array([sigma / 255.0], dtype=np.float32)
        (y,) = self.session().run(None, feeds)
        if (lo, hi) != (0.0, 1.0):
            y = (y - np.float32(lo)) / np.float32(hi - lo)
        return np.clip(y, 0.0, 1.0, out=y)


def read_index(folder: Path | None = None) -> tuple[Path, dict[str, dict[str, Any]]]:
    folder = Path(folder) if folder is not None else models_dir()
    path = folder / INDEX_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LiteError(f"no exported models: {path} not found (run packaging/export_onnx.py)") from None
    except (OSError, ValueError) as exc:
        raise LiteError(f"cannot read {path}: {exc}") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise LiteError(f"{path}: no 'models' table")
    return folder, models


def list_models(folder: Path | None = None) -> list[LiteModel]:
    folder, models = read_index(folder)
    return [LiteModel.from_index(k, v, folder) for k, v in models.items()]


def find_model(ref: str, folder: Path | None = None) -> LiteModel:
    """An exported model by id (case-insensitive; a CycleGAN pair's bare name means ``-a2b``)."""
    entries = list_models(folder)
    for wanted in (ref.lower(), f"{ref.lower()}-a2b"):
        for m in entries:
            if m.id.lower() == wanted:
                return m
    names = ", ".join(m.id for m in entries) or "(none)"
    raise LiteError(f"unknown model {ref!r}; the lite bundle has: {names}")


def default_threads() -> int:
    env = os.environ.get("IMGTRANS_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# --------------------------------------------------------------------------------------- tiling


def quantize(y: np.ndarray, bits: int | None) -> np.ndarray:
    """float [0,1] -> uint8/uint16 exactly as :mod:`imgtrans.imageio` stores it; ``bits`` None keeps
    float32 (clipped to [0,1], NaN -> 0)."""
    if bits is None:
        y = np.nan_to_num(np.asarray(y, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(y, 0.0, 1.0, out=y)
    from imgtrans.imageio.encode import quantize as stored

    return stored(y, bits)


def run_array(model: LiteModel, pixels: np.ndarray, *, bits: int | None = 8, tile: int | None = None,
              noise_level: float | None = None, step: StepFn = _noop) -> np.ndarray:
    """Run ``model`` on ``(H,W,C_in)`` float32 pixels in [0,1]; returns ``(H*s,W*s,C_out)`` as uint8
    (``bits`` 8), uint16 (16) or float32 (None).

    Local networks: tiles of ``tile`` input pixels (default :data:`DEFAULT_TILE`; 0 = whole image)
    read with ``halo`` pixels of context on every side that has a neighbour; each tile's core is
    quantised into the output array, so no float copy of the whole output exists. Instance-norm
    generators: the whole (padded) image in one call, refused above :data:`WHOLE_IMAGE_MAX_PIXELS`.
    A model with an ``edge_context`` runs on the image with that many pixels mirrored onto every side
    (replicated when the image is too small), cut off the output again, as :mod:`imgtrans.tiling`."""
    h, w, c = pixels.shape
    if c != model.in_channels:
        raise ValueError(f"{model.id} takes {model.in_channels} channel(s), got {c}")
    ctx = model.edge_context
    padded = tilegrid.add_border_array(pixels, ctx)
    out = _run_array(model, padded, bits=bits, tile=tile, noise_level=noise_level, step=step)
    return tilegrid.cut_border(out, ctx, model.scale, h, w)


def _run_array(model: LiteModel, pixels: np.ndarray, *, bits: int | None, tile: int | None,
               noise_level: float | None, step: StepFn) -> np.ndarray:
    h, w, _ = pixels.shape
    s, m = model.scale, model.size_multiple
    x = pixels.transpose(2, 0, 1)[None]  # (1,C,H,W) view, tiles are copied as they are cut
    dtype = np.float32 if bits is None else (np.uint8 if bits == 8 else np.uint16)
    if model.execution != "tiles" or model.halo is None or tile == 0:
        if model.execution != "tiles" and h * w > WHOLE_IMAGE_MAX_PIXELS:
            raise LiteError(f"{model.id} ({model.arch}) needs whole-image statistics and the lite variant runs it "
                            f"in one piece up to {WHOLE_IMAGE_MAX_PIXELS / 1e6:.0f} megapixels; this image has "
                            f"{h * w / 1e6:.1f} (the full bundle streams larger images)")
        y = model.run(tilegrid.pad_array(np.ascontiguousarray(x, dtype=np.float32), m, model.min_size), noise_level)
        step(1, 1)
        return np.ascontiguousarray(quantize(y[0, :, : h * s, : w * s].transpose(1, 2, 0), bits))
    xp = tilegrid.pad_array(x, m, model.min_size)
    ph, pw = xp.shape[2], xp.shape[3]
    out = np.empty((ph * s, pw * s, model.out_channels), dtype=dtype)
    edge = max(m, (tile or DEFAULT_TILE) // m * m)
    halo = tilegrid.round_up(model.halo, m)
    regions = tilegrid.regions(ph, pw, edge, m)
    for i, (y0, x0, th, tw) in enumerate(regions):
        _kept, (cy0, cx0, cy1, cx1) = tilegrid.tile_window(y0, x0, th, tw, ph, pw, halo)
        y = model.run(np.ascontiguousarray(xp[:, :, cy0:cy1, cx0:cx1], dtype=np.float32), noise_level)
        core = y[0, :, (y0 - cy0) * s : (y0 - cy0 + th) * s, (x0 - cx0) * s : (x0 - cx0 + tw) * s]
        out[y0 * s : (y0 + th) * s, x0 * s : (x0 + tw) * s] = quantize(core.transpose(1, 2, 0), bits)
        step(i + 1, len(regions))
    if (ph, pw) != (h, w):
        out = np.ascontiguousarray(out[: h * s, : w * s])
    return out


def process_image(model: LiteModel, img, *, out_format: str | None, tile: int | None = None,
                  noise_level: float | None = None, style_size: int | None = None, step: StepFn = _noop):
    """An :class:`imgtrans.imageio.Image` in, the output Image: the torch engine's per-image steps
    (:func:`imgtrans.channels.process_image`) with this module's runner; ``noise_level`` None: auto. Style models run at
    ``style_size`` (long side; default :data:`~imgtrans.channels.DEFAULT_STYLE_SIZE`, 0 = full
    resolution)."""
    from imgtrans import channels

    def run_integer(pixels, bits, report, level):
        return run_array(model, pixels, bits=bits, tile=tile, noise_level=level,
                         step=lambda done, total: report(done / max(total, 1)))

    def run_float(plane, report, level):
        return run_array(model, plane, bits=None, tile=tile, noise_level=level,
                         step=lambda done, total: report(done / max(total, 1)))

    size = DEFAULT_STYLE_SIZE if style_size is None else style_size
    return channels.process_image(model, img, noise_level=noise_level, style_size=size, out_format=out_format,
                                  run_integer=run_integer, run_float=run_float,
                                  step=lambda fraction: step(round(fraction * 1000), 1000))


# ------------------------------------------------------------------------------------------ CLI


def _err(message: str) -> None:
    print(f"imgtrans-lite: error: {printable(message)}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imgtrans-lite",
        description="imgtrans, small variant: runs the bundled models (exported to ONNX) with onnxruntime on the "
                    "CPU; no PyTorch, no desktop app.")
    parser.add_argument("--version", action="version", version=f"imgtrans-lite {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more output")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="folder with index.json and the .onnx graphs (default: the bundled ones)")
    sub = parser.add_subparsers(dest="command")
    conv = sub.add_parser("convert", help="convert images or folders")
    conv.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    conv.add_argument("-m", "--model", required=True, help="model id from `imgtrans-lite models`")
    conv.add_argument("-o", "--output", required=True, type=Path, help="output folder (created if needed)")
    conv.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    conv.add_argument("--flat", action="store_true", help="do not recreate the input folder tree under OUTPUT")
    conv.add_argument("--tile", type=pixels_or_zero, default=None, metavar="N",
                      help=f"tile edge in input pixels for local models (default {DEFAULT_TILE}; 0 = whole image)")
    conv.add_argument("--threads", type=positive_int, default=None, metavar="N", help="compute threads")
    conv.add_argument("--format", dest="fmt", default="same", choices=["same", "png", "jpg", "webp", "tiff"])
    conv.add_argument("--jpeg-quality", type=int, default=95, metavar="Q", help="JPEG/WebP quality 1-100 (default 95)")
    conv.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    conv.add_argument("--suffix", default="", help="added to output file names, e.g. _x2")
    conv.add_argument("--style-size", type=pixels_or_zero, default=None, metavar="PX",
                      help="style models: long side in pixels they run at, resized back afterwards "
                           "(default 512; 0 = full resolution)")
    conv.add_argument("--noise-level", type=noise_level_arg, default="auto", metavar="SIGMA",
                      help="denoise strength (noise sigma on 0-255, 0-100) for models that take one; default auto: "
                           "measured on each image")
    conv.add_argument("--max-pixels", type=positive_int, default=None, metavar="N",
                      help="refuse images with more pixels than this (default 200 million)")
    models = sub.add_parser("models", help="list the bundled models")
    models.add_argument("--json", action="store_true", help="machine-readable list")
    return parser


def cmd_models(args: argparse.Namespace) -> int:
    entries = list_models(args.models_dir)
    if args.json:
        print(json.dumps([{"id": m.id, "name": m.name, "task": m.task, "arch": m.arch, "scale": m.scale,
                           "path": str(m.path), "takes_noise_level": m.takes_noise_level,
                           "description": m.description, "licence": m.licence} for m in entries], indent=2))
        return EXIT_OK
    width = max((len(m.id) for m in entries), default=0)
    for m in entries:
        scale = f"x{m.scale}" if m.scale > 1 else "  "
        print(f"  {m.id:<{width}}  {m.task:<7}  {scale:>3}  {m.name}")
    return EXIT_OK


def _prepare(model: LiteModel, options) -> LiteModel:
    return model


def _process(model: LiteModel, img, options, step, out_format: str):
    return process_image(model, img, out_format=out_format, tile=options.tile, noise_level=options.noise_level,
                         style_size=options.style_size,
                         step=lambda done, total: step(done / max(total, 1)) if step is not None else None)


def _provenance(model: LiteModel, model_ref: str, options, src: Path, rel: Path | None) -> dict[str, str]:
    from imgtrans.engine import noise_settings  # torch-free

    settings: dict[str, Any] = {"tile": options.tile if options.tile is not None else DEFAULT_TILE, "device": "cpu",
                                "backend": "onnxruntime (imgtrans-lite)"}
    settings.update(noise_settings(model, options))
    if model.task == "style":
        settings["style_size"] = options.style_size or "full"
    return {"software": f"imgtrans-lite {__version__}", "model": model.id, "model_name": model.name,
            "arch": model.arch, "task": model.task, "scale": str(model.scale),
            "settings": json.dumps(settings, sort_keys=True),
            "source": rel.as_posix() if rel is not None else src.name}


def cmd_convert(args: argparse.Namespace) -> int:
    """The torch engine's batch (:func:`imgtrans.engine.convert`: resume rules, prefetch, atomic
    writes, the disk-full stop) with this module's runner; events shown by the full command line's
    console reporter (:class:`imgtrans.cli_report.ConsoleReporter`), without progress."""
    from imgtrans.cli_report import ConsoleReporter
    from imgtrans.engine import ConvertOptions, Runner, convert, plan_jobs  # torch-free parts
    from imgtrans.imageio import DEFAULT_MAX_PIXELS

    if not 1 <= args.jpeg_quality <= 100:
        _err("--jpeg-quality must be between 1 and 100")
        return EXIT_USAGE
    if noise_level_problem(args.noise_level):
        _err(noise_level_problem(args.noise_level))
        return EXIT_USAGE
    model = find_model(args.model, args.models_dir)
    model.threads = args.threads
    if args.noise_level is not None and not model.takes_noise_level:
        print(f"imgtrans-lite: note: {model.id} takes no noise level; --noise-level ignored", file=sys.stderr)
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _err(f"cannot create output folder {args.output}: {exc.strerror or exc}")
        return EXIT_FAILURES
    options = ConvertOptions(output_dir=args.output, fmt=args.fmt, suffix=args.suffix, recursive=args.recursive,
                             keep_tree=not args.flat, noise_level=args.noise_level, overwrite=args.overwrite,
                             tile=args.tile, jpeg_quality=args.jpeg_quality,
                             max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS)
    if args.style_size is not None:
        options.style_size = args.style_size
    jobs, skipped = plan_jobs(args.inputs, options)
    print(f"imgtrans-lite: {model.id} ({model.arch}, onnxruntime); {len(jobs)} image(s) -> {args.output}",
          file=sys.stderr)
    runner = Runner(prepare=_prepare, process=_process, provenance=_provenance)
    console = ConsoleReporter("imgtrans-lite", verbose=args.verbose)
    cancel = threading.Event()
    summary = console.follow(convert(args.inputs, model, options, model_ref=model.id, cancel=cancel,
                                     plan=(jobs, skipped), model_id=model.id, runner=runner), cancel)
    if summary is None:
        return EXIT_CANCELLED
    console.print_summary(args.output)
    if summary.cancelled:
        return EXIT_CANCELLED
    return EXIT_OK if summary.ok else EXIT_FAILURES


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return {"convert": cmd_convert, "models": cmd_models}[args.command](args)
    except LiteError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("imgtrans-lite: interrupted; outputs written so far are complete", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        return EXIT_OK


__all__ = ["LiteError", "LiteModel", "find_model", "list_models", "main", "models_dir", "process_image",
           "read_index", "run_array"]

if __name__ == "__main__":
    raise SystemExit(main())
