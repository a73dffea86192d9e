"""Checkpoint -> model files the rest of imgtrans uses (catalog, ``imgtrans convert``, GUI).

Each generator of a checkpoint is written with :func:`imgtrans.weights.save_model` (safetensors with
metadata) as ``<name>_a2b.safetensors`` / ``<name>_b2a.safetensors`` (CycleGAN) or
``<name>.safetensors`` (SR, denoise), by default into the user models folder. Metadata: ``id``,
``name``, ``description``, ``training_data``, ``licence``, ``steps``, ``epoch``, ``metric`` (JSON:
name, value, higher_is_better, step), ``checkpoint``, task-specific keys (``direction`` for CycleGAN,
``perceptual`` for SR, ``noise`` for denoise, the painting's thumbnail and credit for style:
:mod:`imgtrans.training.style_thumbnail`) and the training options.
"""

from __future__ import annotations

import json
from pathlib import Path

from imgtrans.catalog import THUMBNAIL_KEY
from imgtrans.training.checkpoint import find_checkpoint, load_checkpoint
from imgtrans.training.errors import CheckpointError

LICENCE = "user-trained model: the licences of its training images apply"
DATA_KEYS = ("data", "domain_a", "domain_b")  # keys of ``training_data`` that hold a folder path


def data_provenance(folder: str | Path) -> dict:
    """What a training folder holds, for a model's metadata, without absolute paths: its name and, when
    it is (or links into) a set fetched by ``training/data/fetch.py``, the set, its source packages and
    how many of the folder's files carry each licence (from the set's ``manifest.json``)."""
    from imgtrans.training.data import list_image_files

    root = Path(folder)
    out: dict = {"folder": root.name}
    try:
        files = list_image_files(root)
    except OSError:
        return out
    manifest_dir = root if (root / "manifest.json").is_file() else None
    if manifest_dir is None and files:  # a domain folder of links made by make_domain.py
        target = files[0].resolve().parent
        manifest_dir = target if (target / "manifest.json").is_file() else None
    if manifest_dir is None:
        return out
    try:
        manifest = json.loads((manifest_dir / "manifest.json").read_text(encoding="utf-8"))
        by_name = {f["file"]: f for f in manifest.get("files", [])}
    except (OSError, ValueError, KeyError, TypeError):
        return out
    licences: dict[str, int] = {}
    for path in files:
        entry = by_name.get(path.resolve().name) or by_name.get(path.name)
        key = entry.get("licence", "unknown") if entry else "unknown"
        licences[key] = licences.get(key, 0) + 1
    out.update(set=manifest.get("set", manifest_dir.name), packages=manifest.get("packages", {}),
               images=len(files), licences=dict(sorted(licences.items(), key=lambda kv: -kv[1])))  # fmt: skip
    return out


def _licence_line(training_data: dict, style_images: list | None = None) -> str | None:
    """"trained on ... (licences)" for the ``licence`` key, or None when no data licence is known. A style
    model's paintings (``style_images`` metadata, :func:`imgtrans.training.style.style_image_record`) are
    named with their licence where it is known."""
    parts = []
    for key in DATA_KEYS:
        d = training_data.get(key)
        if isinstance(d, dict) and d.get("licences"):
            lic = ", ".join(f"{name} {n}" for name, n in d["licences"].items())
            where = d["folder"] if d.get("set", d["folder"]) == d["folder"] else f"{d['set']}/{d['folder']}"
            parts.append(f"{where} ({lic} files)")
    for img in style_images or []:
        if isinstance(img, dict) and img.get("licence"):
            source = f", {img['source_package']}" if img.get("source_package") else ""
            parts.append(f"the style of {img.get('file', '?')} ({img['licence']}{source})")
    if not parts:
        return None
    return "weights by imgtrans (MIT); trained on " + " and ".join(parts) + ": see the data sets' licence files"


