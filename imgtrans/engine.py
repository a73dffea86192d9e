"""The batch engine shared by the CLI and the GUI.

:func:`convert` takes inputs, a model and options and returns a generator of :class:`Event`s. The
work runs in a background thread (decode of the next image and encode of finished ones overlap
with inference in small thread pools); the generator only hands over events, and setting the
``cancel`` event (or closing the generator) stops the run within one tile. Nothing is lost: inputs
are never written, outputs appear atomically (temp file + rename) and only when complete, an
existing output is skipped unless asked otherwise, so a killed batch resumes by running it again.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from imgtrans import __version__
from imgtrans.channels import DEFAULT_STYLE_SIZE
from imgtrans.imageio import (
    DEFAULT_MAX_PIXELS,
    ImageReadError,
    ImageWriteError,
    output_format_for,
    sweep_stale_temp_files,
)

log = logging.getLogger(__name__)

SAME_FILE = "same file as"
OUTPUT_OF = "output of another input"  # a file this tool wrote from another file among the inputs
EXISTS = "output exists"  # benign: this model with these settings made it (a resumed batch)
OVERWRITES_INPUT = "would overwrite an input"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
SUFFIX_FORMAT = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF",
}


class Cancelled(Exception):
    """Raised inside the worker when the user cancels."""


class DiskFull(Exception):
    """Raised inside the worker when an output could not be written for lack of space."""


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
    noise_auto: bool = False  # set on the per-image copy whose noise_level was measured (recorded as auto)
    max_pixels: int = DEFAULT_MAX_PIXELS
    io_threads: int = 2
    backend: str = "auto"  # auto | eager | compile | onnx (see imgtrans.backends)
    threads: int | None = None  # compute threads; None: the CPUs this process may use
    style_size: int = DEFAULT_STYLE_SIZE  # style models: long side they run at; 0 = full resolution
    style_strength: float = 1.0  # style models: 0 = input unchanged, 1 = full style


@dataclass
class Job:
    """One input file and where its output goes. ``rel``: the input's path relative to the input
    (file or folder) it was found under, as given; recorded in the output's provenance."""

    src: Path
    dst: Path
    rel: Path | None = None


@dataclass
class Plan:
    """What :func:`make_plan` decided. ``unsearched``: ``(input folder, number of sub-folders not
    searched)`` for folders walked without ``recursive``; ``renamed``: the jobs whose output name
    was changed because another input would have had the same output name."""

    jobs: list[Job] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    unsearched: list[tuple[Path, int]] = field(default_factory=list)
    renamed: list[Job] = field(default_factory=list)


@dataclass
class Event:
    """Progress report. ``kind``: ``plan`` (total known), ``start`` (a file begins), ``progress``
    (``fraction`` of the current file done), ``noise`` (``message``: the noise level measured on the
    current file for a denoiser left on auto, e.g. "noise level 12.3 (estimated)"), ``note`` (``message``: something the output format
    cannot keep, before its ``done``), ``done``, ``skipped`` and ``failed`` (with ``message``),
    ``cancelled``, ``stopped`` (the batch could not go on, e.g. disk full; ``message`` says why),
    ``finished`` (``summary`` filled)."""

    kind: str
    index: int = 0
    total: int = 0
    src: Path | None = None
    dst: Path | None = None
    fraction: float = 0.0
    message: str = ""
    seconds: float = 0.0
    summary: "Summary | None" = None
    noise_level: float | None = None  # ``noise``: the level measured (sigma on 0-255)


@dataclass
class Summary:
    converted: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False
    stopped: str = ""  # why the batch stopped early (disk full), else empty
    notes: list[tuple[Path, str]] = field(default_factory=list)  # converted, with something the format could not keep
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled and not self.stopped


