#!/usr/bin/env python3
"""Before/after pictures of every bundled style model, made by `imgtrans convert`, for the README.

    .venv/bin/python benchmarks/style_pictures.py [MODEL ...] [--out docs/styles]

For each style model: the painting it learnt from (one-painting styles; from the fetched data sets,
training/data/fetch.py), then each bundled sample photo (resources/samples, public domain) before and
after `imgtrans convert -m MODEL` at the default style size, in one JPEG per model,
OUT/<model>.jpg, 1100 px wide.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLES = [ROOT / "resources" / "samples" / n for n in ("volcano_usgs.jpg", "chelsea_cat_exif_rotated.jpg")]
WIDTH, PAD, ROW = 1100, 8, 250


def painting_of(model_id: str) -> Path | None:
    from imgtrans.catalog import find_model, read_model_metadata
    from imgtrans.training.style_thumbnail import fetched_painting

    found = find_model(model_id)
    return fetched_painting(read_model_metadata(getattr(found, "path", found)) or {})


def fit_height(img: Image.Image, height: int) -> Image.Image:
    img = ImageOps.exif_transpose(img).convert("RGB")
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.LANCZOS)


def picture(model_id: str, out: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "imgtrans", "convert", "-m", model_id, "--no-progress", "--format", "png",
                        "-o", tmp, *map(str, SAMPLES)], check=True, capture_output=True, text=True)
        panels = []
        painting = painting_of(model_id)
        if painting is not None:
            panels.append(("learnt from", fit_height(Image.open(painting), ROW)))
        for src in SAMPLES:
            panels.append(("photo", fit_height(Image.open(src), ROW)))
            panels.append((model_id, fit_height(Image.open(Path(tmp) / f"{src.stem}.png"), ROW)))
        width = sum(p.width for _, p in panels) + PAD * (len(panels) + 1)
        page = Image.new("RGB", (width, ROW + 2 * PAD + 16), "white")
        draw = ImageDraw.Draw(page)
        x = PAD
        for label, p in panels:
            page.paste(p, (x, PAD + 16))
            draw.text((x, PAD), label, fill="black")
            x += p.width + PAD
        scale = WIDTH / page.width
        page = page.resize((WIDTH, round(page.height * scale)), Image.LANCZOS)
    out.mkdir(parents=True, exist_ok=True)
    dst = out / f"{model_id}.jpg"
    page.save(dst, quality=88)
    return dst


def main() -> int:
    from imgtrans.catalog import list_models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help="style model ids (default: every bundled style model)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "styles")
    args = ap.parse_args()
    ids = args.models or [e.id for e in list_models() if e.task == "style" and e.source == "bundled"]
    for model_id in ids:
        print(picture(model_id, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