def export_checkpoint(checkpoint: str | Path, name: str | None = None, out: str | Path | None = None) -> list[Path]:
    """Write the generator(s) of ``checkpoint`` (a checkpoint folder) and return the file paths.

    ``out``: a folder (default: the user models folder), or a ``.safetensors`` file name (for two
    generators its stem gets ``_a2b``/``_b2a`` appended)."""
    from imgtrans.archs import get_arch
    from imgtrans.paths import user_models_dir
    from imgtrans.weights import save_model

    ck = load_checkpoint(checkpoint, load_state=False)
    info = ck.info
    name = name or info.get("name") or Path(checkpoint).parent.parent.name
    items = info.get("exports") or []
    if not items:
        raise CheckpointError(f"{checkpoint}: the checkpoint lists no generator to export")
    out_path = Path(out) if out is not None else user_models_dir()
    as_file = out_path.suffix.lower() == ".safetensors" and not out_path.is_dir()
    written = []
    for item in items:
        spec = get_arch(item["arch"])
        module = spec.build(dict(item["hparams"]))
        try:
            module.load_state_dict(ck.weights[item["net"]], strict=True)
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{checkpoint}: {item['net']} cannot be exported "
                                  f"({str(exc).splitlines()[0][:200]})") from None
        if as_file:
            target = (out_path if len(items) == 1
                      else out_path.with_name(out_path.stem + item["suffix"] + ".safetensors"))
        else:
            target = out_path / f"{name}{item['suffix']}.safetensors"
        metadata = dict(item["metadata"])
        data = dict(metadata.get("training_data") or {})
        for key in DATA_KEYS:
            if isinstance(data.get(key), str):
                data[key] = data_provenance(data[key])
        if data:
            metadata["training_data"] = data
        metadata.setdefault("licence", _licence_line(data, metadata.get("style_images")) or LICENCE)
        if metadata.get("style_images") and THUMBNAIL_KEY not in metadata:  # a checkpoint from before thumbnails
            from imgtrans.training.style_thumbnail import recorded_thumbnail_metadata

            metadata.update(recorded_thumbnail_metadata((info.get("config") or {}).get("style_images") or [],
                                                        metadata["style_images"]))  # fmt: skip
        # the run and checkpoint names, not where they lay on the training machine
        metadata.update(steps=str(info.get("step", "")), epoch=str(info.get("epoch", "")),
                        checkpoint=f"{ck.path.parent.parent.name}/{ck.path.name}")  # fmt: skip
        if info.get("metric"):
            metadata["metric"] = {k: v for k, v in info["metric"].items() if k != "all"}
            metadata["metrics"] = info["metric"].get("all", {})
        try:
            written.append(save_model(target, module.eval(), item["arch"], item["hparams"], metadata))
        except OSError as exc:
            raise CheckpointError(f"could not write {target}: {exc.strerror or exc}") from None
    return written


def export_run(name: str, which: str = "latest", out: str | Path | None = None) -> list[Path]:
    """Export checkpoint ``which`` (``latest``, ``best`` or a step number) of run ``name``."""
    from imgtrans.paths import runs_dir

    run = runs_dir() / name
    if not run.is_dir():
        raise CheckpointError(f"no training run called {name!r} in {runs_dir()}")
    return export_checkpoint(find_checkpoint(run, which), name=name, out=out)


def list_runs() -> list[dict]:
    """Training runs in the runs folder, for a GUI: name, task, folder, latest step and metric, best
    step (``None`` where there is no checkpoint yet). Reads JSON only (no torch)."""
    from imgtrans.paths import runs_dir
    from imgtrans.training.checkpoint import best_of, list_checkpoints

    out = []
    root = runs_dir()
    if not root.is_dir():
        return out
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        items = list_checkpoints(run / "checkpoints")
        task = items[-1].info.get("task") if items else None
        if task is None and (run / "config.json").is_file():
            try:
                task = json.loads((run / "config.json").read_text(encoding="utf-8")).get("task")
            except (OSError, ValueError):
                task = None
        best = best_of(items)
        out.append({
            "name": run.name,
            "task": task,
            "path": run,
            "step": items[-1].step if items else None,
            "metric": items[-1].metric if items else None,
            "best_step": best.step if best else None,
        })  # fmt: skip
    return out
