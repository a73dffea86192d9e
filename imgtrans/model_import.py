"""Importing and removing user models: the one implementation behind ``imgtrans import``/``remove``
and the desktop app's Models tab (which runs these in a worker thread). No Qt here.

A third-party file goes through :func:`imgtrans.weights.load_model` (the safe loader: safetensors,
or tensor-only pickles) first, so a file that is not a model, or that would need code execution, is
refused with the loader's one-line reason. Accepted files are stored in the user models folder as
``.safetensors``: our families through
:func:`imgtrans.weights.save_model`, with full metadata; other architectures recognised by spandrel
as their state dict plus descriptive metadata, and re-loaded once to prove the stored file works.
ONNX graphs are copied as they are, with a ``.onnx.json`` record beside them (the catalog lists
``.onnx`` files that have one).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from imgtrans.atomic import replacing, write_bytes
from imgtrans.catalog import CatalogEntry, list_models, onnx_sidecar
from imgtrans.paths import user_models_dir


@dataclass
class Imported:
    path: Path
    id: str
    name: str
    arch: str
    task: str
    scale: int
    parameters: int
    description: str

    def summary(self) -> str:
        return (f"Imported \u201c{self.name}\u201d: detected {self.description}, "
                f"{self.parameters / 1e6:.2f} M parameters.")


UNKNOWN_LICENCE = "unknown (imported file: check where it came from)"
"""The licence an imported file gets when its own metadata names none."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._").lower()
    return slug[:60] or "model"


def _unique_id(base: str, folder: Path) -> str:
    taken = {e.id.lower() for e in list_models()}
    candidate, n = base, 2
    while candidate.lower() in taken or any((folder / f"{candidate}{ext}").exists()
                                            for ext in (".safetensors", ".onnx", ".onnx.json")):
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def import_model(src: str | os.PathLike, name: str | None = None, folder: Path | None = None, *,
                 value_range: str | None = None, scale: int | None = None) -> Imported:
    """Validate ``src`` with the safe loader and store it in the user models folder.

    ``value_range`` (``"0-1"``, ``"-1..1"``, ``"0-255"``) and ``scale`` are for ONNX graphs, whose
    range and scale are otherwise read from their metadata or detected
    (:mod:`imgtrans.archs.onnx_graph`). Raises :class:`imgtrans.weights.ModelLoadError` (one line)
    when the file is not a usable model."""
    from imgtrans.weights import ModelLoadError, count_parameters, load_model, save_model

    src = Path(src)
    if src.suffix.lower() == ".onnx":
        return _import_onnx(src, name, folder, value_range, scale)
    if value_range is not None or scale is not None:
        raise ModelLoadError(f"{src.name}: --range and --scale are for ONNX graphs; "
                             "this file's weights say what they are")
    model = load_model(src)
    folder = folder or user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    model_id = _unique_id(_slug(name or src.stem), folder)
    display = name or model.metadata.get("name") or src.stem
    meta = {k: v for k, v in model.metadata.items()
            if k not in {"format", "arch", "hparams", "task", "scale", "date", "imgtrans_version"}}
    meta.update(
        id=model_id,
        name=display,
        description=model.metadata.get("description") or f"Imported from {src.name}.",
        licence=model.metadata.get("licence") or UNKNOWN_LICENCE,
        imported_from=src.name,  # the name only: a user's folders stay out of files they may pass on
        imported_sha256=_sha256(src),
        edge_context=str(model.edge_context),  # third-party weights: 0, they run as their authors ran them
    )
    dst = folder / f"{model_id}.safetensors"
    if not model.spec.foreign:
        save_model(dst, model.module, model.arch, model.hparams, meta)
    else:
        _save_foreign(dst, model, meta)
        try:
            again = load_model(dst)
        except ModelLoadError as exc:
            dst.unlink(missing_ok=True)
            raise ModelLoadError(f"{src.name}: recognised as {model.arch}, but it cannot be stored for reuse "
                                 f"({exc})") from None
        if again.arch != model.arch:
            dst.unlink(missing_ok=True)
            raise ModelLoadError(f"{src.name}: recognised as {model.arch}, but it cannot be stored for reuse")
    return Imported(dst, model_id, display, model.arch, model.task, model.scale, count_parameters(model.module),
                    model.describe())


def _import_onnx(src: Path, name: str | None, folder: Path | None, value_range: str | None,
                 scale: int | None) -> Imported:
    """An ONNX graph: checked and measured (:func:`imgtrans.archs.onnx_graph.load_onnx`), copied
    byte for byte into the user models folder, with what was decided (range, scale, size multiple)
    and its provenance in a ``.onnx.json`` record beside it (written last: the record makes it listed)."""
    from imgtrans.archs.onnx_graph import (
        OnnxGraphError,
        count_graph_parameters,
        describe_facts,
        load_onnx,
        parse_range,
        range_name,
    )
    from imgtrans.catalog import onnx_sidecar
    from imgtrans.weights import ModelLoadError, load_model

    given: dict[str, str] = {}
    try:
        if value_range is not None:
            given["value_range"] = range_name(parse_range(value_range))
        if scale is not None:
            given["scale"] = str(int(scale))
        spec, _module, facts = load_onnx(src, given)
    except OnnxGraphError as exc:
        raise ModelLoadError(f"{src.name}: {exc}") from None
    folder = folder or user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    gmeta = facts["graph_metadata"]
    model_id = _unique_id(_slug(name or src.stem), folder)
    display = name or gmeta.get("name") or src.stem
    described = describe_facts(facts)
    meta = {
        "id": model_id,
        "name": display,
        "detected_arch": described,  # no "arch": the catalog shows this, as for spandrel imports
        "task": spec.task,
        "scale": str(facts["scale"]),
        "value_range": facts["value_range"],
        "size_multiple": str(facts["size_multiple"]),
        "description": gmeta.get("description") or gmeta.get("graph_description") or f"Imported from {src.name}.",
        "licence": gmeta.get("licence") or gmeta.get("license") or UNKNOWN_LICENCE,
        "imported_from": src.name,  # the name only: a user's folders stay out of files they may pass on
        "imported_sha256": _sha256(src),
        "edge_context": "0",
    }
    if gmeta.get("author"):
        meta["author"] = gmeta["author"]
    dst = folder / f"{model_id}.onnx"
    side = onnx_sidecar(dst)
    write_bytes(dst, src.read_bytes())
    try:
        write_bytes(side, json.dumps(meta, indent=1, sort_keys=True).encode("utf-8"))
        again = load_model(dst)
    except BaseException:
        side.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)
        raise
    params = count_graph_parameters(dst)
    return Imported(dst, model_id, display, again.arch, again.task, again.scale, params if params is not None else 0,
                    described)


def _save_foreign(dst: Path, model, meta: dict[str, str]) -> None:
    """A spandrel-recognised model: its state dict, with metadata that names no arch of ours (so the
    loader detects it again), written atomically."""
    from safetensors.torch import save_file

    meta = dict(meta, task=model.task, scale=str(model.scale), detected_arch=model.arch)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.module.state_dict().items()}
    with replacing(dst) as tmp:
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in meta.items()})


def remove_model(entry: CatalogEntry) -> None:
    """Delete a user model's file. Bundled models cannot be removed."""
    if entry.source != "user":
        raise ValueError(f"{entry.name} is bundled with imgtrans and cannot be removed")
    folder = user_models_dir().resolve()
    path = entry.path.resolve()
    if folder not in path.parents:
        raise ValueError(f"{entry.path} is not in the user models folder")
    path.unlink()
    if path.suffix.lower() == ".onnx":
        onnx_sidecar(path).unlink(missing_ok=True)
