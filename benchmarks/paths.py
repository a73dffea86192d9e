#!/usr/bin/env python3
"""How far each execution path is from the whole-image eager result, for every bundled model.

    .venv/bin/python benchmarks/paths.py [--photo resources/samples/volcano_usgs.jpg]

Paths: band streaming at 96, 48 and 16 rows (models with image-wide statistics), halo tiles of 96
and 64 px (local networks), onnxruntime (whole image; and streamed, whose layers run eager), and the
torch-free lite engine (96 px tiles). Prints the mean and max absolute difference in grey levels
(0-255) per model and path, on the whole photo (x4 models: its left half).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "packaging"))


def main() -> int:
    from export_onnx import index_entry

    from imgtrans import lite
    from imgtrans.backends import onnx_cache_path, onnxruntime_available, prepare_backend
    from imgtrans.catalog import list_models
    from imgtrans.imageio import read_image
    from imgtrans.tiling import run_model
    from imgtrans.weights import open_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, default=ROOT / "resources" / "samples" / "volcano_usgs.jpg")
    args = ap.parse_args()
    img = read_image(args.photo)
    photo = torch.from_numpy(np.ascontiguousarray(img.pixels.transpose(2, 0, 1)))[None]
    print(f"photo {args.photo.name} {img.width}x{img.height}; torch {torch.__version__}; "
          "grey levels mean / max vs whole-image eager")
    for entry in [e for e in list_models() if e.source == "bundled"]:
        model, _ = open_model(entry.id)
        x = photo if model.in_channels == 3 else photo.mean(dim=1, keepdim=True)
        if model.scale == 4:
            x = x[:, :, :, : x.shape[3] // 2]
        eager = prepare_backend(model, "eager")
        t0 = time.perf_counter()
        ref = run_model(eager, x, tile=0)
        row = []

        # add() is called only in this iteration, on its ref and row
        def add(name: str, y: torch.Tensor) -> None:
            d = (y - ref).abs() * 255  # noqa: B023
            row.append(f"{name} {float(d.mean()):.1e}/{float(d.max()):.1e}")  # noqa: B023

        if model.execution == "stream":
            for band in (96, 48, 16):
                add(f"stream{band}", run_model(eager, x, tile=band))
        if model.tile_safe:
            for tile in (96, 64):
                add(f"tiles{tile}", run_model(eager, x, tile=tile))
        if onnxruntime_available() and model.spec.onnx_export:
            onnx = prepare_backend(model, "onnx")
            add("onnx", run_model(onnx, x, tile=0))
            if model.execution == "stream":
                add("onnx+stream48", run_model(onnx, x, tile=48))
            path = onnx_cache_path(model)
            lm = lite.LiteModel.from_index(entry.id, index_entry(model, path.name), path.parent)
            out = lite.run_array(lm, np.ascontiguousarray(x[0].numpy().transpose(1, 2, 0)), bits=None, tile=96)
            add("lite", torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1)))[None])
        print(f"{entry.id} ({x.shape[3]}x{x.shape[2]}, {time.perf_counter() - t0:.0f} s): " + ", ".join(row),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
