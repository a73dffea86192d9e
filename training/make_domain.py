#!/usr/bin/env python3
"""Make a training domain folder from a fetched set by file-name prefixes (stdlib only).

    python training/make_domain.py --src ~/.cache/imgtrans/data/space-photos \
        --out ~/.cache/imgtrans/data/domains/arid --prefix desert dune badlands canyon

The folder holds symbolic links to the chosen images and a ``splits.json`` that is the parent's
split restricted to them, so a domain never moves a file from the parent's test split into
training. Running it again does nothing when the folder is up to date, else rebuilds it beside the
old one and renames it into place.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, required=True, help="fetched set folder (has splits.json)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--prefix", nargs="+", required=True, help="file-name prefixes (letters before the first digit)")
    args = ap.parse_args()

    splits = json.loads((args.src / "splits.json").read_text())
    wanted = {p.lower() for p in args.prefix}
    chosen = sorted(
        name for part in ("train", "val", "test") for name in splits[part]
        if re.sub(r"[\d].*$", "", Path(name).stem.lower()).rstrip("-_") in wanted
    )
    if not chosen:
        raise SystemExit(f"no files in {args.src} start with {sorted(wanted)}")
    sub = {part: [n for n in splits[part] if n in set(chosen)] for part in ("train", "val", "test")}
    sub.update({"counts": {k: len(v) for k, v in sub.items()}, "parent": str(args.src), "prefixes": sorted(wanted)})
    text = json.dumps(sub, indent=1)
    if is_current(args.out, text, [(args.src / n).resolve() for n in chosen]):
        print(f"{args.out}: up to date, {len(chosen)} images {sub['counts']}")
        return 0
    # Built beside the target and renamed into place, so a recipe that reads the folder (or a second
    # recipe building the same domain at the same time) never sees it half made.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.partial-", dir=args.out.parent))
    for name in chosen:
        (stage / name).symlink_to((args.src / name).resolve())
    (stage / "splits.json").write_text(text)
    licence = args.src / "LICENSE.txt"
    if licence.exists():
        shutil.copy(licence, stage / "LICENSE.txt")
    if args.out.exists():
        old = args.out.with_name(f".{args.out.name}.old-{os.getpid()}")
        os.replace(args.out, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(stage, args.out)
    print(f"{args.out}: {len(chosen)} images {sub['counts']}")
    return 0


def is_current(out: Path, splits_text: str, targets: list) -> bool:
    """Whether out already holds exactly these links and this splits.json (nothing to rebuild)."""
    try:
        if (out / "splits.json").read_text() != splits_text:
            return False
        links = {p.name: p for p in out.iterdir() if p.is_symlink()}
        return sorted(links) == sorted(t.name for t in targets) and all(
            links[t.name].resolve() == t for t in targets)
    except OSError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