# ---------------------------------------------------------------------------------------- planning


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def collect_inputs(
    inputs: Iterable[str | os.PathLike],
    recursive: bool,
    exclude: Path | None = None,
    unsearched: list[tuple[Path, Path]] | None = None,
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """Expand files and folders into ``(file, path relative to its root)`` pairs.

    Files named explicitly are always tried (the decoder decides); inside folders only image
    suffixes are taken and everything else is reported as skipped with its reason. Symlink loops
    and unreadable folders are reported, never followed forever; a second path to a file already
    taken is reported as a duplicate. ``exclude`` (the output folder) is never walked, so an output
    folder inside an input folder is not converted again on a re-run. Without ``recursive``, the
    sub-folders left alone are appended to ``unsearched`` as ``(input folder, sub-folder)``."""
    found: list[tuple[Path, Path]] = []
    skipped: list[tuple[Path, str]] = []
    seen: dict[Path, Path] = {}
    excluded = exclude.resolve() if exclude is not None else None

    def take(path: Path, rel: Path) -> None:
        key = path.resolve()
        if key in seen:
            skipped.append((path, f"{SAME_FILE} {seen[key]}"))
        else:
            seen[key] = path
            found.append((path, rel))

    for raw in inputs:
        path = Path(raw).expanduser()
        if not path.exists():
            skipped.append((path, "no such file or folder"))
            continue
        if path.is_file():
            take(path, Path(path.name))
            continue
        if not path.is_dir():
            skipped.append((path, "not a regular file"))
            continue
        visited: set[Path] = set()
        stack = [path]
        while stack:
            folder = stack.pop()
            real = folder.resolve()
            if real in visited:
                skipped.append((folder, "folder already visited (symlink loop)"))
                continue
            visited.add(real)
            try:
                children = sorted(folder.iterdir(), key=lambda p: p.name)
            except OSError as exc:
                skipped.append((folder, f"cannot list folder ({exc.strerror or exc})"))
                continue
            subdirs = []
            for child in children:
                if _is_hidden(child):
                    continue
                try:
                    is_dir = child.is_dir()
                    is_file = child.is_file()
                except OSError as exc:
                    skipped.append((child, f"cannot access ({exc.strerror or exc})"))
                    continue
                if is_dir:
                    if excluded is not None and child.resolve() == excluded:
                        continue
                    if recursive:
                        subdirs.append(child)
                    elif unsearched is not None:
                        unsearched.append((path, child))
                    continue
                if not is_file:
                    skipped.append((child, "not a regular file" if child.exists() else "broken link"))
                    continue
                if child.suffix.lower() not in IMAGE_SUFFIXES:
                    skipped.append((child, f"not an image file ({child.suffix or 'no extension'})"))
                    continue
                take(child, child.relative_to(path))
            stack.extend(reversed(subdirs))
    return found, skipped


def _safe_rel(rel: Path) -> Path:
    """Drop anything that could leave the output folder (absolute parts, ``..``)."""
    parts = [p for p in rel.parts if p not in ("", ".", "..") and not Path(p).is_absolute() and "\x00" not in p]
    return Path(*parts) if parts else Path("image")


def _name_outputs(found: list[tuple[Path, Path]], options: ConvertOptions, out_root: Path) -> list[tuple[Path, Path, Path, Path]]:
    """``(src, rel, natural output, output)`` for each input: the natural output is what its name
    alone gives; the output differs from it when inputs would share an output name (``a.png`` and
    ``a.jpg`` written as PNG become ``a_png.png`` and ``a_jpg.png``)."""
    proposals: list[tuple[Path, Path, Path, Path]] = []  # src, rel, rel dir, out name
    for src, rel in found:
        safe = _safe_rel(rel)
        ext = output_format_for(SUFFIX_FORMAT.get(src.suffix.lower(), "PNG"), options.fmt)
        if options.fmt == "same" and src.suffix.lower() in (".jpeg", ".tif"):
            ext = src.suffix.lower().lstrip(".")  # photo.tif -> photo.tif, not photo.tiff
        rel_dir = safe.parent if options.keep_tree else Path()
        proposals.append((src, rel, rel_dir, Path(f"{safe.stem}{options.suffix}.{ext}")))
    counts: dict[Path, int] = {}
    for _src, _rel, rel_dir, name in proposals:
        key = rel_dir / name.name.lower()
        counts[key] = counts.get(key, 0) + 1
    used = {rel_dir / name.name.lower() for _s, _r, rel_dir, name in proposals if counts[rel_dir / name.name.lower()] == 1}
    named = []
    for src, rel, rel_dir, name in proposals:
        natural = name
        if counts[rel_dir / name.name.lower()] > 1:
            tag = src.suffix.lower().lstrip(".") or "noext"
            base = f"{name.stem}_{tag}"
            name, n = Path(f"{base}{name.suffix}"), 2
            while rel_dir / name.name.lower() in used:
                name, n = Path(f"{base}_{n}{name.suffix}"), n + 1
        used.add(rel_dir / name.name.lower())
        named.append((src, rel, out_root / rel_dir / natural, out_root / rel_dir / name))
    return named


def _imgtrans_record(path: Path) -> dict | None:
    """The provenance record of a file imgtrans wrote, else None (also when unreadable)."""
    from imgtrans.imageio import read_provenance

    try:
        record = read_provenance(path)
    except Exception:  # noqa: BLE001 - unreadable: not provably ours
        return None
    if not record or not str(record.get("software", "")).startswith("imgtrans"):
        return None
    return record


def _derived_from_inputs(found: list[tuple[Path, Path]], explicit: set[Path]) -> dict[Path, Path]:
    """Files found in folders that imgtrans made from another file found with them:
    ``{derived file: its source}``. A candidate's name starts with its source's stem (outputs are
    named ``stem + suffix``), and its provenance names that source: the same folder and file name,
    or the same path relative to the input folder (an older run's output folder inside it). Files
    named on the command line are always inputs."""
    by_name: dict[str, list[tuple[Path, Path]]] = {}
    stems: dict[str, int] = {}
    for src, rel in found:
        by_name.setdefault(src.name.lower(), []).append((src, rel))
        stems[src.stem.lower()] = stems.get(src.stem.lower(), 0) + 1
    derived: dict[Path, Path] = {}
    for cand, _rel in found:
        stem = cand.stem.lower()
        # only a name that extends another file's stem can be an output (its header is read then)
        if cand.resolve() in explicit or not (stems[stem] > 1 or any(stem[:k] in stems for k in range(1, len(stem)))):
            continue
        record = _imgtrans_record(cand)
        if record is None:
            continue
        source = Path(str(record.get("source", "")).replace("\\", "/"))
        for src, rel in by_name.get(source.name.lower(), []):
            if src.resolve() == cand.resolve() or not stem.startswith(src.stem.lower()):
                continue
            if src.parent.resolve() == cand.parent.resolve() or rel.as_posix().lower() == source.as_posix().lower():
                derived[cand] = src
                break
    return derived


def output_dir_problem(folder: Path) -> str | None:
    """None if outputs can be written into ``folder``, else why not (a phrase for after the folder's
    name). Creates nothing: an existing folder is tried with a temporary file, a missing one is
    judged by its nearest existing parent (which must let folders be made in it)."""
    import tempfile

    folder = Path(folder).expanduser()
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    if probe == folder:
        try:
            fd, tmp = tempfile.mkstemp(prefix=".imgtrans-write-test-", dir=folder)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            return str(exc.strerror or exc)
        return None
    if not os.access(probe, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and bool(os.statvfs(probe).f_flag & getattr(os, "ST_RDONLY", 1))
        return f"{probe} is {'on a read-only file system' if read_only else 'not writable'}"
    return None


def _written_for(candidate: Path, owner: Path) -> bool:
    """Whether ``candidate`` is an output this tool wrote from an input named like ``owner``: its
    provenance record (which only imgtrans writes) names ``owner``'s file as its source."""
    record = _imgtrans_record(candidate)
    return record is not None and Path(str(record.get("source", "")).replace("\\", "/")).name == owner.name


def make_plan(inputs: Iterable[str | os.PathLike], options: ConvertOptions) -> Plan:
    """Decide every output path. Two inputs never share an output (``a.png`` and ``a.jpg`` written
    as PNG become ``a_png.png`` and ``a_jpg.png``), an output never lands on an input, and no output
    escapes ``options.output_dir``.

    A file found among the inputs that this tool made from another of them is not an input: it is
    reported as skipped (:data:`OUTPUT_OF`). That is a file found in a folder whose provenance names
    a file found beside it or at the same relative path (:func:`_derived_from_inputs`: outputs
    written next to their originals by any earlier run, with any suffix), or a file at the output
    path of another input whose provenance names that input. So ``convert photos -o photos --suffix
    _x2`` run twice never makes ``a_x2_x2.jpg``, and a later ``--suffix _dn`` run never makes
    ``a_x2_dn.jpg``. A file without such a record that an output would replace stays an input, and
    the output is refused."""
    inputs = list(inputs)
    out_root = Path(options.output_dir).expanduser()
    pairs: list[tuple[Path, Path]] = []
    found, skipped = collect_inputs(inputs, options.recursive, exclude=out_root, unsearched=pairs)
    plan = Plan(skipped=skipped)
    by_root: dict[Path, set[Path]] = {}
    for root, sub in pairs:
        by_root.setdefault(root, set()).add(sub.resolve())
    plan.unsearched = [(root, len(subs)) for root, subs in by_root.items()]
    out_real = out_root.resolve()
    explicit = {Path(raw).expanduser().resolve() for raw in inputs if Path(raw).expanduser().is_file()}
    derived = _derived_from_inputs(found, explicit)
    own_outputs: list[tuple[Path, Path]] = list(derived.items())  # (output found among the inputs, its input)
    found = [(src, rel) for src, rel in found if src not in derived]
    checked: set[tuple[Path, Path]] = set()
    while True:
        named = _name_outputs(found, options, out_root)
        by_real = {src.resolve(): src for src, _rel in found}
        drop: dict[Path, Path] = {}
        for src, _rel, natural, dst in named:
            for target in {natural, dst}:
                real = target.resolve()
                other = by_real.get(real)
                if other is None or other is src or real in drop or (real, src) in checked:
                    continue
                checked.add((real, src))
                if _written_for(other, src):
                    drop[real] = src
        if not drop:
            break
        own_outputs += [(by_real[real], src) for real, src in drop.items()]
        found = [(src, rel) for src, rel in found if src.resolve() not in drop]
    for out, src in own_outputs:
        plan.skipped.append((out, f"{OUTPUT_OF} ({src})"))
    input_paths = {src.resolve() for src, _ in found}
    for src, rel, natural, dst in named:
        real = dst.resolve()
        if out_real != real and out_real not in real.parents:
            plan.skipped.append((src, "output path would leave the output folder"))
            continue
        if real in input_paths:
            plan.skipped.append((src, f"output {dst} {OVERWRITES_INPUT}; choose another output folder or a --suffix"))
            continue
        job = Job(src, dst, rel)
        plan.jobs.append(job)
        if dst != natural:
            plan.renamed.append(job)
    return plan


def plan_jobs(inputs: Iterable[str | os.PathLike], options: ConvertOptions) -> tuple[list[Job], list[tuple[Path, str]]]:
    """:func:`make_plan`'s jobs and skips."""
    plan = make_plan(inputs, options)
    return plan.jobs, plan.skipped


# ------------------------------------------------------------------------------------------ running


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

    prepare_model(model, options)
    return prepare_backend(model, options.backend, threads=options.threads)


def _same_model(a: str, b: str) -> bool:
    """Catalog ids are compared as they are; weight files by file name (``./m.safetensors`` = ``m.safetensors``)."""
    return a == b or Path(a.replace("\\", "/")).name == Path(b.replace("\\", "/")).name


def _same_value(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def existing_output_problem(dst: Path, model_id: str, options: ConvertOptions) -> str | None:
    """Why an existing output ``dst`` is not this batch's result, or None when it is (the same model
    with the same pixel-changing settings made it: skipping it resumes the batch). A file imgtrans
    did not write, or wrote with another model, noise level or style scale, is never replaced
    without ``overwrite``, and keeping it silently would hand the user the wrong picture."""
    if dst.suffix.lower() == ".bmp":
        return None  # BMP keeps no record: whose it is cannot be told
    hint = "use --overwrite to replace it, or choose another output folder or --suffix"
    record = _imgtrans_record(dst)
    if record is None:
        return f"{dst.name} already exists and imgtrans did not write it ({hint})"
    made_by = str(record.get("model", ""))
    if not _same_model(made_by, model_id):
        return f"{dst.name} already exists, made by {made_by or 'another model'}, not {model_id} ({hint})"
    try:
        settings = json.loads(record.get("settings") or "{}")
    except ValueError:
        settings = {}
    if "noise_level" in settings:
        # auto measures the same level on the same input again, so an output made on auto is this
        # batch's when it runs on auto; a level set by hand must match the level recorded
        made_auto = bool(settings.get("noise_auto"))
        if options.noise_level is None and not made_auto:
            return f"{dst.name} already exists, made with noise level {settings['noise_level']}, not auto ({hint})"
        if options.noise_level is not None and not _same_value(settings["noise_level"], options.noise_level):
            made = f"auto ({settings['noise_level']})" if made_auto else settings["noise_level"]
            return f"{dst.name} already exists, made with noise level {made}, not {options.noise_level} ({hint})"
    wanted = options.style_size or "full"
    if "style_size" in settings and not _same_value(settings["style_size"], wanted):
        return f"{dst.name} already exists, made with style scale {settings['style_size']}, not {wanted} ({hint})"
    return None


def noise_settings(model, options: ConvertOptions) -> dict:
    """What a denoiser's output records about its strength: ``noise_level`` (the level used) and,
    when that level was measured on the image, ``noise_auto: true``; nothing for other models."""
    if not model.takes_noise_level:
        return {}
    if options.noise_level is None:  # not resolved per image (a direct call): what auto means
        return {"noise_level": "auto", "noise_auto": True}
    return {"noise_level": options.noise_level, **({"noise_auto": True} if options.noise_auto else {})}


def auto_noise_options(model, img, options: ConvertOptions) -> tuple[ConvertOptions, str | None]:
    """``options`` for one image: for a denoiser with a strength input left on auto, a copy with the
    level measured on ``img`` (:func:`imgtrans.channels.auto_noise_level`) and a line saying it;
    else ``options`` itself and None."""
    import dataclasses

    from imgtrans import noise
    from imgtrans.channels import auto_noise_level

    if not model.takes_noise_level or options.noise_level is not None:
        return options, None
    level, per_channel = auto_noise_level(img)
    return dataclasses.replace(options, noise_level=level, noise_auto=True), noise.describe(level, per_channel)


def _provenance(model, model_ref: str, options: ConvertOptions, src: Path, source: Path | None = None) -> dict[str, str]:
    """The record written into each output. ``source``: the input's path relative to the input it
    was found under (``src``'s file name when not given)."""
    settings = {"tile": options.tile if options.tile is not None else "auto", "device": options.device,
                "backend": getattr(model, "name", options.backend)}
    settings.update(noise_settings(model, options))
    if model.task == "style":
        settings["style_size"] = options.style_size or "full"
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
                                  out_format=out_format, run_integer=run_integer, run_float=run_float, step=step)


_LARGE_BUFFER = 64 << 20


def _trim_memory() -> None:
    """Give freed heap memory back to the OS (glibc only). Tiles and decoders free many mid-sized
    buffers that glibc keeps in its arenas; trimming between decode, inference and encode keeps
    the peak of a huge image at what is really alive."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        _MALLOC_TRIM = False
        try:
            import ctypes

            _MALLOC_TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            pass
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (ImageReadError, ImageWriteError)) or type(exc).__name__ == "BackendError":
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (try a smaller --tile)"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


def convert(
    inputs: Iterable[str | os.PathLike],
    model,
    options: ConvertOptions,
    *,
    model_ref: str = "",
    cancel: threading.Event | None = None,
    plan: tuple[list[Job], list[tuple[Path, str]]] | None = None,
    model_id: str | None = None,
    runner: Runner | None = None,
) -> Iterator[Event]:
    """Convert ``inputs`` with ``model`` (a :class:`~imgtrans.weights.LoadedModel`); yields events.

    The model is prepared (device, precision) once. Closing the generator or setting ``cancel``
    stops the work within one tile; files already written stay, the current one is not written.
    ``plan`` is what :func:`plan_jobs` returned, when the caller already planned. ``model_id``: the
    id the outputs record (default: the model's ``id`` metadata, else ``model_ref``), needed when
    ``model`` is None because every output exists: an existing output made by another model or
    with other settings is reported as not converted (:func:`existing_output_problem`). ``runner``:
    what runs the network (default: PyTorch, :data:`TORCH_RUNNER`; the lite engine passes its own)."""
    cancel = cancel or threading.Event()
    jobs, skipped = plan if plan is not None else plan_jobs(inputs, options)
    events: queue.Queue[Event | None] = queue.Queue(maxsize=256)
    batch = _Batch(jobs, skipped, model, options, model_ref, cancel, events, model_id, runner or TORCH_RUNNER)
    worker = threading.Thread(target=batch.run, name="imgtrans-engine", daemon=True)
    worker.start()
    try:
        while True:
            event = events.get()
            if event is None:
                break
            yield event
    finally:
        cancel.set()
        # drain so the worker never blocks on a full queue while it winds down
        while worker.is_alive():
            try:
                events.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


class _Batch:
    """The worker side of :func:`convert`: decode ahead, infer, encode behind, report."""

    def __init__(self, jobs, skipped, model, options: ConvertOptions, model_ref: str, cancel: threading.Event,
                 events: queue.Queue, model_id: str | None = None, runner: Runner | None = None):  # fmt: skip
        self.jobs, self.skipped, self.model, self.options = jobs, skipped, model, options
        self.runner = runner or TORCH_RUNNER
        self.model_ref, self.cancel, self.events = model_ref, cancel, events
        if model_id is None:
            model_id = (model.metadata.get("id") if model is not None else None) or model_ref
        self.model_id = model_id  # what the outputs record as their model
        self.summary = Summary()
        self.total = len(jobs)
        self.reads: dict[int, Future] = {}
        self.writes: list[tuple[int, Job, Future, float]] = []
        self.disk_full: Path | None = None

    def emit(self, kind: str, **kw) -> None:
        self.events.put(Event(kind, total=self.total, **kw))

    def fail(self, src: Path, reason: str, **kw) -> None:
        self.summary.failed.append((src, reason))
        self.emit("failed", src=src, message=reason, **kw)

    def run(self) -> None:
        started = time.perf_counter()
        try:
            self.emit("plan", message=f"{self.total} file(s) to convert")
            for path, reason in self.skipped:
                if _is_error(reason):
                    self.fail(path, reason)
                else:
                    self.summary.skipped.append((path, reason))
                    self.emit("skipped", src=path, message=reason)
            todo = []
            for i, job in enumerate(self.jobs):
                if not self.options.overwrite and job.dst.exists():
                    problem = existing_output_problem(job.dst, self.model_id, self.options)
                    if problem:
                        self.fail(job.src, problem, index=i, dst=job.dst)
                        continue
                    reason = f"{EXISTS} (use --overwrite to replace it)"
                    self.summary.skipped.append((job.src, reason))
                    self.emit("skipped", index=i, src=job.src, dst=job.dst, message=reason)
                else:
                    todo.append((i, job))
            for folder in sorted({job.dst.parent for job in self.jobs}):
                if folder.is_dir():
                    sweep_stale_temp_files(folder)  # what a killed run's interrupted writes left
            if todo:
                if self.model is None:  # the caller saw every output existing; one went away since
                    raise RuntimeError("outputs changed while the batch started; run the same command again")
                self.model = self.runner.prepare(self.model, self.options)
                self.emit("backend", message=f"backend: {self.model.describe()} ({self.model.why})")
                with ThreadPoolExecutor(max_workers=max(1, self.options.io_threads), thread_name_prefix="imgtrans-io") as pool:
                    try:
                        self._loop(todo, pool)
                    finally:
                        self._finish_writes(block=True)
        except Cancelled:
            self.summary.cancelled = True
            self.emit("cancelled", message="cancelled")
        except DiskFull:
            left = self.total - len(self.summary.converted) - len(self.summary.failed) - len(self.summary.skipped)
            reason = (f"stopped: disk full while writing {self.disk_full}; {max(left, 0)} image(s) not converted; "
                      "free some space and run the same command again to finish")
            self.summary.stopped = reason
            self.emit("stopped", message=reason)
        except Exception as exc:  # noqa: BLE001 - e.g. CUDA requested without a GPU
            log.debug("batch failed", exc_info=True)
            self.fail(Path("<batch>"), _reason(exc))
        finally:
            self.summary.seconds = time.perf_counter() - started
            self.emit("finished", summary=self.summary, seconds=self.summary.seconds)
            self.events.put(None)

    def _prefetch(self, todo, k: int, pool: ThreadPoolExecutor) -> None:
        from imgtrans.imageio import read_image

        if k < len(todo) and k not in self.reads:
            self.reads[k] = pool.submit(read_image, todo[k][1].src, max_pixels=self.options.max_pixels)

    def _finish_writes(self, block: bool) -> None:
        for item in list(self.writes):
            i, job, fut, t0 = item
            if not block and not fut.done():
                continue
            self.writes.remove(item)
            try:
                fut.result()
            except Exception as exc:  # noqa: BLE001 - reported per file
                self.fail(job.src, _reason(exc), index=i, dst=job.dst)
                if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
                    self.disk_full = job.dst
            else:
                self.summary.converted.append(job.dst)
                self.emit("done", index=i, src=job.src, dst=job.dst, fraction=1.0, seconds=time.perf_counter() - t0)

    def _loop(self, todo, pool: ThreadPoolExecutor) -> None:
        from imgtrans.imageio import write_image

        for k, (i, job) in enumerate(todo):
            if self.cancel.is_set():
                raise Cancelled
            if self.disk_full is not None:
                raise DiskFull
            self._prefetch(todo, k, pool)
            self._prefetch(todo, k + 1, pool)
            t0 = time.perf_counter()
            self.emit("start", index=i, src=job.src, dst=job.dst)

            def step(fraction: float, i: int = i, job: Job = job) -> None:
                if self.cancel.is_set():
                    raise Cancelled
                self.emit("progress", index=i, src=job.src, dst=job.dst, fraction=fraction)

            try:
                img = self.reads.pop(k).result()
                for note in format_losses(img, job.dst.suffix):
                    self.summary.notes.append((job.src, note))
                    self.emit("note", index=i, src=job.src, dst=job.dst, message=note)
                large = img.pixels.nbytes >= _LARGE_BUFFER // 4
                if large:
                    _trim_memory()  # what the decoder freed
                options, measured = auto_noise_options(self.model, img, self.options)
                if measured:
                    self.emit("noise", index=i, src=job.src, dst=job.dst, message=measured,
                              noise_level=options.noise_level)
                out = self.runner.process(self.model, img, options, step, job.dst.suffix)
                del img  # the decoded input is not needed while the output is encoded
                if large:
                    _trim_memory()  # what the tiles freed, before the encoder needs room
                provenance = self.runner.provenance(self.model, self.model_ref, options, job.src, job.rel)
                job.dst.parent.mkdir(parents=True, exist_ok=True)
                fut = pool.submit(write_image, out, job.dst, fmt=job.dst.suffix.lstrip("."),
                                  jpeg_quality=self.options.jpeg_quality, provenance=provenance)
                self.writes.append((i, job, fut, t0))
            except Cancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - a bad file never stops the batch
                log.debug("failed on %s", job.src, exc_info=True)
                self.fail(job.src, _reason(exc), index=i, dst=job.dst)
            self._finish_writes(block=False)
            while len(self.writes) > self.options.io_threads:
                self._finish_writes(block=True)


def format_losses(img, out_suffix: str) -> list[str]:
    """What writing the decoded ``img`` (:class:`~imgtrans.imageio.Image`) as ``out_suffix`` cannot
    keep: transparency in JPEG, 16-bit depth in JPEG/WebP/BMP, the frames after the first."""
    fmt = out_suffix.lower().lstrip(".")
    notes = []
    if img.alpha is not None and fmt in ("jpg", "jpeg") and float(img.alpha.min()) < 1.0:
        notes.append("transparency flattened onto white (JPEG keeps no alpha; --format png keeps it)")
    if img.bit_depth > 8 and fmt not in ("png", "tif", "tiff"):
        notes.append("16-bit depth stored as 8 bits (--format png or tiff keeps 16 bits)")
    if img.frames > 1:
        notes.append(f"only the first of {img.frames} frames converted")
    return notes


def _is_error(reason: str) -> bool:
    """Skips that the user should treat as failures (the input exists but cannot be used)."""
    benign = ("not an image file", "folder already visited", EXISTS, SAME_FILE, OUTPUT_OF)
    return not reason.startswith(benign)
