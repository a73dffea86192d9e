#!/usr/bin/env python3
"""Deterministic, disjoint train/val/test splits of an image folder (stdlib only).

Each image is assigned by a hash of its *group key* (the file stem, lower-cased, with
resolution suffixes such as ``@2x`` and known variant suffixes such as ``_nohumans``
removed), so:

* the assignment of a file never depends on which other files are in the folder
  (adding images later never moves an existing image to another split);
* near-duplicate variants of one picture always land in the same split;
* two folders holding the same pictures at different resolutions (``space-photos`` and
  ``space-photos-lowres``) get identical splits, so LR/HR pairs never straddle splits.

Usage::

    python training/data/split.py DIR [DIR ...] [--ratios 0.8 0.1 0.1] [--seed imgtrans-v1]

writes ``DIR/splits.json``::

    {"version": 1, "method": "sha256-threshold", "seed": "imgtrans-v1",
     "ratios": {"train": 0.8, "val": 0.1, "test": 0.1},
     "counts": {"train": 219, "val": 27, "test": 27},
     "train": ["a.jpg", ...], "val": [...], "test": [...]}

From Python: ``from split import make_splits, load_splits``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
DEFAULT_SEED = "imgtrans-v1"
DEFAULT_RATIOS = (0.8, 0.1, 0.1)
SPLIT_NAMES = ("train", "val", "test")
SPLITS_FILE = "splits.json"

# Variants of one picture that must stay together (e.g. wesnoth's
# landscape-battlefield.jpg / landscape-battlefield_nohumans.jpg).
_RES_SUFFIX = re.compile(r"@\d+x$")
_VARIANT_SUFFIX = re.compile(r"(_nohumans|_sun|_night|_dark|_lowres|_hires)$")


def group_key(name: str) -> str:
    """The key that decides a file's split: variants of one picture share it."""
    stem = Path(name).stem.lower()
    stem = _RES_SUFFIX.sub("", stem)
    stem = _VARIANT_SUFFIX.sub("", stem)
    return stem


def hash_fraction(key: str, seed: str = DEFAULT_SEED) -> float:
    """A number in [0, 1) derived from sha256(seed:key)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(name: str, ratios=DEFAULT_RATIOS, seed: str = DEFAULT_SEED) -> str:
    """The split ('train', 'val' or 'test') of one file name."""
    total = float(sum(ratios))
    if total <= 0 or any(r < 0 for r in ratios):
        raise ValueError(f"bad ratios {ratios!r}")
    x = hash_fraction(group_key(name), seed)
    edge = 0.0
    for split, r in zip(SPLIT_NAMES, ratios):
        edge += r / total
        if x < edge:
            return split
    return SPLIT_NAMES[-1]


def list_images(folder: Path) -> list[str]:
    return sorted(
        p.name for p in Path(folder).iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")
    )


def make_splits(folder, ratios=DEFAULT_RATIOS, seed: str = DEFAULT_SEED,
                files=None, write: bool = True) -> dict:
    """Split the images of ``folder`` (or the given file names) and write splits.json.

    Tiny sets: when a split with a non-zero ratio would be empty and there are at least as
    many picture groups as such splits, the group whose hash lies nearest that split's
    interval is moved into it from the largest split (so val/test are never empty).
    """
    folder = Path(folder)
    names = sorted(files) if files is not None else list_images(folder)
    total = float(sum(ratios))
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(group_key(name), []).append(name)
    frac = {g: hash_fraction(g, seed) for g in groups}
    where = {g: assign(members[0], ratios, seed) for g, members in groups.items()}
    wanted = [s for s, r in zip(SPLIT_NAMES, ratios) if r > 0]
    moved = []
    if len(groups) >= len(wanted):
        edges, lo = {}, 0.0
        for s, r in zip(SPLIT_NAMES, ratios):
            edges[s] = (lo, lo + r / total)
            lo += r / total
        for s in wanted:
            if s in where.values():
                continue
            sizes = {t: sum(1 for g in where if where[g] == t) for t in SPLIT_NAMES}
            donor = max(SPLIT_NAMES, key=lambda t: sizes[t])
            mid = sum(edges[s]) / 2
            g = min((g for g in where if where[g] == donor), key=lambda g: (abs(frac[g] - mid), g))
            where[g] = s
            moved.append(g)
    out = {split: [] for split in SPLIT_NAMES}
    for g, members in groups.items():
        out[where[g]].extend(members)
    for s in SPLIT_NAMES:
        out[s].sort()
    result = {
        "version": 1,
        "method": "sha256-threshold",
        "seed": seed,
        "group_key": "lower-cased stem without @Nx and variant suffixes "
                     "(_nohumans|_sun|_night|_dark|_lowres|_hires)",
        "ratios": {s: r / total for s, r in zip(SPLIT_NAMES, ratios)},
        "counts": {s: len(out[s]) for s in SPLIT_NAMES},
        "moved_for_non_empty": sorted(moved),
        **out,
    }
    # Disjointness by construction; check anyway (cheap, and the benchmark relies on it).
    seen = set()
    for s in SPLIT_NAMES:
        dup = seen.intersection(out[s])
        if dup:
            raise AssertionError(f"split overlap: {sorted(dup)[:5]}")
        seen.update(out[s])
    if write:
        (folder / SPLITS_FILE).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


def load_splits(folder, split: str | None = None):
    """Read DIR/splits.json; with ``split`` return that split's list of Paths."""
    folder = Path(folder)
    data = json.loads((folder / SPLITS_FILE).read_text(encoding="utf-8"))
    if split is None:
        return data
    return [folder / name for name in data[split]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="image folders")
    ap.add_argument("--ratios", nargs=3, type=float, default=DEFAULT_RATIOS,
                    metavar=("TRAIN", "VAL", "TEST"))
    ap.add_argument("--seed", default=DEFAULT_SEED)
    args = ap.parse_args(argv)
    rc = 0
    for d in args.dirs:
        if not d.is_dir():
            print(f"{d}: not a folder", file=sys.stderr)
            rc = 1
            continue
        res = make_splits(d, tuple(args.ratios), args.seed)
        c = res["counts"]
        print(f"{d}: train {c['train']}, val {c['val']}, test {c['test']} -> {d / SPLITS_FILE}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
