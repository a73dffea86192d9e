"""Planning a batch, before any image is read: which files are inputs, where each output goes, and
which files are left out and why. Standard library and image headers only (no torch), so the lite
engine, the GUI's queue and a finished batch's re-run plan without loading a model."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from imgtrans.engine.options import ConvertOptions
from imgtrans.imageio import output_format_for

SAME_FILE = "same file as"
OUTPUT_OF = "output of another input"  # a file this tool wrote from another file among the inputs
EXISTS = "output exists"  # benign: this model with these settings made it (a resumed batch)
OVERWRITES_INPUT = "would overwrite an input"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
SUFFIX_FORMAT = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".webp": "WEBP",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF",
}



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


def _name_outputs(found: list[tuple[Path, Path]], options: ConvertOptions,
                  out_root: Path) -> list[tuple[Path, Path, Path, Path]]:
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
    used = {rel_dir / name.name.lower() for _s, _r, rel_dir, name in proposals
            if counts[rel_dir / name.name.lower()] == 1}
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


def imgtrans_record(path: Path) -> dict | None:
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
        record = imgtrans_record(cand)
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
            # an unnamed file where the OS has them (Linux O_TMPFILE): a kill here leaves nothing behind
            with tempfile.TemporaryFile(prefix=".imgtrans-write-test-", dir=folder):
                pass
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
    record = imgtrans_record(candidate)
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


def is_error(reason: str) -> bool:
    """Skips that the user should treat as failures (the input exists but cannot be used)."""
    benign = ("not an image file", "folder already visited", EXISTS, SAME_FILE, OUTPUT_OF)
    return not reason.startswith(benign)
