#!/usr/bin/env python3
"""Build-time export of the bundled models to ONNX for the lite (torch-free) bundle.

Runs where torch is installed (``make bundle-lite`` runs it in .venv-bundle):

    python packaging/export_onnx.py [OUT_DIR]        # default build/lite-models

Every model of ``resources/models.toml`` is loaded with :mod:`imgtrans.weights` and exported with
:func:`imgtrans.backends.export_onnx` (the same exporter, opset and wrapper as the fast backend:
dynamic H and W, the noise level of a noise-map DnCNN as a second input ``sigma`` of shape (1,),
sigma/255). ``OUT_DIR/index.json`` maps each model id to its graph and what :mod:`imgtrans.lite`
needs to run it without torch: task, scale, size multiple and minimum, the mirrored border, halo
(the architecture's receptive radius), how it is split (the descriptor's execution), whether it takes a noise level, its
value range. The lite spec bundles ``OUT_DIR`` as ``_internal/resources/onnx``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def index_entry(model, file_name: str, catalog_entry=None) -> dict:
    """The ``index.json`` entry of a :class:`~imgtrans.weights.LoadedModel` exported to ``file_name``."""
    import torch

    from imgtrans.backends import ONNX_OPSET

    entry = {
        "file": file_name,
        "task": model.task,
        "arch": model.arch,
        "scale": int(model.scale),
        "in_channels": int(model.in_channels),
        "out_channels": int(model.out_channels),
        "size_multiple": int(max(model.size_multiple, 1)),
        "min_size": int(model.min_size),
        "edge_context": int(model.edge_context),
        "halo": int(model.receptive_radius) if model.receptive_radius is not None else None,
        "execution": model.execution,
        "tile_safe": bool(model.tile_safe),
        "takes_noise_level": bool(model.takes_noise_level),
        "value_range": [float(v) for v in model.value_range],
        "hparams": {k: v for k, v in model.hparams.items() if isinstance(v, (int, float, str, bool))},
        "opset": ONNX_OPSET,
        "exported_with": f"torch {torch.__version__}",
    }
    if catalog_entry is not None:
        entry.update(name=catalog_entry.name, description=catalog_entry.description, licence=catalog_entry.licence)
    return entry


def export_one(model, out_dir: Path, model_id: str, catalog_entry=None) -> dict:
    from imgtrans.backends import export_onnx

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_id)
    path = export_onnx(model, out_dir / f"{safe}.onnx")
    entry = index_entry(model, path.name, catalog_entry)
    entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    entry["bytes"] = path.stat().st_size
    return entry


def write_index(out_dir: Path, models: dict[str, dict]) -> Path:
    from imgtrans.atomic import write_bytes

    return write_bytes(out_dir / "index.json",
                       (json.dumps({"format": 1, "models": models}, indent=1) + "\n").encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=ROOT / "build" / "lite-models")
    args = parser.parse_args(argv)

    from imgtrans.catalog import _bundled
    from imgtrans.paths import resources_dir
    from imgtrans.weights import load_model

    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.onnx"):  # only what the catalog lists ends up in the bundle
        stale.unlink()
    models: dict[str, dict] = {}
    for entry in _bundled(resources_dir()):
        t0 = time.perf_counter()
        model = load_model(entry.path)
        models[entry.id] = export_one(model, out_dir, entry.id, entry)
        print(f"export_onnx: {entry.id} ({model.arch}) -> {models[entry.id]['file']} "
              f"({models[entry.id]['bytes'] / 1e6:.2f} MB, {time.perf_counter() - t0:.1f} s)")
    if not models:
        print("export_onnx: no bundled models in resources/models.toml", file=sys.stderr)
        return 1
    print(f"export_onnx: {write_index(out_dir, models)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
