#!/usr/bin/env python3
"""Regenerate the small bundled images from fetched public-domain / CC0 sources.

    python training/data/fetch.py space-photos puzzle-photos skimage
    .venv/bin/python training/data/make_assets.py [--data DIR] [--check]

Writes ``resources/samples/`` (demo images) and ``tests/data/photos/`` (tiny test photos)
from ``DIR`` (default ``$IMGTRANS_DATA`` or ``~/.cache/imgtrans/data``). Needs Pillow.
Every source file used here is public domain or CC0 (checked against the set's
manifest.json, which carries the licence from the package's copyright file / docs); the
script refuses anything else. ``--check`` only verifies the existing files' properties.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from PIL import Image, ImageCms, ImageOps

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "resources" / "samples"
PHOTOS = REPO / "tests" / "data" / "photos"
PD = {"public-domain", "public domain", "cc0"}

# name -> (set, file, size (w, h) or None to keep, format)
SAMPLES_SPEC = {
    "volcano_usgs.jpg": ("space-photos", "lava0.jpg", (512, 256), "JPEG"),
    "mars_nasa.jpg": ("space-photos", "desert0.jpg", (512, 256), "JPEG"),
    "hubble_deep_field_nasa.jpg": ("skimage", "hubble_deep_field.jpg", (512, 446), "JPEG"),
    # special: stored rotated with EXIF Orientation=6 and an sRGB ICC profile
    "chelsea_cat_exif_rotated.jpg": ("skimage", "chelsea.png", None, "JPEG-EXIF6"),
}

# name -> (set, file, (cx, cy, side) as fractions: centre and side / shorter image side)
PHOTOS_SPEC = {
    "cat.png": ("skimage", "chelsea.png", (0.52, 0.48, 0.80)),
    "coffee.png": ("skimage", "coffee.png", (0.40, 0.45, 0.85)),
    "astronaut.png": ("skimage", "astronaut.png", (0.45, 0.35, 0.55)),
    "rocket.png": ("skimage", "rocket.jpg", (0.48, 0.50, 0.90)),
    "deep_field.png": ("skimage", "hubble_deep_field.jpg", (0.50, 0.50, 0.50)),
    "volcano.png": ("space-photos", "lava0.jpg", (0.33, 0.55, 0.80)),
    "mars.png": ("space-photos", "desert0.jpg", (0.45, 0.55, 0.90)),
    "citrus.png": ("puzzle-photos", "citrus-fruits.jpg", (0.50, 0.50, 0.70)),
}
PHOTO_SIZE = 96


def default_data() -> Path:
    env = os.environ.get("IMGTRANS_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "imgtrans" / "data"


def source(data: Path, set_name: str, file: str):
    folder = data / set_name
    man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rec = next(r for r in man["files"] if r["file"] == file)
    if rec["licence"].lower() not in PD:
        raise SystemExit(f"{set_name}/{file} is {rec['licence']}: not public domain / CC0")
    if "ambiguous" in rec.get("note", ""):
        raise SystemExit(f"{set_name}/{file}: licence ambiguous in the copyright file")
    return Image.open(folder / file), rec


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def make_samples(data: Path) -> None:
    SAMPLES.mkdir(parents=True, exist_ok=True)
    for name, (set_name, file, size, fmt) in SAMPLES_SPEC.items():
        im, rec = source(data, set_name, file)
        im = im.convert("RGB")
        if size:
            im = im.resize(size, Image.LANCZOS)
        out = SAMPLES / name
        if fmt == "JPEG-EXIF6":
            # Orientation 6 = "rotate 90 degrees clockwise to display": store the upright
            # picture turned 90 degrees counter-clockwise.
            stored = im.transpose(Image.Transpose.ROTATE_90)
            exif = Image.Exif()
            exif[0x0112] = 6                                   # Orientation
            exif[0x010E] = "Chelsea the cat (scikit-image sample), stored rotated, Orientation=6"
            exif[0x013B] = rec["copyright"]                    # Artist
            exif[0x8298] = "CC0 1.0 (public domain dedication)"  # Copyright
            stored.save(out, "JPEG", quality=92, exif=exif, icc_profile=srgb_icc(),
                        optimize=True)
        else:
            im.save(out, "JPEG", quality=90, optimize=True)
        print(f"{out.relative_to(REPO)}: {out.stat().st_size // 1024} KB")


def make_photos(data: Path) -> None:
    PHOTOS.mkdir(parents=True, exist_ok=True)
    for name, (set_name, file, (cx, cy, side)) in PHOTOS_SPEC.items():
        im, _ = source(data, set_name, file)
        im = im.convert("RGB")
        w, h = im.size
        s = side * min(w, h)
        x0 = min(max(cx * w - s / 2, 0), w - s)
        y0 = min(max(cy * h - s / 2, 0), h - s)
        crop = im.crop((round(x0), round(y0), round(x0 + s), round(y0 + s)))
        crop = crop.resize((PHOTO_SIZE, PHOTO_SIZE), Image.LANCZOS)
        crop.save(PHOTOS / name, "PNG", optimize=True)
    total = sum((PHOTOS / n).stat().st_size for n in PHOTOS_SPEC)
    print(f"{PHOTOS.relative_to(REPO)}: {len(PHOTOS_SPEC)} PNGs, {total // 1024} KB")


def check() -> int:
    bad = 0
    for name in SAMPLES_SPEC:
        p = SAMPLES / name
        kb = p.stat().st_size / 1024
        im = Image.open(p)
        up = ImageOps.exif_transpose(im)
        print(f"{name}: stored {im.size}, displayed {up.size}, orientation "
              f"{im.getexif().get(0x0112)}, icc {len(im.info.get('icc_profile', b''))} B, {kb:.0f} KB")
        bad += kb > 300
    for name in PHOTOS_SPEC:
        im = Image.open(PHOTOS / name)
        bad += im.size != (PHOTO_SIZE, PHOTO_SIZE) or im.mode != "RGB"
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data())
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    if not args.check:
        make_samples(args.data)
        make_photos(args.data)
    return check()


if __name__ == "__main__":
    sys.exit(main())
