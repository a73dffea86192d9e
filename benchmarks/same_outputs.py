#!/usr/bin/env python3
"""Fingerprint what `imgtrans convert` writes, to prove a refactor changed no output byte.

    .venv/bin/python benchmarks/same_outputs.py --write before.json     # on the old code
    .venv/bin/python benchmarks/same_outputs.py --compare before.json   # on the new code

Converts the bundled sample photos with every bundled model (default options, one thread, CPU),
plus a few option variants that take other code paths (explicit tiles, each output format, a fixed
noise level, full-resolution style, the torch-free lite engine when onnxruntime and the exported
graphs are there). Records the SHA-256 of every output file; --compare prints each difference and
exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "resources" / "samples"

# (label, model, extra arguments): each variant's outputs go to a folder named after its label
VARIANTS = [
    ("tile96-sr-x4", "sr-x4", ["--tile", "96"]),
    ("png-sr-x2", "sr-x2", ["--format", "png"]),
    ("webp-sr-x2", "sr-x2", ["--format", "webp", "--jpeg-quality", "90"]),
    ("tiff-denoise", "denoise-color", ["--format", "tiff"]),
    ("level25-denoise", "denoise-color", ["--noise-level", "25"]),
    ("fullres-style", "photo2vangogh-a2b", ["--style-size", "0"]),
    ("tile64-style", "photo2ukiyoe-a2b", ["--tile", "64", "--style-size", "0"]),
    ("suffix-gray", "denoise-gray", ["--suffix", "_clean", "--format", "jpg"]),
]


def bundled_models() -> list[str]:
    out = subprocess.run([sys.executable, "-m", "imgtrans", "models", "--json"], check=True,
                         capture_output=True, text=True).stdout
    return [m["id"] for m in json.loads(out) if m.get("source") == "bundled"]


def convert(model: str, out: Path, extra: list[str]) -> None:
    cmd = [sys.executable, "-m", "imgtrans", "convert", "-m", model, "-o", str(out), "--device", "cpu",
           "--threads", "1", "--no-progress", *extra, str(SAMPLES)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def fingerprints() -> dict[str, str]:
    found: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = [(m, m, []) for m in bundled_models()] + [(label, m, extra) for label, m, extra in VARIANTS]
        for label, model, extra in jobs:
            print(f"  {label}", file=sys.stderr, flush=True)
            convert(model, root / label, extra)
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            found[f.relative_to(root).as_posix()] = hashlib.sha256(f.read_bytes()).hexdigest()
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="save the fingerprints to this JSON file")
    group.add_argument("--compare", type=Path, help="compare with fingerprints saved by --write")
    args = ap.parse_args()
    now = fingerprints()
    if args.write:
        args.write.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        print(f"{len(now)} output files fingerprinted -> {args.write}")
        return 0
    before = json.loads(args.compare.read_text())
    changed = sorted(k for k in before.keys() & now.keys() if before[k] != now[k])
    missing, extra = sorted(before.keys() - now.keys()), sorted(now.keys() - before.keys())
    for name in changed:
        print(f"changed  {name}")
    for name in missing:
        print(f"missing  {name}")
    for name in extra:
        print(f"new      {name}")
    same = len(before.keys() & now.keys()) - len(changed)
    print(f"{same} of {len(before)} output files byte-identical; {len(changed)} changed, {len(missing)} missing, "
          f"{len(extra)} new")
    return 0 if not (changed or missing or extra) else 1


if __name__ == "__main__":
    sys.exit(main())
